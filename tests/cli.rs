//! The `tokenmeter` binary's commands, run as a process against SQLite and PostgreSQL.

mod common;

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

on_both_backends!(migrate_then_create_admin);

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
        stderr.contains("TOKENMETER_SIGNUP must be one of: open, closed"),
        "{stderr}"
    );
}
