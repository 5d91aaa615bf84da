//! Configuration from the environment. Every variable and its default is listed in README.md.

use std::net::SocketAddr;

/// Who may create an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignupMode {
    /// Anyone who can reach the site may sign up.
    Open,
    /// Only admins create users.
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: String,
    pub db_max_connections: u32,
    pub addr: SocketAddr,
    pub signup: SignupMode,
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    /// The address users reach the site at (e.g. `https://chat.example.com`), when behind a
    /// proxy: its origin is accepted by the CSRF check, and `https` marks cookies `Secure`.
    pub public_url: Option<String>,
    /// Trust `X-Forwarded-For` / `X-Forwarded-Proto` (only behind a proxy you control).
    pub trust_proxy: bool,
    pub session_ttl_hours: i64,
    pub login_max_failures: i64,
    pub login_max_failures_per_ip: i64,
    pub login_window_minutes: i64,
    pub log_format: LogFormat,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/tokenmeter.db";

impl Config {
    /// Reads the configuration; a malformed value is an error naming the variable and what it
    /// takes, never a silent default.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration from any lookup (tests pass a map instead of the environment).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let var = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let addr_raw = var("TOKENMETER_ADDR")
            .or_else(|| var("LEPTOS_SITE_ADDR"))
            .unwrap_or_else(|| "127.0.0.1:3000".into());
        let addr = addr_raw
            .parse()
            .map_err(|_| format!("TOKENMETER_ADDR must be host:port, got {addr_raw:?}"))?;
        let signup = match var("TOKENMETER_SIGNUP").as_deref() {
            None | Some("open") => SignupMode::Open,
            Some("closed") => SignupMode::Closed,
            Some(other) => {
                return Err(format!(
                    "TOKENMETER_SIGNUP must be one of: open, closed (got {other:?})"
                ))
            }
        };
        let log_format = match var("TOKENMETER_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(format!(
                    "TOKENMETER_LOG_FORMAT must be one of: text, json (got {other:?})"
                ))
            }
        };
        let trust_proxy = match var("TOKENMETER_TRUST_PROXY").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(format!(
                    "TOKENMETER_TRUST_PROXY must be true or false (got {other:?})"
                ))
            }
        };
        Ok(Config {
            database_url: var("DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.into()),
            db_max_connections: positive(&var, "TOKENMETER_DB_MAX_CONNECTIONS", 10)? as u32,
            addr,
            signup,
            admin_email: var("TOKENMETER_ADMIN_EMAIL"),
            admin_password: var("TOKENMETER_ADMIN_PASSWORD"),
            public_url: var("TOKENMETER_PUBLIC_URL").map(|u| u.trim_end_matches('/').to_string()),
            trust_proxy,
            session_ttl_hours: positive(&var, "TOKENMETER_SESSION_TTL_HOURS", 24 * 30)?,
            login_max_failures: positive(&var, "TOKENMETER_LOGIN_MAX_FAILURES", 5)?,
            login_max_failures_per_ip: positive(&var, "TOKENMETER_LOGIN_MAX_FAILURES_PER_IP", 30)?,
            login_window_minutes: positive(&var, "TOKENMETER_LOGIN_WINDOW_MINUTES", 15)?,
            log_format,
        })
    }

    /// Cookies get `Secure` when the public address is https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

fn positive(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: i64,
) -> Result<i64, String> {
    match var(name) {
        None => Ok(default),
        Some(raw) => match raw.trim().parse::<i64>() {
            Ok(n) if n > 0 && n <= i64::from(u32::MAX) => Ok(n),
            _ => Err(format!(
                "{name} must be a positive whole number (got {raw:?})"
            )),
        },
    }
}
