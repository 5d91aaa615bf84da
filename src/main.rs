//! `tokenmeter`: parses the command line and configuration, then hands over to the server.

use clap::Parser;
use tokenmeter::server::{cli, config::Config, telemetry};

fn main() -> std::process::ExitCode {
    tokenmeter::server::work::release_large_allocations();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime")
        .block_on(run())
}

async fn run() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(message) => {
            eprintln!("tokenmeter: configuration error: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    telemetry::init(config.log_format);
    match cli::run(cli, config).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "tokenmeter failed");
            eprintln!("tokenmeter: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
