//! Account services shared by the server functions and the REST API: sign-up, log-in, log-out,
//! admin user management, personal API tokens and the first admin.

use crate::api::error::{AppError, ErrorCode};
use crate::api::{ApiTokenDto, CreatedTokenDto, PasswordChangedDto, UserCountsDto, UserDto};
use crate::domain::account::{
    normalize_email, normalize_token_name, validate_password, Approval, Role, MAX_EMAIL_LEN,
    MAX_PASSWORD_BYTES, MAX_PASSWORD_LEN,
};
use crate::domain::text::for_log;
use crate::server::auth::{self, new_secret, Principal, TOKEN_PREFIX};
use crate::server::config::SignupMode;
use crate::server::db::{self, api_tokens, login_failures, sessions, signup_attempts, users, Db};
use crate::server::error::{is_unique_violation, Error, Result};
use crate::server::state::AppState;
use chrono::Duration;
use uuid::Uuid;

/// A new session: the user and the secret for the cookie.
pub struct NewSession {
    pub user: UserDto,
    pub secret: String,
}

fn validation(message: String) -> Error {
    AppError::validation(message).into()
}

/// Creates a user; a taken address is a 409 naming it.
#[tracing::instrument(skip(db, email, password), fields(email = %for_log(email, 64)), err(level = "info"))]
pub async fn create_user(
    db: &Db,
    email: &str,
    password: &str,
    role: Role,
    approval: Approval,
) -> Result<UserDto> {
    let email = normalize_email(email).map_err(validation)?;
    validate_password(password).map_err(validation)?;
    let hash = auth::hash_password(password.to_string()).await?;
    let row = users::insert(
        db,
        users::NewUser {
            id: Uuid::new_v4(),
            email: &email,
            password_hash: &hash,
            role: role.as_str(),
            approval: approval.as_str(),
            now: db::now(),
        },
    )
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            AppError::conflict(format!("an account with email {email} already exists")).into()
        } else {
            Error::from(e)
        }
    })?;
    Ok(row.into())
}

async fn start_session(state: &AppState, user: UserDto) -> Result<NewSession> {
    let (secret, id_hash) = new_secret("");
    let now = db::now();
    let expires = now + Duration::hours(state.config.session_ttl_hours);
    sessions::insert(&state.db, &id_hash, user.id, now, expires).await?;
    Ok(NewSession { user, secret })
}

/// What a sign-up led to.
pub enum SignedUp {
    /// Open sign-up: the account is in use at once.
    SignedIn(NewSession),
    /// The account waits for an admin's approval; no session until then.
    Pending(UserDto),
}

/// Sign-up: creates a user and signs them in (`open`), or leaves the account waiting for an
/// admin (`approval`); `closed` refuses. At most `TOKENMETER_SIGNUPS_PER_IP_PER_HOUR` from one
/// address, counted before the account is made.
#[tracing::instrument(skip(state, email, password), fields(email = %for_log(email, 64)), err(level = "info"))]
pub async fn signup(state: &AppState, email: &str, password: &str, ip: &str) -> Result<SignedUp> {
    if state.config.signup == SignupMode::Closed {
        return Err(AppError::forbidden(
            "sign-up is closed on this server; ask an admin for an account",
        )
        .into());
    }
    // The input first (cheap), then the address's count, then the hashing.
    let normalized = normalize_email(email).map_err(validation)?;
    validate_password(password).map_err(validation)?;
    let now = db::now();
    let hour_ago = now - Duration::hours(1);
    let (attempt, count) = signup_attempts::record_and_count(&state.db, ip, now, hour_ago).await?;
    if count > state.config.signups_per_ip_per_hour {
        signup_attempts::forget(&state.db, attempt).await?;
        tracing::warn!(ip = %for_log(ip, 64), count, "sign-up rate limited");
        return Err(AppError::new(
            ErrorCode::RateLimited,
            "too many sign-ups from this address; try again in an hour",
        )
        .into());
    }
    let approval = match state.config.signup {
        SignupMode::Approval => Approval::Pending,
        _ => Approval::Approved,
    };
    let user = create_user(&state.db, &normalized, password, Role::User, approval).await?;
    if approval == Approval::Pending {
        tracing::info!(user_id = %user.id, "signed up; waiting for approval");
        return Ok(SignedUp::Pending(user));
    }
    tracing::info!(user_id = %user.id, "signed up");
    Ok(SignedUp::SignedIn(start_session(state, user).await?))
}

