//! Server-side errors. Internal variants carry the detail for the log; turning one into the
//! client-facing [`AppError`] logs it and hands back a generic message.

use crate::api::error::AppError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something the client can act on (validation, not found, ...): passed through as is.
    #[error(transparent)]
    App(#[from] AppError),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn internal(context: impl Into<String>) -> Self {
        Error::Internal(context.into())
    }

    /// Whether trying again may succeed: a database that was unreachable, restarting or
    /// busy; not a constraint the data breaks, and not our own refusals.
    pub fn may_pass(&self) -> bool {
        match self {
            Error::Db(e) => e
                .as_database_error()
                .is_none_or(|db| matches!(db.kind(), sqlx::error::ErrorKind::Other)),
            _ => false,
        }
    }

    /// Whether the database could not be reached (down, restarting, every connection busy):
    /// the client is told to try again (503), not that we failed (500).
    pub fn is_unavailable(&self) -> bool {
        let Error::Db(e) = self else { return false };
        match e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => true,
            // PostgreSQL's "connection exception" and "operator intervention" (a shutdown).
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
            _ => false,
        }
    }
}

impl From<Error> for AppError {
    fn from(err: Error) -> Self {
        match err {
            Error::App(app) => app,
            unavailable if unavailable.is_unavailable() => {
                tracing::warn!(error = %unavailable, "the database is unavailable");
                AppError::new(
                    crate::api::error::ErrorCode::Busy,
                    "the database cannot be reached right now; try again in a few seconds",
                )
            }
            other => {
                tracing::error!(error = %other, "internal error");
                AppError::internal()
            }
        }
    }
}

/// True when the error is a unique-constraint violation, on either backend.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.is_unique_violation())
}

/// The status of a server function's error. Leptos answers every error of a server function
/// with 500; its body is our [`AppError`], whose code has a status of its own (400 for
/// arguments that do not parse, 401, 403, 404, 409, ...). This puts that status on the
/// response, so a client, a proxy and the logs see a refusal as a refusal, not our fault.
pub async fn server_fn_status(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::http::StatusCode;
    let is_fn = request
        .uri()
        .path()
        .starts_with(crate::api::SERVER_FN_PREFIX);
    let response = next.run(request).await;
    if !is_fn || response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // An error body is a small JSON object; anything bigger is passed on as it came.
    let Ok(bytes) = axum::body::to_bytes(body, 64 * 1024).await else {
        return axum::response::IntoResponse::into_response(StatusCode::INTERNAL_SERVER_ERROR);
    };
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        if let Ok(status) = StatusCode::from_u16(error.code.status()) {
            parts.status = status;
        }
    }
    axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unreachable_database_is_worth_another_try() {
        assert!(Error::Db(sqlx::Error::PoolTimedOut).may_pass());
        assert!(Error::Db(sqlx::Error::Io(std::io::Error::other("reset"))).may_pass());
        assert!(!Error::App(AppError::internal()).may_pass());
        assert!(!Error::internal("bug").may_pass());
    }
}
