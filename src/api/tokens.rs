//! Personal API tokens for the profile page.

use super::error::AppError;
use super::{ApiTokenDto, CreatedTokenDto};
use leptos::prelude::*;
use uuid::Uuid;

#[server(prefix = "/api/fn", endpoint = "list_api_tokens")]
pub async fn list_api_tokens() -> Result<Vec<ApiTokenDto>, AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(crate::server::accounts::list_tokens(&state.db, me.user.id).await?)
}

#[server(prefix = "/api/fn", endpoint = "create_api_token")]
pub async fn create_api_token(name: String) -> Result<CreatedTokenDto, AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(crate::server::accounts::create_token(&state.db, me.user.id, &name).await?)
}

#[server(prefix = "/api/fn", endpoint = "revoke_api_token")]
pub async fn revoke_api_token(id: Uuid) -> Result<(), AppError> {
    let (state, me) = super::ssr::require_user().await?;
    Ok(crate::server::accounts::revoke_token(&state.db, me.user.id, id).await?)
}
