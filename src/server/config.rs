//! Configuration from the environment. Every variable and its default is listed in README.md.

use crate::domain::money::{parse_price_table, ModelPrice};
use crate::domain::quota::Thresholds;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Who may create an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignupMode {
    /// Anyone may sign up; the account waits until an admin approves it (the default: a
    /// sign-up must not mint free quota).
    Approval,
    /// Anyone who can reach the site may sign up and use it at once.
    Open,
    /// Only admins create users.
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Where chat completions go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Upstream {
    /// Nothing configured: the built-in `demo` model answers.
    Demo,
    /// Any OpenAI-compatible endpoint, called with one shared key.
    OpenAi {
        base_url: String,
        api_key: Option<String>,
    },
    /// A LiteLLM proxy: every user gets a virtual key of their own, made with the master key.
    LiteLlm {
        base_url: String,
        master_key: String,
    },
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
    /// Sign-ups from one client address per hour.
    pub signups_per_ip_per_hour: i64,
    pub log_format: LogFormat,
    pub upstream: Upstream,
    /// Seconds to wait for the upstream's first byte, and between two chunks of a stream.
    pub llm_timeout_secs: u64,
    /// Prices for models whose upstream reports no cost (USD per million tokens, exact).
    pub model_prices: Vec<(String, ModelPrice)>,
    /// Encrypts the users' LiteLLM keys at rest; from `TOKENMETER_SECRET`, else a random one
    /// kept in `secret_file` (created on first start).
    pub secret: Option<String>,
    pub secret_file: PathBuf,
    /// Days (of usage, quota periods) are days of this zone.
    pub timezone: chrono_tz::Tz,
    /// Pause between two tokens of the demo model's reply, in milliseconds.
    pub demo_token_delay_ms: u64,
    /// Quota flags: warning, upgrade suggested, blocked (percent of the limit).
    pub quota_thresholds: Thresholds,
    /// The reply cap (and so the tokens held back) of a send that names none.
    pub default_max_output_tokens: i64,
    /// How long a cached session or usage may be kept (zero: no caching).
    pub cache_ttl: std::time::Duration,
    /// How many days back a user's first usage sync reads from LiteLLM.
    pub usage_backfill_days: i64,
    /// How many users a sync of everyone reads from LiteLLM at once.
    pub usage_sync_concurrency: usize,
    /// Jobs this instance runs at once; 0: no runner here (other instances run them).
    pub job_workers: usize,
    /// How often idle workers look for due jobs when no wake-up came.
    pub job_poll: std::time::Duration,
    /// How long a running job's lease lasts without a heartbeat.
    pub job_lease: std::time::Duration,
    /// The first retry's delay; each further one doubles it (up to an hour).
    pub job_retry_base_secs: i64,
    /// Finished jobs are deleted this many days after they ended.
    pub job_retention_days: i64,
    /// The local time of the daily usage sync (`None`: no daily sync).
    pub usage_sync_at: Option<chrono::NaiveTime>,
    /// How often estimated calls are corrected from LiteLLM's spend logs (`None`: never;
    /// see `server::usage_reconcile`).
    pub reconcile_every: Option<std::time::Duration>,
    /// How long a send's held tokens last without renewal; a send renews them every third of
    /// this while its reply streams, so only a crashed one lets them expire.
    pub reservation_ttl: std::time::Duration,
    /// How long a streamed reply waits for a client that stopped reading before it ends the
    /// reply (recorded as stopped).
    pub stream_idle_timeout: std::time::Duration,
    /// Open connections at most; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long a client may take to send a request's head.
    pub header_read_timeout: std::time::Duration,
    /// How long a kept-alive connection may sit idle (no request, no response under way).
    pub keep_alive_timeout: std::time::Duration,
    /// How long a request may take to be answered (streamed replies excepted: their time
    /// is bounded by the upstream's timeout and the stream idle timeout).
    pub request_timeout: std::time::Duration,
    /// How long a shutdown waits for open requests; streamed replies are cut and recorded
    /// shortly before it ends.
    pub shutdown_grace: std::time::Duration,
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
            None | Some("approval") => SignupMode::Approval,
            Some("open") => SignupMode::Open,
            Some("closed") => SignupMode::Closed,
            Some(other) => {
                return Err(format!(
                    "TOKENMETER_SIGNUP must be one of: approval, open, closed (got {other:?})"
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
        let upstream = match (var("LITELLM_URL"), var("LLM_BASE_URL")) {
            (Some(url), _) => Upstream::LiteLlm {
                base_url: http_url("LITELLM_URL", &url)?,
                master_key: var("LITELLM_MASTER_KEY").ok_or(
                    "LITELLM_MASTER_KEY must be set when LITELLM_URL is (it creates the users' keys)",
                )?,
            },
            (None, Some(url)) => Upstream::OpenAi {
                base_url: http_url("LLM_BASE_URL", &url)?,
                api_key: var("LLM_API_KEY"),
            },
            (None, None) => Upstream::Demo,
        };
        let model_prices = parse_price_table(&var("TOKENMETER_MODEL_PRICES").unwrap_or_default())
            .map_err(|e| format!("TOKENMETER_MODEL_PRICES: {e}"))?;
        let timezone = match var("TOKENMETER_TIMEZONE") {
            None => chrono_tz::UTC,
            Some(name) => name.trim().parse().map_err(|_| {
                format!("TOKENMETER_TIMEZONE must be an IANA time zone such as Europe/Berlin (got {name:?})")
            })?,
        };
        let demo_token_delay_ms = match var("TOKENMETER_DEMO_DELAY_MS") {
            None => 25,
            Some(raw) => raw
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms <= 10_000)
                .ok_or_else(|| {
                    format!("TOKENMETER_DEMO_DELAY_MS must be 0 to 10000 (got {raw:?})")
                })?,
        };
        let cache_seconds = match var("TOKENMETER_CACHE_SECONDS") {
            None => 30,
            Some(raw) => raw
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|s| *s <= 3600)
                .ok_or_else(|| {
                    format!("TOKENMETER_CACHE_SECONDS must be 0 to 3600 (got {raw:?})")
                })?,
        };
        let quota_thresholds = match var("TOKENMETER_QUOTA_THRESHOLDS") {
            None => Thresholds::default(),
            Some(raw) => {
                let bad = |why: String| {
                    format!("TOKENMETER_QUOTA_THRESHOLDS must be warning,upgrade,block percentages such as 80,95,100: {why} (got {raw:?})")
                };
                let parts: Vec<u32> = raw
                    .split(',')
                    .map(|p| p.trim().parse::<u32>())
                    .collect::<Result<_, _>>()
                    .map_err(|e| bad(e.to_string()))?;
                match parts[..] {
                    [w, u, b] => Thresholds::new(w, u, b).map_err(bad)?,
                    _ => return Err(bad("three numbers are needed".into())),
                }
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
            signups_per_ip_per_hour: positive(&var, "TOKENMETER_SIGNUPS_PER_IP_PER_HOUR", 10)?,
            log_format,
            upstream,
            llm_timeout_secs: positive(&var, "TOKENMETER_LLM_TIMEOUT_SECONDS", 60)? as u64,
            model_prices,
            secret: var("TOKENMETER_SECRET"),
            secret_file: var("TOKENMETER_SECRET_FILE")
                .unwrap_or_else(|| "data/secret.key".into())
                .into(),
            timezone,
            demo_token_delay_ms,
            quota_thresholds,
            default_max_output_tokens: positive(
                &var,
                "TOKENMETER_DEFAULT_MAX_OUTPUT_TOKENS",
                4096,
            )?,
            cache_ttl: std::time::Duration::from_secs(cache_seconds),
            usage_backfill_days: bounded(&var, "TOKENMETER_USAGE_BACKFILL_DAYS", 90, 1..=3650)?,
            usage_sync_concurrency: bounded(&var, "TOKENMETER_USAGE_SYNC_CONCURRENCY", 8, 1..=64)?
                as usize,
            job_workers: bounded(&var, "TOKENMETER_JOB_WORKERS", 2, 0..=64)? as usize,
            job_poll: std::time::Duration::from_millis(
                bounded(&var, "TOKENMETER_JOB_POLL_MS", 5000, 10..=600_000)? as u64,
            ),
            job_lease: std::time::Duration::from_millis(
                bounded(&var, "TOKENMETER_JOB_LEASE_MS", 60_000, 100..=3_600_000)? as u64,
            ),
            job_retry_base_secs: bounded(&var, "TOKENMETER_JOB_RETRY_BASE_SECONDS", 10, 0..=3600)?,
            job_retention_days: bounded(&var, "TOKENMETER_JOB_RETENTION_DAYS", 30, 1..=3650)?,
            usage_sync_at: match var("TOKENMETER_USAGE_SYNC_AT").as_deref().map(str::trim) {
                None => chrono::NaiveTime::from_hms_opt(0, 15, 0),
                Some("off") => None,
                Some(raw) => Some(chrono::NaiveTime::parse_from_str(raw, "%H:%M").map_err(|_| {
                    format!("TOKENMETER_USAGE_SYNC_AT must be HH:MM (local time) or off (got {raw:?})")
                })?),
            },
            reconcile_every: match bounded(&var, "TOKENMETER_RECONCILE_SECONDS", 10, 0..=3600)? {
                0 => None,
                secs => Some(std::time::Duration::from_secs(secs as u64)),
            },
            reservation_ttl: std::time::Duration::from_secs(
                bounded(&var, "TOKENMETER_RESERVATION_TTL_SECONDS", 1800, 1..=86_400)? as u64,
            ),
            stream_idle_timeout: std::time::Duration::from_secs(
                bounded(&var, "TOKENMETER_STREAM_IDLE_SECONDS", 60, 1..=3600)? as u64,
            ),
            max_connections: bounded(&var, "TOKENMETER_MAX_CONNECTIONS", 1024, 1..=65_536)?
                as usize,
            keep_alive_timeout: std::time::Duration::from_secs(
                bounded(&var, "TOKENMETER_KEEPALIVE_SECONDS", 75, 1..=3600)? as u64,
            ),
            header_read_timeout: std::time::Duration::from_secs(
                bounded(&var, "TOKENMETER_HEADER_READ_TIMEOUT_SECONDS", 10, 1..=300)? as u64,
            ),
            request_timeout: std::time::Duration::from_secs(
                bounded(&var, "TOKENMETER_REQUEST_TIMEOUT_SECONDS", 30, 1..=3600)? as u64,
            ),
            shutdown_grace: std::time::Duration::from_secs(
                bounded(&var, "TOKENMETER_SHUTDOWN_GRACE_SECONDS", 15, 1..=600)? as u64,
            ),
        })
    }

    /// Cookies get `Secure` when the public address is https.
    pub fn secure_cookies(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }
}

/// An upstream address: http(s), without the trailing slash.
fn http_url(name: &str, raw: &str) -> Result<String, String> {
    let url = raw.trim().trim_end_matches('/');
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(url.to_string())
    } else {
        Err(format!(
            "{name} must start with http:// or https:// (got {raw:?})"
        ))
    }
}

