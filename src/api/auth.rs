//! Sign-up, log-in, log-out and "who am I" for the pages.

use super::error::AppError;
use super::{PasswordChangedDto, UserDto};
use leptos::prelude::*;

/// How sign-up works here: `approval` (an admin lets each new account in), `open` or
/// `closed`; the page offers the form and says what follows.
#[server(prefix = "/api/fn", endpoint = "signup_mode")]
pub async fn signup_mode() -> Result<String, AppError> {
    use crate::server::config::SignupMode;
    Ok(match super::ssr::state()?.config.signup {
        SignupMode::Approval => "approval",
        SignupMode::Open => "open",
        SignupMode::Closed => "closed",
    }
    .into())
}

/// Logs in and goes to `next` (a path on this site; the profile otherwise).
#[server(prefix = "/api/fn", endpoint = "login")]
pub async fn login(email: String, password: String, next: String) -> Result<UserDto, AppError> {
    use crate::server::{accounts, auth};
    let state = super::ssr::state()?;
    let parts = super::ssr::parts()?;
    let ip = auth::client_ip(&parts, state.config.trust_proxy);
    let session = accounts::login(&state, &email, &password, &ip).await?;
    super::ssr::set_session_cookie(&state, &parts, Some(&session.secret));
    leptos_axum::redirect(crate::domain::account::safe_next(&next));
    Ok(session.user)
}

#[server(prefix = "/api/fn", endpoint = "signup")]
pub async fn signup(email: String, password: String) -> Result<UserDto, AppError> {
    use crate::server::accounts;
    let state = super::ssr::state()?;
    let parts = super::ssr::parts()?;
    let ip = crate::server::auth::client_ip(&parts, state.config.trust_proxy);
    match accounts::signup(&state, &email, &password, &ip).await? {
        accounts::SignedUp::SignedIn(session) => {
            super::ssr::set_session_cookie(&state, &parts, Some(&session.secret));
            leptos_axum::redirect("/profile");
            Ok(session.user)
        }
        accounts::SignedUp::Pending(user) => {
            leptos_axum::redirect("/signup/pending");
            Ok(user)
        }
    }
}

#[server(prefix = "/api/fn", endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::server::{accounts, auth};
    let state = super::ssr::state()?;
    let parts = super::ssr::parts()?;
    let principal = auth::caller(&state, &parts).await.ok().flatten();
    accounts::logout(&state, principal.as_ref()).await?;
    super::ssr::set_session_cookie(&state, &parts, None);
    leptos_axum::redirect("/login");
    Ok(())
}

/// Changes the signed-in user's password, ends their other sessions and (when asked, a
/// checkbox sends `true`) revokes their API tokens.
#[server(prefix = "/api/fn", endpoint = "change_password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
    revoke_api_tokens: Option<bool>,
) -> Result<PasswordChangedDto, AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(crate::server::accounts::change_password(
        &state,
        &me,
        &current_password,
        &new_password,
        revoke_api_tokens.unwrap_or(false),
    )
    .await?)
}
