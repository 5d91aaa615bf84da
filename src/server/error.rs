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