/// A whole number within `range`, `default` when unset.
fn bounded(
    var: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, String> {
    match var(name) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                format!(
                    "{name} must be a whole number from {} to {} (got {raw:?})",
                    range.start(),
                    range.end()
                )
            }),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn the_upstream_is_litellm_then_openai_then_demo() {
        assert_eq!(config(&[]).unwrap().upstream, Upstream::Demo);
        assert_eq!(
            config(&[
                ("LLM_BASE_URL", "http://llm:8000/v1/"),
                ("LLM_API_KEY", "k")
            ])
            .unwrap()
            .upstream,
            Upstream::OpenAi {
                base_url: "http://llm:8000/v1".into(),
                api_key: Some("k".into())
            }
        );
        let both = config(&[
            ("LLM_BASE_URL", "http://llm:8000/v1"),
            ("LITELLM_URL", "http://127.0.0.1:4000"),
            ("LITELLM_MASTER_KEY", "sk-m"),
        ])
        .unwrap();
        assert!(matches!(both.upstream, Upstream::LiteLlm { .. }));
        let err = config(&[("LITELLM_URL", "http://127.0.0.1:4000")]).unwrap_err();
        assert!(err.contains("LITELLM_MASTER_KEY"), "{err}");
        let err = config(&[("LLM_BASE_URL", "llm:8000")]).unwrap_err();
        assert!(err.contains("LLM_BASE_URL must start with http"), "{err}");
    }

    #[test]
    fn sign_up_waits_for_approval_unless_told_otherwise() {
        assert_eq!(config(&[]).unwrap().signup, SignupMode::Approval);
        for (value, mode) in [
            ("approval", SignupMode::Approval),
            ("open", SignupMode::Open),
            ("closed", SignupMode::Closed),
        ] {
            assert_eq!(
                config(&[("TOKENMETER_SIGNUP", value)]).unwrap().signup,
                mode
            );
        }
        let err = config(&[("TOKENMETER_SIGNUP", "yes")]).unwrap_err();
        assert!(err.contains("approval, open, closed"), "{err}");
    }

    #[test]
    fn bad_values_name_the_variable() {
        for (name, value) in [
            ("TOKENMETER_TIMEZONE", "Mars/Olympus"),
            ("TOKENMETER_MODEL_PRICES", "gpt-4o=cheap"),
            ("TOKENMETER_LLM_TIMEOUT_SECONDS", "0"),
            ("TOKENMETER_DEMO_DELAY_MS", "-1"),
            ("TOKENMETER_QUOTA_THRESHOLDS", "80,95"),
            ("TOKENMETER_QUOTA_THRESHOLDS", "95,80,100"),
            ("TOKENMETER_DEFAULT_MAX_OUTPUT_TOKENS", "0"),
            ("TOKENMETER_CACHE_SECONDS", "-1"),
            ("TOKENMETER_CACHE_SECONDS", "3601"),
        ] {
            let err = config(&[(name, value)]).unwrap_err();
            assert!(err.contains(name), "{name}: {err}");
        }
        let ok = config(&[
            ("TOKENMETER_TIMEZONE", "Europe/Berlin"),
            ("TOKENMETER_MODEL_PRICES", "gpt-4o=2.5:10"),
        ])
        .unwrap();
        assert_eq!(ok.timezone, chrono_tz::Europe::Berlin);
        assert_eq!(ok.model_prices.len(), 1);
        assert_eq!(ok.cache_ttl, std::time::Duration::from_secs(30));
        let off = config(&[("TOKENMETER_CACHE_SECONDS", "0")]).unwrap();
        assert!(off.cache_ttl.is_zero());
    }
}
