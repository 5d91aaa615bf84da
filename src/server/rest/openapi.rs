//! The OpenAPI 3.1 document of the REST API, `GET /api/openapi.json`, generated from the
//! handlers' `#[utoipa::path]` attributes and the wire types' `ToSchema` derives. Every answer
//! from 400 up is the error envelope: it is every operation's `default` response. A test
//! (`tests/openapi.rs`) fails when a route of [`super::routes`] is missing here.

use super::{admin, auth, chat, jobs, notifications, profile, usage, ErrorEnvelope};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use std::sync::OnceLock;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tokenmeter",
        description = "An LLM chat portal's REST API: chat (OpenAI-compatible), conversations, \
                       quotas and usage, API tokens, jobs, administration. Answers are the \
                       envelope `{success, data, error}` unless said otherwise (chat \
                       completions and the model list speak OpenAI's shapes; CSV and \
                       server-sent events are marked). Sign in with the session cookie \
                       (`POST /api/auth/login`; writes from a browser need a matching \
                       `Origin`) or a personal API token as `Authorization: Bearer`."
    ),
    paths(
        auth::healthz, auth::readyz, auth::signup, auth::login, auth::logout, auth::me,
        profile::list_tokens, profile::create_token, profile::revoke_token,
        profile::change_password, profile::usage, profile::request_plan, profile::plans,
        notifications::list, notifications::mark_read, notifications::mark_all_read,
        usage::own_history, usage::user_history, usage::sync_user, usage::analytics,
        admin::list_users, admin::create_user, admin::update_user, admin::approve_user,
        admin::reject_user, admin::list_plans, admin::create_plan, admin::update_plan,
        chat::completions, chat::models, chat::list_conversations, chat::create_conversation,
        chat::get_conversation, chat::update_conversation, chat::delete_conversation,
        jobs::list_own, jobs::get_own, jobs::cancel_own, jobs::list_all, jobs::create,
        jobs::start_usage_sync, jobs::request_report, jobs::events, jobs::get_any,
        jobs::cancel_any, jobs::result, document,
    ),
    components(schemas(ErrorEnvelope)),
    // Every operation but those that say `security(())` (public) wants one of the two.
    security(("session" = []), ("bearer" = [])),
    modifiers(&Conventions),
    tags(
        (name = "auth", description = "Sign-up, log-in, the session"),
        (name = "profile", description = "The caller's own tokens, password, quota and plan"),
        (name = "chat", description = "OpenAI-compatible chat and the stored conversations"),
        (name = "usage", description = "Usage per day, synced from LiteLLM"),
        (name = "notifications", description = "The caller's notifications (the bell)"),
        (name = "jobs", description = "Background jobs"),
        (name = "admin", description = "Users and plans (admins only)"),
        (name = "health", description = "Liveness and readiness"),
        (name = "meta", description = "This document"),
    )
)]
pub struct ApiDoc;

/// One server-sent event of `GET /api/admin/jobs/events`, as OpenAPI 3.2 and schemathesis
/// read a stream: the event's fields.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // described, never built: the handler writes the event
pub struct JobsEvent {
    /// always `jobs`
    event: String,
    /// the JSON of a page of jobs, as the `data` of `GET /api/admin/jobs`
    data: String,
}

/// One server-sent event of a streamed `POST /api/chat/completions`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // described, never built: the handler writes the event
pub struct CompletionEvent {
    /// the JSON of a `chat.completion.chunk` (a piece of the reply; then `finish_reason`
    /// `stop`; then one with `usage` as in the whole reply and no choices), or of
    /// `{"error", "status", "recorded", "usage"?}` when the reply failed after it started;
    /// the last is `[DONE]`
    data: String,
}

/// What every operation shares: the two ways to sign in (their schemes), and the error
/// envelope as the `default` response.
struct Conventions;

impl Modify for Conventions {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::server::auth::SESSION_COOKIE,
            ))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("a personal API token (`POST /api/profile/tokens`)"))
                    .build(),
            ),
        );
        let error = ResponseBuilder::new()
            .description(
                "the error envelope: 400 validation (the message names the field and the \
                 allowed values), 401, 403, 404 (also another user's id), 405, 409, 413, \
                 429 (quota or rate limit), 500, 502 upstream, 503 busy",
            )
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorEnvelope",
                    ))))
                    .build(),
            )
            .build();
        for item in doc.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.patch,
                &mut item.delete,
                &mut item.put,
            ]
            .into_iter()
            .flatten()
            {
                op.responses
                    .responses
                    .entry("default".to_string())
                    .or_insert_with(|| RefOr::T(error.clone()));
            }
        }
    }
}

/// `schema_with` helpers: a string that is one of the names the server accepts, from the
/// same constants its checks use (so the document cannot list other values than the 400 does).
fn names(values: impl IntoIterator<Item = &'static str>) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .build()
}

/// A job type a job can be created of (those with a handler).
pub fn job_type() -> Object {
    names(
        crate::domain::jobs::JOB_TYPES
            .into_iter()
            .filter(|t| t.has_handler())
            .map(|t| t.as_str()),
    )
}

/// Any job type (a filter).
pub fn job_type_filter() -> Object {
    names(crate::domain::jobs::JOB_TYPES.map(|t| t.as_str()))
}

pub fn job_status() -> Object {
    names(crate::domain::jobs::JOB_STATUSES.map(|s| s.as_str()))
}

pub fn account_role() -> Object {
    names(crate::domain::account::Role::ALL.map(|r| r.as_str()))
}

pub fn message_role() -> Object {
    names(crate::domain::chat::Role::ALL)
}

/// `format` of the usage exports.
pub fn export_format() -> Object {
    names(["json", "csv"])
}

/// The document, built once.
pub fn spec() -> &'static str {
    static SPEC: OnceLock<String> = OnceLock::new();
    SPEC.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .expect("the document serializes")
    })
}

#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    responses((status = 200, description = "this document (OpenAPI 3.1)", body = Object)),
    security(())
)]
/// `GET /api/openapi.json`: this API's OpenAPI 3.1 document, for anyone.
pub async fn document() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], spec()).into_response()
}
