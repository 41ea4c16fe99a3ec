
mod sample;
mod functions;
mod azurite;
mod storage;
mod functions_config;