/// An admin approves or rejects a pending sign-up: 404 for no such user, 409 when it is not
/// pending (decided already, or never asked).
#[tracing::instrument(skip(state, actor), fields(actor = %actor.user.id), err(level = "info"))]
pub async fn decide_signup(
    state: &AppState,
    actor: &Principal,
    id: Uuid,
    approve: bool,
) -> Result<UserDto> {
    let decision = if approve {
        Approval::Approved
    } else {
        Approval::Rejected
    };
    match users::decide_approval(&state.db, id, decision.as_str(), db::now())
        .await?
        .announce(state)
        .await
    {
        Some(row) => {
            tracing::info!(user_id = %id, decision = decision.as_str(), "sign-up decided");
            Ok(row.into())
        }
        None => match users::find_by_id(&state.db, id).await? {
            None => Err(AppError::not_found("user").into()),
            Some(row) => Err(AppError::conflict(format!(
                "this account is {}, not waiting for approval",
                row.approval
            ))
            .into()),
        },
    }
}

/// Checks the password and opens a session. The attempt is counted before the password is
/// looked at (one insert, then the counts that include it), so parallel attempts cannot pass
/// the limits together: too many for the account or the address within the window is a 429.
#[tracing::instrument(skip(state, email, password), fields(email = %for_log(email, 64)), err(level = "info"))]
pub async fn login(state: &AppState, email: &str, password: &str, ip: &str) -> Result<NewSession> {
    let cfg = &state.config;
    // Lengths first: nothing is done with (or logged of) a 2 MB address or password.
    let email = email.trim();
    if email.len() > MAX_EMAIL_LEN {
        return Err(validation(format!(
            "email must be at most {MAX_EMAIL_LEN} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(validation(format!(
            "password must be at most {MAX_PASSWORD_LEN} characters"
        )));
    }
    let email = email.to_lowercase();
    if email.is_empty() || password.is_empty() {
        return Err(validation("email and password are required".into()));
    }
    // The password check's place first: a full queue refuses now, before the attempt costs
    // any database work (1,000 log-ins at once cost 32 attempts' reads, not 1,000).
    let place = auth::password_check_place()?;
    let now = db::now();
    let window_start = now - Duration::minutes(cfg.login_window_minutes);
    let attempt = login_failures::record(&state.db, &email, ip, now).await?;
    let (by_account, by_ip) =
        login_failures::count_since(&state.db, &email, ip, window_start).await?;
    if by_account > cfg.login_max_failures || by_ip > cfg.login_max_failures_per_ip {
        // Refused before any check: it is no failure, and must not prolong the lockout.
        login_failures::forget(&state.db, attempt).await?;
        tracing::warn!(ip = %for_log(ip, 64), by_account, by_ip, "log-in rate limited");
        return Err(AppError::new(
            ErrorCode::RateLimited,
            format!(
                "too many failed log-in attempts; try again in {} minutes",
                cfg.login_window_minutes
            ),
        )
        .into());
    }
    let row = users::find_by_email(&state.db, &email).await?;
    let checked = auth::verify_password(
        place,
        password.to_string(),
        row.as_ref().map(|r| r.password_hash.clone()),
    )
    .await;
    // A wrong password leaves the attempt counted as a failure; a right one (whatever the
    // account's state) and one never checked (the server was busy) are no failure.
    let row = match (row, checked) {
        (Some(row), Ok(true)) => row,
        (_, Ok(_)) => {
            return Err(AppError::new(ErrorCode::Unauthorized, "wrong email or password").into())
        }
        (_, Err(e)) => {
            login_failures::forget(&state.db, attempt).await?;
            return Err(e);
        }
    };
    // Signing in below clears the address's failures, this attempt's with them.
    if row.disabled || row.approval != Approval::Approved.as_str() {
        login_failures::forget(&state.db, attempt).await?;
    }
    if row.disabled {
        return Err(AppError::forbidden("this account has been disabled").into());
    }
    match Approval::parse(&row.approval) {
        Some(Approval::Approved) => {}
        Some(Approval::Rejected) => {
            return Err(AppError::forbidden(
                "an admin did not approve this account; ask them if you think that is a mistake",
            )
            .into())
        }
        _ => return Err(AppError::forbidden(
            "your account is waiting for an admin's approval; try again once they have let you in",
        )
        .into()),
    }
    login_failures::clear(&state.db, &email, window_start).await?;
    sessions::delete_expired(&state.db, now).await?;
    tracing::info!(user_id = %row.id, "logged in");
    start_session(state, row.into()).await
}

