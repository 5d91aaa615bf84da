//! Logging: `RUST_LOG` filters (default `info`), `TOKENMETER_LOG_FORMAT=json` for JSON lines.
//! Text lines are coloured only on a terminal: a log written to a file or a pipe carries no
//! ANSI escape codes.

use crate::server::config::LogFormat;
use tracing_subscriber::EnvFilter;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stdout().is_terminal());
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
