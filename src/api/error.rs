//! The error a client sees: a stable machine-readable `code` and a human message. Server
//! functions return it directly (it crosses the wire as JSON) and the REST API puts it in the
//! envelope's `error` field. Internal detail never goes in here; it is logged on the server.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401: not signed in, or the credentials are wrong.
    Unauthorized,
    /// 403: signed in but not allowed (wrong role, disabled, CSRF check failed, sign-up closed).
    Forbidden,
    /// 404: no such thing, or it belongs to somebody else.
    NotFound,
    /// 400: the input is wrong; the message names the field and what is allowed.
    Validation,
    /// 429: the monthly token quota is used up.
    QuotaExceeded,
    /// 429: too many attempts (log-in).
    RateLimited,
    /// 409: the change conflicts with the current state (duplicate e-mail, illegal transition).
    Conflict,
    /// 405: the path exists, the method does not.
    MethodNotAllowed,
    /// 502: the LLM upstream failed.
    Upstream,
    /// 503: too much work at once (password checks); try again shortly.
    Busy,
    /// 500: our fault; details are in the server log.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Validation => "validation",
            ErrorCode::QuotaExceeded => "quota_exceeded",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Conflict => "conflict",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Upstream => "upstream",
            ErrorCode::Busy => "busy",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Validation => 400,
            ErrorCode::QuotaExceeded | ErrorCode::RateLimited => 429,
            ErrorCode::Conflict => 409,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::Upstream => 502,
            ErrorCode::Busy => 503,
            ErrorCode::Internal => 500,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct AppError {
    pub code: ErrorCode,
    pub message: String,
    /// Facts a client can act on, e.g. `resets_at` and `upgrade_url` of a `quota_exceeded`.
    /// The browser's pages never read them, so the wasm skips them instead of carrying a
    /// decoder for any JSON (maps, floats) in every page's first load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(not(feature = "ssr"), serde(skip_deserializing))]
    pub details: Option<serde_json::Value>,
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl AppError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: None,
        }
    }
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
    pub fn unauthorized() -> Self {
        Self::new(ErrorCode::Unauthorized, "sign in to continue")
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Validation, message)
    }
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }
    pub fn internal() -> Self {
        Self::new(
            ErrorCode::Internal,
            "something went wrong on our side; it has been logged",
        )
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // The request never reached us or its answer could not be read: say so plainly.
            ServerFnErrorErr::Request(detail) => Self::new(
                ErrorCode::Internal,
                format!("could not reach the server: {detail}"),
            ),
            ServerFnErrorErr::Args(detail) | ServerFnErrorErr::Deserialization(detail) => {
                Self::validation(detail)
            }
            other => Self::new(ErrorCode::Internal, other.to_string()),
        }
    }
}
