//! The arguments of the database commands, shared by `cargo alembic` and
//! an embedded `migrate`.

use clap::{Args, Subcommand};

/// A revision identifier given on the command line, where values may
/// start with `-` (`-1`, `-1:base`): one that starts with `--` is an
/// option this command does not have (a mistyped `--sql`), never a
/// revision, and is refused as such rather than looked up.
#[doc(hidden)]
pub fn revision_value(value: &str) -> Result<String, String> {
    if value.starts_with("--") {
        return Err(format!(
            "no revision starts with `--`: `{value}` is an option (check its spelling, and see --help)"
        ));
    }
    Ok(value.to_owned())
}

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
    /// Revisions to set (`head`, `heads`, ids, `base`, `-1`); with --sql, `from:to`
    #[arg(required = true, allow_negative_numbers = true)]
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
    #[arg(allow_hyphen_values = true, value_parser = revision_value)]
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
    #[arg(short = 'r', long, value_name = "RANGE", allow_hyphen_values = true, value_parser = revision_value)]
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
    #[arg(default_value = "head", allow_hyphen_values = true, value_parser = revision_value)]
    pub revision: String,
    /// How the run goes.
    #[command(flatten)]
    pub run: RunFlags,
}

/// `downgrade`.
#[derive(Debug, Args)]
pub struct DowngradeArgs {
    /// Target: `-1`, `base`, an id, `label@base`; with --sql, `from:to`
    #[arg(allow_hyphen_values = true, value_parser = revision_value)]
    pub revision: String,
    /// How the run goes.
    #[command(flatten)]
    pub run: RunFlags,
}

/// The flags `upgrade` and `downgrade` share.
#[derive(Debug, Args)]
pub struct RunFlags {
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
    /// Fail (exit 1) unless the database is on every head revision
    #[arg(short = 'c', long)]
    pub check_heads: bool,
}
