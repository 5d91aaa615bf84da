//! The command line: `tokenmeter [serve]`, `tokenmeter migrate`,
//! `tokenmeter create-admin --email ... [--password ...]`, `tokenmeter sync-usage [--email ...]`.

use crate::server::accounts;
use crate::server::auth::generate_password;
use crate::server::config::Config;
use crate::server::db::Db;
use crate::server::error::Result;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "tokenmeter",
    version,
    about = "Self-hosted LLM chat portal with token quotas"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Migrate the database and serve the app (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create an admin, or make an existing user an admin and set their password.
    CreateAdmin {
        #[arg(long)]
        email: String,
        /// The password; generated and printed when left out.
        #[arg(long, env = "TOKENMETER_ADMIN_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Sync usage from LiteLLM for every active user (or one) and exit; non-zero if any failed.
    SyncUsage {
        /// Only this user.
        #[arg(long)]
        email: Option<String>,
    },
}

pub async fn run(cli: Cli, config: Config) -> Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => crate::server::serve(config).await,
        Command::Migrate => {
            let db = Db::connect(&config.database_url, 1).await?;
            db.migrate().await?;
            println!("migrations applied ({})", db.backend());
            Ok(())
        }
        Command::CreateAdmin { email, password } => {
            let db = Db::connect(&config.database_url, 1).await?;
            db.migrate().await?;
            let (password, generated) = match password {
                Some(p) => (p, false),
                None => (generate_password(), true),
            };
            let user = accounts::create_admin(&db, &email, &password).await?;
            println!("{} is an admin", user.email);
            if generated {
                println!("password (shown once): {password}");
            }
            Ok(())
        }
        Command::SyncUsage { email } => sync_usage(config, email).await,
    }
}

async fn sync_usage(config: Config, email: Option<String>) -> Result<()> {
    use crate::server::usage_sync;
    let state = crate::server::init_state(config).await?;
    if let Some(email) = email {
        let user = crate::server::db::users::find_by_email(&state.db, &email)
            .await?
            .ok_or_else(|| crate::api::error::AppError::not_found("user"))?;
        let synced = usage_sync::sync_user_usage(&state, user.id).await?;
        println!(
            "{email}: {} to {}, LiteLLM reported use on {} day(s)",
            synced.from, synced.to, synced.days_reported
        );
        return Ok(());
    }
    let report = usage_sync::sync_all_users_usage(
        &state,
        &|p| {
            if p.done % 100 == 0 || p.done == p.total {
                eprintln!("{} / {} users ({} failed)", p.done, p.total, p.failed);
            }
        },
        &std::sync::atomic::AtomicBool::new(false),
    )
    .await?;
    for (user, error) in report.failures.iter().take(20) {
        eprintln!("failed: {user}: {error}");
    }
    println!(
        "synced {} users, {} day(s) with use, {} failed",
        report.users,
        report.days_reported,
        report.failures.len()
    );
    if report.failures.is_empty() {
        Ok(())
    } else {
        Err(crate::server::error::Error::internal(format!(
            "{} of {} users could not be synced",
            report.failures.len(),
            report.users
        )))
    }
}
