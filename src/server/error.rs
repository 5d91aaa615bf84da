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
}

impl From<Error> for AppError {
    fn from(err: Error) -> Self {
        match err {
            Error::App(app) => app,
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
