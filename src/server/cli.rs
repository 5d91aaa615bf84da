//! The command line: `tokenmeter [serve]`, `tokenmeter migrate`,
//! `tokenmeter create-admin --email ... [--password ...]`.

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
    }
}
