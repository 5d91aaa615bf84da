//! Each user's LiteLLM virtual key: created at LiteLLM on first use, stored sealed
//! ([`crate::server::secret`]), one creation at a time, and deleted at LiteLLM when it could
//! not be stored (a key nobody holds must not stay valid).

use super::{Llm, UpstreamError};
use crate::api::error::{AppError, ErrorCode};
use crate::server::config::Upstream;
use crate::server::db::{self, Db};
use crate::server::error::{Error, Result};
use serde_json::{json, Value};
use uuid::Uuid;

impl Llm {
    /// The key a user's requests go upstream with: none for the demo, the shared key for a
    /// plain OpenAI-compatible endpoint, the user's own LiteLLM virtual key (created on first
    /// use) for LiteLLM.
    #[tracing::instrument(skip(self, db))]
    pub async fn user_key(&self, db: &Db, user_id: Uuid) -> Result<Option<String>> {
        let (base, master) = match &self.upstream {
            Upstream::Demo => return Ok(None),
            Upstream::OpenAi { api_key, .. } => return Ok(api_key.clone()),
            Upstream::LiteLlm {
                base_url,
                master_key,
            } => (base_url, master_key),
        };
        if let Some(sealed) = db::llm_keys::find_sealed(db, user_id).await? {
            return self.open_key(&sealed).map(Some);
        }
        let _one_at_a_time = self.provisioning.lock().await;
        if let Some(sealed) = db::llm_keys::find_sealed(db, user_id).await? {
            return self.open_key(&sealed).map(Some);
        }
        let id = user_id.to_string();
        let post = |path: &str, body: Value| {
            self.http
                .post(format!("{base}{path}"))
                .bearer_auth(master)
                .json(&body)
        };
        match self
            .json(post(
                "/user/new",
                json!({"user_id": id, "auto_create_key": false}),
            ))
            .await
        {
            Ok(_) | Err(UpstreamError::Status { status: 409, .. }) => {}
            Err(e) => return Err(provisioning_failed(e)),
        }
        let generated = self
            .json(post(
                "/key/generate",
                json!({"user_id": id, "metadata": {"created_by": "tokenmeter"}}),
            ))
            .await
            .map_err(provisioning_failed)?;
        let key = generated["key"]
            .as_str()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| provisioning_failed(UpstreamError::Malformed("no key".into())))?
            .to_string();
        let hint: String = key
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let sealed = self.secrets.seal(key.as_bytes());
        let delete_ours = || async {
            if let Err(e) = self.json(post("/key/delete", json!({"keys": [key]}))).await {
                tracing::warn!(error = %e, key_hint = %hint, "could not delete a LiteLLM key we do not keep");
            }
        };
        match db::llm_keys::insert_if_absent(db, user_id, &sealed, &hint, db::now()).await {
            Ok(true) => {
                tracing::info!(%user_id, key_hint = %hint, "created a LiteLLM key");
                return Ok(Some(key));
            }
            // Not stored: a key nobody holds must not stay valid at LiteLLM.
            Err(e) => {
                delete_ours().await;
                return Err(e.into());
            }
            // Another instance stored a key first: use that one and drop ours.
            Ok(false) => delete_ours().await,
        }
        let sealed = db::llm_keys::find_sealed(db, user_id)
            .await?
            .ok_or_else(|| Error::internal("LiteLLM key vanished after a conflict"))?;
        self.open_key(&sealed).map(Some)
    }

    fn open_key(&self, sealed: &[u8]) -> Result<String> {
        String::from_utf8(self.secrets.open(sealed)?)
            .map_err(|_| Error::internal("stored LiteLLM key is not text"))
    }
}

fn provisioning_failed(err: UpstreamError) -> Error {
    tracing::warn!(error = %err, "LiteLLM key provisioning failed");
    let detail = AppError::from(&err).message;
    Error::App(AppError::new(
        ErrorCode::Upstream,
        format!("Could not create your LiteLLM key. {detail}"),
    ))
}
