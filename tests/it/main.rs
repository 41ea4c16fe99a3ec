//! The one integration-test binary: a module per area, setup in `helpers`.

mod azurite;
mod cli;
mod functions;
mod functions_config;
mod helpers;
mod host_emulator;
mod pipeline;
mod real_data;
mod sample;
mod storage;
mod functions_azurite;