/// Ends the caller's session (a no-op for API-token callers: tokens are revoked instead).
#[tracing::instrument(skip_all, err(level = "info"))]
pub async fn logout(state: &AppState, principal: Option<&Principal>) -> Result<()> {
    if let Some(Principal {
        via: auth::AuthVia::Session(id_hash),
        ..
    }) = principal
    {
        sessions::delete(&state.db, id_hash)
            .await?
            .announce(state)
            .await;
    }
    Ok(())
}

/// Changes the caller's password after checking the current one, and signs out their other
/// sessions (a password change is what people do when they fear someone else is signed in),
/// and revokes their API tokens when asked, all in one transaction.
#[tracing::instrument(skip_all, fields(user_id = %principal.user.id), err(level = "info"))]
pub async fn change_password(
    state: &AppState,
    principal: &Principal,
    current: &str,
    new: &str,
    revoke_api_tokens: bool,
) -> Result<PasswordChangedDto> {
    validate_password(new).map_err(|m| validation(format!("new_{m}")))?;
    let row = users::find_by_id(&state.db, principal.user.id)
        .await?
        .ok_or_else(|| AppError::not_found("user"))?;
    if current.len() > MAX_PASSWORD_BYTES
        || !auth::verify_password(
            auth::password_check_place()?,
            current.to_string(),
            Some(row.password_hash),
        )
        .await?
    {
        return Err(validation("current_password is wrong".into()));
    }
    let hash = auth::hash_password(new.to_string()).await?;
    let keep = match &principal.via {
        auth::AuthVia::Session(id_hash) => Some(id_hash.as_str()),
        auth::AuthVia::ApiToken(_) => None,
    };
    let ended = users::set_password(&state.db, row.id, &hash, keep, revoke_api_tokens, db::now())
        .await?
        .announce(state)
        .await
        .ok_or_else(|| AppError::not_found("user"))?;
    tracing::info!(
        ended_sessions = ended.sessions,
        revoked_api_tokens = ended.api_tokens,
        "password changed"
    );
    Ok(PasswordChangedDto {
        other_sessions_ended: ended.sessions as i64,
        api_tokens_revoked: ended.api_tokens as i64,
    })
}

/// Admin listing, a page at a time (limit 1..=1000).
#[tracing::instrument(skip(db), err(level = "info"))]
pub async fn list_users(db: &Db, limit: i64, offset: i64) -> Result<Vec<UserDto>> {
    if !(1..=1000).contains(&limit) {
        return Err(validation("limit must be between 1 and 1000".into()));
    }
    if offset < 0 {
        return Err(validation("offset must be 0 or more".into()));
    }
    let rows = users::list(db, limit, offset).await?;
    Ok(rows.into_iter().map(UserDto::from).collect())
}

pub async fn user_counts(db: &Db) -> Result<UserCountsDto> {
    let (users, admins, disabled) = users::counts(db).await?;
    Ok(UserCountsDto {
        users,
        admins,
        disabled,
    })
}

