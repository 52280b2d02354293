//! `urr-local-node`: see the crate documentation and README.md.

use std::process::ExitCode;

use clap::Parser;
use urr_local_node::Args;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    urr_local_node::init_tracing();
    match urr_local_node::run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error}");
            ExitCode::FAILURE
        }
    }
}
