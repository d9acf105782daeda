//! The `cli` feature: a `migrate` command for the service's own command
//! line (`myapp migrate upgrade|downgrade|current|history`), for init
//! containers and operators, with the arguments and output of
//! `cargo alembic` (the CLI uses these very argument types).
//!
//! ```no_run
//! # alembic_embed::embed_migrations!("../migrations");
//! use clap::Parser;
//!
//! #[derive(clap::Parser)]
//! struct Cli {
//!     #[arg(long, env = "DATABASE_URL")]
//!     database_url: Option<String>,
//!     #[command(subcommand)]
//!     command: Option<Command>,
//! }
//!
//! #[derive(clap::Subcommand)]
//! enum Command {
//!     /// Manage the database's revisions
//!     Migrate(alembic_embed::cli::MigrateArgs),
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     let cli = Cli::parse();
//!     if let Some(Command::Migrate(args)) = &cli.command {
//!         return alembic_embed::cli::run(migrations::runner(), cli.database_url.as_deref(), args);
//!     }
//!     // ... upgrade and serve
//!     std::process::ExitCode::SUCCESS
//! }
//! ```

mod args;
#[doc(hidden)]
pub mod commands;

use std::io::Write as _;
use std::process::ExitCode;

pub use args::{
    revision_value, AcceptArgs, CurrentArgs, DowngradeArgs, HistoryArgs, MigrateArgs,
    MigrateCommand, RunFlags, StampArgs, UpgradeArgs,
};

use crate::runner::Runner;
use commands::{CommandError, Database, Output};

/// Runs a `migrate` command: output for people on stdout, diagnostics on
/// stderr; exit 0 on success, 1 when the operation failed, 2 on bad usage.
/// `database_url` is needed by everything but `history` and `--sql`.
pub fn run(runner: Runner, database_url: Option<&str>, args: &MigrateArgs) -> ExitCode {
    let db = Database {
        settings: runner.settings().clone(),
        url: database_url,
        no_url_help: "set DATABASE_URL, or use --sql to print the SQL instead".into(),
        reuse: None,
    };
    let out = &mut Text;
    let result = match &args.command {
        MigrateCommand::Upgrade(a) => commands::upgrade(&db, &runner, out, a),
        MigrateCommand::Downgrade(a) => commands::downgrade(&db, &runner, out, a),
        MigrateCommand::Current(a) => commands::current(&db, &runner, out, a),
        MigrateCommand::History(a) => commands::history(&db, &runner, out, a),
        MigrateCommand::Stamp(a) => commands::stamp(&db, &runner, out, a),
        MigrateCommand::Accept(a) => {
            let by = a.by.clone().or_else(|| std::env::var("USER").ok());
            let by = by.unwrap_or_else(|| "unknown".into());
            commands::accept(&db, &runner, out, a, &by)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let (message, help) = e.message_and_help();
            eprintln!("error: {message}");
            if let Some(help) = help {
                eprintln!("help: {help}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Alembic's text on standard output.
struct Text;

impl Output for Text {
    fn text(&mut self, text: &str) -> Result<(), CommandError> {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(CommandError::Output)
    }
}
