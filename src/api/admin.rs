//! Admin user management for the admin pages.

use super::error::AppError;
use super::{UserCountsDto, UserDto};
use leptos::prelude::*;
use uuid::Uuid;

#[server(prefix = "/api/fn", endpoint = "admin_user_counts")]
pub async fn admin_user_counts() -> Result<UserCountsDto, AppError> {
    let (state, _admin) = super::ssr::require_admin().await?;
    Ok(crate::server::accounts::user_counts(&state.db).await?)
}

#[server(prefix = "/api/fn", endpoint = "admin_list_users")]
pub async fn admin_list_users() -> Result<Vec<UserDto>, AppError> {
    let (state, _admin) = super::ssr::require_admin().await?;
    Ok(crate::server::accounts::list_users(&state.db, 1000, 0).await?)
}

#[server(prefix = "/api/fn", endpoint = "admin_create_user")]
pub async fn admin_create_user(
    email: String,
    password: String,
    role: String,
) -> Result<UserDto, AppError> {
    use crate::domain::account::Role;
    let (state, _admin) = super::ssr::require_admin().await?;
    let role: Role = role.parse().map_err(AppError::validation)?;
    Ok(crate::server::accounts::create_user(&state.db, &email, &password, role).await?)
}

#[server(prefix = "/api/fn", endpoint = "admin_set_role")]
pub async fn admin_set_role(id: Uuid, role: String) -> Result<UserDto, AppError> {
    use crate::domain::account::Role;
    let (state, admin) = super::ssr::require_admin().await?;
    let role: Role = role.parse().map_err(AppError::validation)?;
    Ok(crate::server::accounts::update_user(&state.db, &admin, id, Some(role), None).await?)
}

#[server(prefix = "/api/fn", endpoint = "admin_set_disabled")]
pub async fn admin_set_disabled(id: Uuid, disabled: bool) -> Result<UserDto, AppError> {
    let (state, admin) = super::ssr::require_admin().await?;
    Ok(crate::server::accounts::update_user(&state.db, &admin, id, None, Some(disabled)).await?)
}
