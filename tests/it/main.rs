//! The one integration-test binary: a module per area, setup in `helpers`.

// Test helpers unwrap on purpose: a broken fixture should fail the test loudly, with its message.
#![allow(clippy::unwrap_used)]

mod azurite;
mod cli;
mod faults;
mod fence;
mod functions;
mod functions_azurite;
mod functions_config;
mod helpers;
mod host_emulator;
mod hostile;
mod overview;
mod pipeline;
mod properties;
mod quality;
mod quarantine;
mod real_data;
mod sample;
mod security;
mod storage;
mod sweep;