/// Checks an admin's change of a user's role or disabled flag without writing it: admins
/// cannot demote or disable themselves (409).
pub fn check_user_change(
    actor: &Principal,
    id: Uuid,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<()> {
    if id == actor.user.id && (role == Some(Role::User) || disabled == Some(true)) {
        return Err(AppError::conflict(
            "you cannot remove your own admin role or disable yourself; ask another admin",
        )
        .into());
    }
    Ok(())
}

/// An admin changes a user's role or disabled flag. Admins cannot demote or disable
/// themselves (409): that is how a server ends up with no admin.
#[tracing::instrument(skip(state, actor), fields(actor = %actor.user.id), err(level = "info"))]
pub async fn update_user(
    state: &AppState,
    actor: &Principal,
    id: Uuid,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<UserDto> {
    if role.is_none() && disabled.is_none() {
        return Err(validation(
            "nothing to change: give role (user, admin) and/or disabled (true, false)".into(),
        ));
    }
    check_user_change(actor, id, role, disabled)?;
    let row = users::update(&state.db, id, role.map(Role::as_str), disabled, db::now())
        .await?
        .announce(state)
        .await
        .ok_or_else(|| AppError::not_found("user"))?;
    tracing::info!(user_id = %id, ?role, ?disabled, "user updated");
    Ok(row.into())
}

fn token_dto(row: api_tokens::ApiTokenRow) -> ApiTokenDto {
    ApiTokenDto {
        id: row.id,
        name: row.name,
        prefix: row.token_prefix,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
    }
}

#[tracing::instrument(skip(db), err(level = "info"))]
pub async fn list_tokens(db: &Db, user_id: Uuid) -> Result<Vec<ApiTokenDto>> {
    let rows = api_tokens::list_active(db, user_id).await?;
    Ok(rows.into_iter().map(token_dto).collect())
}

/// Creates a personal API token; its secret is in the answer and nowhere else.
#[tracing::instrument(skip(db, name), err(level = "info"))]
pub async fn create_token(db: &Db, user_id: Uuid, name: &str) -> Result<CreatedTokenDto> {
    let name = normalize_token_name(name).map_err(validation)?;
    let (secret, hash) = new_secret(TOKEN_PREFIX);
    let prefix: String = secret.chars().take(TOKEN_PREFIX.len() + 6).collect();
    let row = api_tokens::insert(
        db,
        api_tokens::NewApiToken {
            id: Uuid::new_v4(),
            user_id,
            name: &name,
            token_hash: &hash,
            token_prefix: &prefix,
            now: db::now(),
        },
    )
    .await?;
    Ok(CreatedTokenDto {
        token: token_dto(row),
        secret,
    })
}

/// Revokes one of the user's tokens: somebody else's is 404, an already revoked one 409.
#[tracing::instrument(skip(db), err(level = "info"))]
pub async fn revoke_token(db: &Db, user_id: Uuid, id: Uuid) -> Result<()> {
    let token = api_tokens::find_owned(db, id, user_id)
        .await?
        .ok_or_else(|| AppError::not_found("API token"))?;
    if token.revoked_at.is_some() || !api_tokens::revoke(db, id, user_id, db::now()).await? {
        return Err(AppError::conflict("this API token is already revoked").into());
    }
    Ok(())
}

/// Makes `email` an admin: creates the account, or promotes an existing one and (when a
/// password is given) resets its password. Used by `create-admin` and the first start.
#[tracing::instrument(skip(db, email, password), fields(email = %for_log(email, 64)), err(level = "info"))]
pub async fn create_admin(db: &Db, email: &str, password: &str) -> Result<UserDto> {
    let normalized = normalize_email(email).map_err(validation)?;
    validate_password(password).map_err(validation)?;
    match users::find_by_email(db, &normalized).await? {
        None => create_user(db, &normalized, password, Role::Admin, Approval::Approved).await,
        Some(existing) => {
            let hash = auth::hash_password(password.to_string()).await?;
            // Run from the command line: running servers on PostgreSQL hear of it (its
            // sessions were ended with the promotion).
            let row = users::promote_to_admin(db, existing.id, &hash, db::now())
                .await?
                .announce_to_servers(db)
                .await
                .ok_or_else(|| Error::internal("user vanished while promoting"))?;
            Ok(row.into())
        }
    }
}

/// On a server with no admin, creates one from `TOKENMETER_ADMIN_EMAIL` /
/// `TOKENMETER_ADMIN_PASSWORD` (defaults: admin@tokenmeter.local and a generated password,
/// printed once). Returns the account and the password when it was generated.
#[tracing::instrument(skip_all, err(level = "info"))]
pub async fn ensure_admin(state: &AppState) -> Result<Option<(UserDto, Option<String>)>> {
    let (_, admins, _) = users::counts(&state.db).await?;
    if admins > 0 {
        return Ok(None);
    }
    let email = state
        .config
        .admin_email
        .clone()
        .unwrap_or_else(|| "admin@tokenmeter.local".into());
    let (password, generated) = match &state.config.admin_password {
        Some(p) => (p.clone(), false),
        None => (auth::generate_password(), true),
    };
    match create_admin(&state.db, &email, &password).await {
        Ok(user) => Ok(Some((user, generated.then_some(password)))),
        // Another instance starting on the same database created it a moment ago.
        Err(Error::App(AppError {
            code: ErrorCode::Conflict,
            ..
        })) => Ok(None),
        Err(other) => Err(other),
    }
}
