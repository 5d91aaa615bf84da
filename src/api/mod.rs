//! What the browser and the server share: the wire types (DTOs) and the `#[server]` functions
//! the pages call. Each server function authorizes first, then calls the server's services.
//!
//! Server functions are served at fixed URLs, `/api/fn/<name>`, not Leptos' default name plus a
//! hash of the build folder: every instance of a deployment, and every build of the same
//! commit, must agree on them, or a page served by one instance cannot call another.

/// Where the server functions are served (each `#[server(prefix = "/api/fn", ...)]`).
pub const SERVER_FN_PREFIX: &str = "/api/fn/";

pub mod access;
pub mod admin;
pub mod auth;
pub mod chat;
pub mod error;
pub mod jobs;
pub mod notifications;
pub mod quota;
pub mod tokens;
pub mod usage;

use crate::domain::account::{Approval, Role};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user as clients see it (never the password hash).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserDto {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub disabled: bool,
    /// Whether an admin has let the account in (sign-ups may wait for approval).
    pub approval: Approval,
    #[serde(with = "crate::domain::time::wire")]
    pub created_at: DateTime<Utc>,
}

impl UserDto {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// A personal API token as listed: its name and first characters, never the secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct ApiTokenDto {
    pub id: Uuid,
    pub name: String,
    pub prefix: String,
    #[serde(with = "crate::domain::time::wire")]
    pub created_at: DateTime<Utc>,
    #[serde(default, with = "crate::domain::time::wire::option")]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A token just created: the only time its secret is shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct CreatedTokenDto {
    pub token: ApiTokenDto,
    pub secret: String,
}

/// What a password change ended besides the old password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct PasswordChangedDto {
    pub other_sessions_ended: i64,
    pub api_tokens_revoked: i64,
}

/// Head counts for the admin overview.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
pub struct UserCountsDto {
    pub users: i64,
    pub admins: i64,
    pub disabled: i64,
}

/// Server-side helpers for the server functions: the state, the request, and the two checks
/// every server function starts with.
#[cfg(feature = "ssr")]
pub(crate) mod ssr {
    use super::error::AppError;
    use crate::server::auth::{self, Principal};
    use crate::server::state::AppState;
    use http::request::Parts;
    use leptos::prelude::use_context;

    pub fn state() -> Result<AppState, AppError> {
        use_context::<AppState>().ok_or_else(|| {
            tracing::error!("AppState missing from the Leptos context");
            AppError::internal()
        })
    }

    pub fn parts() -> Result<Parts, AppError> {
        use_context::<Parts>().ok_or_else(|| {
            tracing::error!("request parts missing from the Leptos context");
            AppError::internal()
        })
    }

    /// The signed-in user, or 401.
    pub async fn require_user() -> Result<(AppState, Principal), AppError> {
        let state = state()?;
        let principal = auth::require_user(&state, &parts()?).await?;
        Ok((state, principal))
    }

    /// The signed-in admin: 401 when signed out, 403 for everybody else.
    pub async fn require_admin() -> Result<(AppState, Principal), AppError> {
        let state = state()?;
        let principal = auth::require_admin(&state, &parts()?).await?;
        Ok((state, principal))
    }

    /// Sets (or with `None`, clears) the session cookie on the response.
    pub fn set_session_cookie(state: &AppState, parts: &Parts, secret: Option<&str>) {
        let secure = auth::cookies_secure(state, &parts.headers);
        let cookie = match secret {
            Some(secret) => {
                auth::session_cookie(secret, state.config.session_ttl_hours * 3600, secure)
            }
            None => auth::clear_session_cookie(secure),
        };
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.append_header(http::header::SET_COOKIE, cookie);
        }
    }
}
