//! The `tokenmeter` binary's commands, run as a process against SQLite and PostgreSQL.

mod common;

use common::fake_litellm::{metrics, FakeLiteLlm, Unrecorded, MASTER_KEY};
use common::{fresh_database, Backend};
use std::process::Command;
use tokenmeter::server::db::{users, Db};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test]
            async fn $name() { super::$name(super::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $name() { super::$name(super::Backend::Postgres).await })*
        }
    };
}

on_both_backends!(migrate_then_create_admin, sync_usage_from_the_command_line);

fn tokenmeter(url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tokenmeter"))
        .args(args)
        .env("DATABASE_URL", url)
        .env_remove("TOKENMETER_ADMIN_PASSWORD")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run tokenmeter")
}

async fn migrate_then_create_admin(backend: Backend) {
    let (url, _dir) = fresh_database(backend).await;

    let out = tokenmeter(&url, &["migrate"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("migrations applied"));
    // Migrating again is a no-op, not an error.
    assert!(tokenmeter(&url, &["migrate"]).status.success());

    let out = tokenmeter(&url, &["create-admin", "--email", "Root@Example.com"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("root@example.com is an admin"), "{stdout}");
    assert!(stdout.contains("password (shown once):"), "{stdout}");

    let db = Db::connect(&url, 1).await.unwrap();
    let row = users::find_by_email(&db, "root@example.com")
        .await
        .unwrap()
        .expect("admin row");
    assert_eq!(row.role, "admin");
    assert!(row.password_hash.starts_with("$argon2id$"));

    // Again for the same address: the account is kept and gets the new password.
    let out = tokenmeter(
        &url,
        &[
            "create-admin",
            "--email",
            "root@example.com",
            "--password",
            "second-pass-1",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let again = users::find_by_email(&db, "root@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.id, row.id);
    assert_eq!(again.role, "admin");
    assert_ne!(again.password_hash, row.password_hash);

    // A bad address is refused with a message, and nothing is written.
    let out = tokenmeter(
        &url,
        &[
            "create-admin",
            "--email",
            "nope",
            "--password",
            "password-123",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("email"),
        "{out:?}"
    );
    let (count, _, _) = users::counts(&db).await.unwrap();
    assert_eq!(count, 1);
}

#[test]
fn a_malformed_setting_stops_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_tokenmeter"))
        .arg("migrate")
        .env("TOKENMETER_SIGNUP", "maybe")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("TOKENMETER_SIGNUP must be one of: approval, open, closed"),
        "{stderr}"
    );
}

/// A log read from a file or a pipe (`make run > log`) has no colour codes in it.
#[tokio::test]
async fn logs_to_a_pipe_are_plain_text() {
    let (url, _dir) = fresh_database(Backend::Sqlite).await;
    let out = Command::new(env!("CARGO_BIN_EXE_tokenmeter"))
        .arg("migrate")
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "debug")
        .output()
        .expect("run tokenmeter");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" DEBUG "), "no log line at all: {stdout}");
    assert!(
        !stdout.contains('\x1b'),
        "colour codes in a piped log: {stdout}"
    );
}

/// The fake LiteLLM, reporting 40 + 2 tokens today for every user.
async fn litellm_reporting_today() -> FakeLiteLlm {
    let fake = FakeLiteLlm::start().await;
    fake.script().unrecorded = Unrecorded::LastDay(metrics(40, 2, 0.0));
    fake
}

async fn sync_usage_from_the_command_line(backend: Backend) {
    let (url, _dir) = fresh_database(backend).await;
    let secret = tempfile::tempdir().unwrap();
    let key_file = secret.path().join("secret.key");
    let key_file = key_file.to_str().unwrap().to_string();
    let run = |args: &'static [&'static str], litellm: Option<String>| {
        let (url, key_file) = (url.clone(), key_file.clone());
        tokio::task::spawn_blocking(move || {
            let mut command = Command::new(env!("CARGO_BIN_EXE_tokenmeter"));
            command
                .args(args)
                // Not the LiteLLM peer `make test` runs for the integration suite.
                .env_remove("LITELLM_URL")
                .env_remove("LITELLM_MASTER_KEY")
                .env_remove("LLM_BASE_URL")
                .env("DATABASE_URL", &url)
                .env("TOKENMETER_ADMIN_EMAIL", "admin@example.com")
                .env("TOKENMETER_ADMIN_PASSWORD", "admin-password-1")
                .env("TOKENMETER_SECRET_FILE", &key_file)
                .env("RUST_LOG", "warn");
            if let Some(base) = litellm {
                command
                    .env("LITELLM_URL", base)
                    .env("LITELLM_MASTER_KEY", MASTER_KEY);
            }
            command.output().expect("run tokenmeter")
        })
    };
    // Without LiteLLM: a clear refusal, and a failing exit for cron to notice.
    let out = run(&["sync-usage"], None).await.unwrap();
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no LiteLLM proxy is configured"),
        "{out:?}"
    );
    let litellm = litellm_reporting_today().await.url;
    let out = run(&["sync-usage"], Some(litellm.clone())).await.unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("synced 1 users, 1 day(s) with use, 0 failed"),
        "{stdout}"
    );
    let out = run(
        &["sync-usage", "--email", "admin@example.com"],
        Some(litellm.clone()),
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("LiteLLM reported use on 1 day(s)"),
        "{out:?}"
    );
    let out = run(
        &["sync-usage", "--email", "nobody@example.com"],
        Some(litellm),
    )
    .await
    .unwrap();
    assert!(!out.status.success(), "{out:?}");
    let db = Db::connect(&url, 1).await.unwrap();
    let admin = users::find_by_email(&db, "admin@example.com")
        .await
        .unwrap()
        .unwrap();
    let rows = tokenmeter::server::db::usage_history::list_range(
        &db,
        admin.id,
        chrono::NaiveDate::from_ymd_opt(2000, 1, 1).unwrap(),
        chrono::NaiveDate::from_ymd_opt(2100, 1, 1).unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(
        (rows[0].tokens_used, rows[0].source.as_str()),
        (42, "litellm")
    );
}
