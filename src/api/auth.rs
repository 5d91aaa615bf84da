//! Sign-up, log-in, log-out and "who am I" for the pages.

use super::error::AppError;
use super::UserDto;
use leptos::prelude::*;

/// Whether the sign-up form should be offered.
#[server(prefix = "/api/fn", endpoint = "signup_open")]
pub async fn signup_open() -> Result<bool, AppError> {
    use crate::server::config::SignupMode;
    Ok(super::ssr::state()?.config.signup == SignupMode::Open)
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
    let session = accounts::signup(&state, &email, &password).await?;
    super::ssr::set_session_cookie(&state, &parts, Some(&session.secret));
    leptos_axum::redirect("/profile");
    Ok(session.user)
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

/// Changes the signed-in user's password; answers how many other sessions were ended.
#[server(prefix = "/api/fn", endpoint = "change_password")]
pub async fn change_password(
    current_password: String,
    new_password: String,
) -> Result<u64, AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(
        crate::server::accounts::change_password(&state, &me, &current_password, &new_password)
            .await?,
    )
}
