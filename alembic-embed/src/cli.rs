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

use std::process::ExitCode;

use alembic_core::display::{listing, HISTORY_STYLE};
use alembic_core::Resolver;
use clap::{Args, Subcommand};

use crate::engine::{Direction, Engine, Step};
use crate::errors::{exit_codes, EngineError};
use crate::runner::Runner;
use crate::tls::ConnectError;

/// `migrate <command>`.
#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: MigrateCommand,
}

/// The commands of `migrate`, as `cargo alembic` names them.
#[derive(Debug, Subcommand)]
pub enum MigrateCommand {
    /// Upgrade the database to a revision (default: head)
    Upgrade(UpgradeArgs),
    /// Downgrade the database to a revision (`-1`, `base`, an id, `label@base`)
    Downgrade(DowngradeArgs),
    /// Show the database's current revisions and whether they are verified
    Current(CurrentArgs),
    /// List revisions, newest first
    History(HistoryArgs),
    /// Set the version table without running revisions
    Stamp(StampArgs),
    /// Record a deliberate edit of an applied revision (keeps the old checksum and the reason)
    Accept(AcceptArgs),
}

/// `stamp`.
#[derive(Debug, Args)]
pub struct StampArgs {
    /// Revisions to set (`head`, `heads`, ids, `base`)
    #[arg(required = true)]
    pub revisions: Vec<String>,
    /// Empty the version table first (even of revisions not in the chain)
    #[arg(long)]
    pub purge: bool,
    /// Print the SQL instead of running it (offline; no database)
    #[arg(long)]
    pub sql: bool,
    /// Accepted as in Alembic; a stamp runs no revision, so no ledger row carries it
    #[arg(long, value_name = "TEXT")]
    pub tag: Option<String>,
}

/// `accept`.
#[derive(Debug, Args)]
pub struct AcceptArgs {
    /// The edited revision (an id or prefix, `current`, `heads`, `current-1`, ...)
    #[arg(allow_hyphen_values = true)]
    pub revision: String,
    /// Why the edit is safe, kept in the ledger
    #[arg(long, required = true)]
    pub reason: String,
    /// Who accepts it [default: git's user.email in `cargo alembic`, else $USER]
    #[arg(long)]
    pub by: Option<String>,
}

/// `history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Range `[start]:[end]`, e.g. `base:head`, `ae10:`, `:ae10`
    #[arg(short = 'r', long, value_name = "RANGE", allow_hyphen_values = true)]
    pub rev_range: Option<String>,
    /// Show everything about each revision
    #[arg(short, long)]
    pub verbose: bool,
    /// Mark the database's current revisions (needs a database URL)
    #[arg(short = 'i', long)]
    pub indicate_current: bool,
}

/// `upgrade`.
#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Target: `head`, `heads`, an id, `+2`, `label@head`; with --sql, `from:to`
    #[arg(default_value = "head", allow_hyphen_values = true)]
    pub revision: String,
    /// Print the SQL instead of running it (offline; no database)
    #[arg(long)]
    pub sql: bool,
    /// Commit each revision on its own (overrides `transaction_per_migration`)
    #[arg(long)]
    pub transaction_per_migration: bool,
    /// Record this text (a release, a ticket) with every revision the run applies
    #[arg(long, value_name = "TEXT")]
    pub tag: Option<String>,
}

/// `downgrade`.
#[derive(Debug, Args)]
pub struct DowngradeArgs {
    /// Target: `-1`, `base`, an id, `label@base`; with --sql, `from:to`
    #[arg(allow_hyphen_values = true)]
    pub revision: String,
    /// Print the SQL instead of running it (offline; no database)
    #[arg(long)]
    pub sql: bool,
    /// Commit each revision on its own (overrides `transaction_per_migration`)
    #[arg(long)]
    pub transaction_per_migration: bool,
    /// Record this text (a release, a ticket) with every revision the run applies
    #[arg(long, value_name = "TEXT")]
    pub tag: Option<String>,
}

/// `current`.
#[derive(Debug, Args)]
pub struct CurrentArgs {
    /// Show each revision in full, with its ledger record
    #[arg(short, long)]
    pub verbose: bool,
}

/// Why a command stopped, with its exit code (2 bad usage, 1 failure).
struct Stop {
    code: u8,
    message: String,
}

impl Stop {
    fn usage(message: impl Into<String>) -> Stop {
        Stop {
            code: exit_codes::USAGE,
            message: message.into(),
        }
    }

    fn failed(message: impl Into<String>) -> Stop {
        Stop {
            code: exit_codes::FAILED,
            message: message.into(),
        }
    }
}

impl From<EngineError> for Stop {
    fn from(e: EngineError) -> Self {
        Stop {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

impl From<ConnectError> for Stop {
    fn from(e: ConnectError) -> Self {
        Stop {
            code: e.exit_code(),
            message: e.to_string(),
        }
    }
}

/// Runs a `migrate` command: output for people on stdout, diagnostics on
/// stderr; exit 0 on success, 1 when the operation failed, 2 on bad usage.
/// `database_url` is needed by everything but `history` and `--sql`.
pub fn run(runner: Runner, database_url: Option<&str>, args: &MigrateArgs) -> ExitCode {
    match dispatch(runner, database_url, args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(stop) => {
            eprintln!("error: {}", stop.message);
            ExitCode::from(stop.code)
        }
    }
}

fn connect(database_url: Option<&str>) -> Result<postgres::Client, Stop> {
    let url = database_url
        .ok_or_else(|| Stop::usage("this command needs a database: set DATABASE_URL"))?;
    Ok(crate::tls::connect(url)?)
}

fn print_step(step: &Step) {
    println!(
        "{} ({:.0} ms)",
        step.description,
        step.duration.as_secs_f64() * 1000.0
    );
}

fn dispatch(runner: Runner, database_url: Option<&str>, args: &MigrateArgs) -> Result<(), Stop> {
    let map = runner.chain().map()?;
    match &args.command {
        MigrateCommand::Upgrade(a) => migrate(
            runner,
            database_url,
            &a.revision,
            a.sql,
            a.transaction_per_migration,
            a.tag.as_deref(),
            Direction::Upgrade,
        ),
        MigrateCommand::Downgrade(a) => migrate(
            runner,
            database_url,
            &a.revision,
            a.sql,
            a.transaction_per_migration,
            a.tag.as_deref(),
            Direction::Downgrade,
        ),
        MigrateCommand::Current(a) => {
            let mut client = connect(database_url)?;
            let engine = Engine::new(map, runner.settings().clone());
            let current = engine.current(&mut client)?;
            print!("{}", engine.current_text(&current, a.verbose));
            let edited = engine.edited(&current);
            if edited.is_empty() {
                Ok(())
            } else {
                Err(Stop::failed(format!(
                    "applied revisions edited since they ran: {}; upgrade will refuse to run until the binary has the original files or the edit is accepted (`{} accept <revision> --reason \"...\"`)",
                    edited.join(", "),
                    runner.settings().command
                )))
            }
        }
        MigrateCommand::Stamp(a) => {
            let engine = Engine::new(map, runner.settings().clone());
            let targets: Vec<&str> = a.revisions.iter().map(String::as_str).collect();
            if a.sql {
                print!("{}", engine.stamp_sql_offline(&[], &targets, a.purge)?);
                return Ok(());
            }
            let mut client = connect(database_url)?;
            let report = engine.stamp(&mut client, &targets, a.purge)?;
            println!("{}", report.stamped());
            Ok(())
        }
        MigrateCommand::Accept(a) => {
            if a.reason.trim().is_empty() {
                return Err(Stop::usage("--reason must say why the edit is safe"));
            }
            let by =
                a.by.clone()
                    .or_else(|| std::env::var("USER").ok())
                    .unwrap_or_else(|| "unknown".into());
            let mut client = connect(database_url)?;
            let engine = Engine::new(map, runner.settings().clone());
            let accepted = engine.accept(&mut client, &a.revision, &a.reason, &by)?;
            print!("{}", crate::engine::accepted_text(&accepted, &by));
            Ok(())
        }
        MigrateCommand::History(a) => {
            let current = if a.indicate_current {
                let mut client = connect(database_url)?;
                Some(
                    Engine::new(map, runner.settings().clone())
                        .current(&mut client)?
                        .known,
                )
            } else {
                None
            };
            let resolver = match &current {
                Some(rows) => Resolver::with_current(map, rows.clone()),
                None => Resolver::new(map),
            };
            let revs = match &a.rev_range {
                Some(range) => resolver.history(range).map_err(EngineError::from)?,
                None => map.order().iter().rev().copied().collect(),
            };
            let marks = current.as_deref().filter(|_| !a.verbose);
            print!("{}", listing(map, &revs, a.verbose, HISTORY_STYLE, marks));
            Ok(())
        }
    }
}

fn migrate(
    runner: Runner,
    database_url: Option<&str>,
    revision: &str,
    sql: bool,
    per_migration: bool,
    tag: Option<&str>,
    direction: Direction,
) -> Result<(), Stop> {
    let runner = if per_migration {
        runner.transaction_per_migration(true)
    } else {
        runner
    };
    let runner = match tag {
        Some(tag) => runner.tag(tag),
        None => runner,
    };
    if sql {
        let engine = Engine::new(runner.chain().map()?, runner.settings().clone());
        let text = match direction {
            Direction::Upgrade => engine.upgrade_sql_range(revision)?,
            Direction::Downgrade => engine.downgrade_sql_range(revision)?,
        };
        print!("{text}");
        return Ok(());
    }
    if revision.contains(':') {
        return Err(Stop::usage(
            "a range `from:to` needs --sql; online, the run starts from the database's current state",
        ));
    }
    let mut client = connect(database_url)?;
    let report = crate::connection::wait(runner.run_reporting(
        &mut client,
        revision,
        direction,
        &mut print_step,
    ))?;
    for note in report.notes() {
        eprintln!("{note}");
    }
    println!("{}", report.summary(direction.word()));
    Ok(())
}
