//! Raw command-line arguments, as clap parses them. Resolution into a
//! [`alembic_chain::Config`] happens in `lib.rs`, not here.

use std::path::PathBuf;

use alembic_chain::DatabaseUrl;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Shared with the `migrate` command of embedded binaries.
pub use alembic_embed::cli::{
    AcceptArgs, CurrentArgs, DowngradeArgs, HistoryArgs, StampArgs, UpgradeArgs,
};

/// Alembic's revision graph for Rust and PostgreSQL.
#[derive(Debug, Parser)]
#[command(
    name = "cargo-alembic",
    bin_name = "cargo alembic",
    version,
    about,
    max_term_width = 100
)]
#[allow(missing_docs)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Folder holding `versions/` [default: from Cargo metadata, else `migrations` at the workspace root]
    #[arg(long, global = true, value_name = "DIR")]
    pub script_location: Option<PathBuf>,
    /// Database URL [default: $DATABASE_URL, then `.env`]
    #[arg(long, global = true, value_name = "URL", hide_env_values = true, value_parser = url_value)]
    pub database_url: Option<DatabaseUrl>,
    /// Give up when another migrator holds the lock longer than this (`30s`, `500ms`) [default: `lock_timeout` in the metadata, else wait]
    #[arg(long, global = true, value_name = "DURATION", value_parser = alembic_chain::parse_duration)]
    pub lock_timeout: Option<std::time::Duration>,
    /// `SET lock_timeout` inside every revision (`5s`) [default: `statement_lock_timeout` in the metadata]
    #[arg(long, global = true, value_name = "DURATION", value_parser = alembic_chain::parse_duration)]
    pub statement_lock_timeout: Option<std::time::Duration>,
    /// Path to Cargo.toml of the workspace or package
    #[arg(long, global = true, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Package whose `[package.metadata.alembic]` to use
    #[arg(short = 'p', long, global = true, value_name = "SPEC")]
    pub package: Option<String>,
    /// Output format
    #[arg(long, global = true, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Print nothing on stdout; errors and notes still go to stderr (Alembic's `-q`)
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
    /// Many databases or tenant schemas at once
    #[command(flatten)]
    pub fleet: FleetArgs,
}

/// A fleet: the targets of `upgrade`, `downgrade`, `stamp` and `current`
/// beyond the one database.
#[derive(Debug, Args, Default)]
pub struct FleetArgs {
    /// Every schema of the database matching this `LIKE` pattern is a tenant (repeatable)
    #[arg(long, global = true, value_name = "PATTERN")]
    pub each_schema: Vec<String>,
    /// Every database on the URL's server matching this `LIKE` pattern (repeatable; templates excluded)
    #[arg(long, global = true, value_name = "PATTERN")]
    pub each_database: Vec<String>,
    /// A file of targets: `name = url` or a URL a line, `#` comments; `$VAR` takes the URL from the environment
    #[arg(long, global = true, value_name = "FILE")]
    pub targets: Option<PathBuf>,
    /// Targets at once
    #[arg(
        short = 'j',
        long,
        global = true,
        value_name = "N",
        default_value_t = 4
    )]
    pub jobs: usize,
    /// Run every target even after one failed
    #[arg(long, global = true)]
    pub keep_going: bool,
    /// This job's share of the targets, `I/N` (a stable split by name)
    #[arg(long, global = true, value_name = "I/N")]
    pub shard: Option<String>,
}

impl FleetArgs {
    /// Whether the command runs on a fleet.
    pub fn is_fleet(&self) -> bool {
        !self.each_schema.is_empty() || !self.each_database.is_empty() || self.targets.is_some()
    }
}

/// `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Text for people.
    Human,
    /// One JSON document on stdout.
    Json,
    /// GitHub Actions annotations (`verify`).
    Github,
    /// A JUnit XML report (`verify`).
    Junit,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new script location with an empty versions folder
    Init(InitArgs),
    /// Create a new revision file
    Revision(RevisionArgs),
    /// Create a revision that merges several revisions (usually `heads`)
    Merge(MergeArgs),
    /// Show the current head revisions
    Heads(HeadsArgs),
    /// Show the branch points
    Branches(VerboseArgs),
    /// List revisions, newest first
    History(HistoryArgs),
    /// Show one or more revisions
    Show(ShowArgs),
    /// Open a revision file in $VISUAL or $EDITOR
    Edit(EditArgs),
    /// Check the chain without a database: it parses, the graph is valid, one head
    Check(CheckArgs),
    /// Upgrade the database to a revision (default: head)
    Upgrade(UpgradeArgs),
    /// Downgrade the database to a revision (`-1`, `base`, an id, `label@base`)
    Downgrade(DowngradeArgs),
    /// Set the version table to revisions without running them
    Stamp(StampArgs),
    /// Show the database's current revisions and whether they are verified
    Current(CurrentArgs),
    /// Create the version table and the ledger if they do not exist yet
    #[command(name = "ensure_version", alias = "ensure-version")]
    EnsureVersion(EnsureVersionArgs),
    /// List the templates `init` can use
    #[command(name = "list_templates", alias = "list-templates")]
    ListTemplates,
    /// Record a deliberate edit of an applied revision (the old checksum is kept)
    Accept(AcceptArgs),
    /// Prove the chain against a throwaway PostgreSQL (no database URL needed)
    Verify(VerifyArgs),
    /// Convert a Python Alembic project, or another tool's migrations, into revision files
    Import(ImportArgs),
    /// Take over a database another tool migrated, running nothing (after `import`)
    Adopt(AdoptArgs),
    /// Write the revision that takes the head to the desired schema (`revision --autogenerate`, as Flask-Migrate's `db migrate`)
    Migrate(RevisionArgs),
    /// Replace a revision and everything below it with one proven revision; `--prune ID` removes the replaced files
    Squash(SquashArgs),
}

/// `squash`.
#[derive(Debug, Args)]
pub struct SquashArgs {
    /// The squash point: the new revision replaces it and every revision below it
    #[arg(required_unless_present = "prune", conflicts_with = "prune")]
    pub revision: Option<String>,
    /// Message, used for the file name and the header [default: `squash at REV`]
    #[arg(short, long)]
    pub message: Option<String>,
    /// Use this id instead of a generated one
    #[arg(long, value_name = "ID")]
    pub rev_id: Option<String>,
    /// Copy the replaced revisions' INSERT, UPDATE, DELETE, COPY and MERGE statements into the squash, in order
    #[arg(long, conflicts_with = "no_data")]
    pub include_data: bool,
    /// No database needs the rows the replaced revisions wrote: leave them out
    #[arg(long)]
    pub no_data: bool,
    /// Remove the files that squash ID replaced (once every database is past it)
    #[arg(long, value_name = "ID")]
    pub prune: Option<String>,
}

/// `import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The tool whose migrations these are
    #[arg(value_enum)]
    pub tool: ImportTool,
    /// Its migrations folder (for alembic: the script location, or an alembic.ini)
    pub path: PathBuf,
    /// The Python that imports the Alembic project's revisions [default: the active virtualenv's, else python3]
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Import Alembic revisions that cannot be rendered offline with what did render and a marker to complete by hand
    #[arg(long)]
    pub allow_manual: bool,
    /// Prove the Alembic import on throwaway databases: each revision run by Python Alembic and the imported SQL, schemas compared up and down
    #[arg(long)]
    pub check: bool,
}

/// `adopt`.
#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// The tool that migrated the database
    #[arg(value_enum)]
    pub tool: AdoptTool,
    /// Its migrations folder, whose files its records are checked against [default: migrations]
    pub path: Option<PathBuf>,
    /// Show what would be recorded, and write nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// The tools whose databases `adopt` takes over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AdoptTool {
    /// sqlx (`_sqlx_migrations`)
    Sqlx,
    /// refinery (`refinery_schema_history`)
    Refinery,
    /// diesel (`__diesel_schema_migrations`)
    Diesel,
}

impl AdoptTool {
    /// The same tool, as `import` reads its files.
    pub fn files(self) -> ImportTool {
        match self {
            AdoptTool::Sqlx => ImportTool::Sqlx,
            AdoptTool::Refinery => ImportTool::Refinery,
            AdoptTool::Diesel => ImportTool::Diesel,
        }
    }
}

/// The tools `import` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportTool {
    /// Python Alembic or Flask-Migrate: a script location, or an alembic.ini
    Alembic,
    /// sqlx: `<VERSION>_<DESCRIPTION>.sql`, or `.up.sql` and `.down.sql`
    Sqlx,
    /// refinery: `V<VERSION>__<NAME>.sql` and `U<VERSION>__<NAME>.sql`
    Refinery,
    /// diesel: `<version>_<name>/up.sql` and `down.sql`
    Diesel,
}

/// `init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder to create [default: the configured script location]
    pub directory: Option<PathBuf>,
    /// Template to use (`cargo alembic init --list-templates` lists them)
    #[arg(short, long, default_value = "generic")]
    pub template: String,
    /// List the available templates
    #[arg(long)]
    pub list_templates: bool,
}

/// `revision`.
#[derive(Debug, Args)]
pub struct RevisionArgs {
    /// Message, used for the file name and the header
    #[arg(short, long)]
    pub message: Option<String>,
    /// Use this id instead of a generated one
    #[arg(long, value_name = "ID")]
    pub rev_id: Option<String>,
    /// The revision to build on [default: head]; `base` starts a new root
    #[arg(long, value_name = "REV")]
    pub head: Option<String>,
    /// Allow `--head` to be a revision that is not a head (starts a branch)
    #[arg(long)]
    pub splice: bool,
    /// Branch label for the new revision
    #[arg(long, value_name = "LABEL")]
    pub branch_label: Vec<String>,
    /// Revisions or labels the new revision depends on
    #[arg(long, value_name = "REV")]
    pub depends_on: Vec<String>,
    /// Folder to write the file into (under the versions folder)
    #[arg(long, value_name = "DIR")]
    pub version_path: Option<PathBuf>,
    /// Run the revision outside a transaction (`transactional: false`)
    #[arg(long)]
    pub non_transactional: bool,
    /// Compare the head with the desired schema (throwaway PostgreSQL) and write the revision that goes there, proven
    #[arg(long)]
    pub autogenerate: bool,
    /// The desired schema: a .sql file or a folder of them [default: `schema` in the metadata]
    #[arg(long, value_name = "PATH")]
    pub schema: Option<PathBuf>,
    /// The desired schema is this database's, read-only (instead of schema files)
    #[arg(long, value_name = "URL", conflicts_with = "schema", value_parser = url_value)]
    pub from_database: Option<DatabaseUrl>,
}

/// `merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Revisions to merge, e.g. `heads` or two ids
    #[arg(required = true, allow_negative_numbers = true)]
    pub revisions: Vec<String>,
    /// Message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Use this id instead of a generated one
    #[arg(long, value_name = "ID")]
    pub rev_id: Option<String>,
    /// Branch label for the merge revision
    #[arg(long, value_name = "LABEL")]
    pub branch_label: Vec<String>,
    /// Allow revisions that are not heads
    #[arg(long)]
    pub splice: bool,
}

/// `ensure_version`.
#[derive(Debug, Args)]
pub struct EnsureVersionArgs {
    /// Print the SQL instead of running it
    #[arg(long)]
    pub sql: bool,
}

/// `-v` alone.
#[derive(Debug, Args)]
pub struct VerboseArgs {
    /// Show everything about each revision
    #[arg(short, long)]
    pub verbose: bool,
}

/// `heads`.
#[derive(Debug, Args)]
pub struct HeadsArgs {
    /// Show everything about each revision
    #[arg(short, long)]
    pub verbose: bool,
    /// Leave out heads that other revisions depend on
    #[arg(long)]
    pub resolve_dependencies: bool,
}

/// `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Use local PostgreSQL server binaries
    #[arg(long, conflicts_with = "docker")]
    pub local: bool,
    /// Use Docker (testcontainers)
    #[arg(long)]
    pub docker: bool,
    /// Accept several heads (also `allow_multiple_heads = true` in the metadata)
    #[arg(long)]
    pub allow_multiple_heads: bool,
    /// Check a real database read-only instead: edited, unknown, pending and
    /// unverified revisions (writes nothing); without URL, the configured
    /// database (and with --each-schema/--each-database/--targets, a fleet)
    #[arg(long, value_name = "URL", num_args = 0..=1, conflicts_with_all = ["local", "docker"], value_parser = url_value)]
    pub against: Option<Option<DatabaseUrl>>,
}

/// `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// Revision identifier (`head`, `heads`, an id or prefix, `label@head`, ...)
    #[arg(allow_hyphen_values = true, value_parser = alembic_embed::cli::revision_value)]
    pub rev: String,
}

/// `edit`.
#[derive(Debug, Args)]
pub struct EditArgs {
    /// Revision to open [default: head]
    #[arg(default_value = "head", allow_hyphen_values = true, value_parser = alembic_embed::cli::revision_value)]
    pub rev: String,
}

/// `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Accept several heads (also `allow_multiple_heads = true` in the metadata)
    #[arg(long)]
    pub allow_multiple_heads: bool,
    /// Also compare the head with this desired schema (a .sql file or a folder of them) [default: `schema` in the metadata]
    #[arg(long, value_name = "PATH")]
    pub schema: Option<PathBuf>,
}

impl Command {
    /// Read-only commands that need nothing but the script location, so
    /// they skip `cargo metadata` when `--script-location` is given.
    pub fn script_location_only(&self) -> bool {
        matches!(
            self,
            Command::Heads(_)
                | Command::Branches(_)
                | Command::History(HistoryArgs {
                    indicate_current: false,
                    ..
                })
                | Command::Show(_)
                | Command::Edit(_)
        )
    }
}

/// A URL flag's value. Given empty (`--database-url "$URL"` with the
/// variable unset) it is a usage error: the driver would otherwise connect
/// to libpq's defaults and fail with a message about something else.
fn url_value(text: &str) -> Result<DatabaseUrl, String> {
    if text.trim().is_empty() {
        Err("the URL is empty (is the variable meant to hold it set?)".into())
    } else {
        Ok(DatabaseUrl::new(text))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::normalize_argv;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        let argv: Vec<std::ffi::OsString> = std::iter::once("cargo-alembic")
            .chain(line.split_whitespace())
            .map(Into::into)
            .collect();
        Cli::try_parse_from(normalize_argv(argv))
    }

    /// clap reads `{n}` in help text as a line break: `V{n}__{name}.sql`
    /// in `import --help` printed as `V` and `__{name}.sql` on two lines.
    #[test]
    fn no_help_text_holds_a_line_break_marker() {
        fn walk(cmd: &clap::Command, path: &str, found: &mut Vec<String>) {
            let mut texts: Vec<String> = [cmd.get_about(), cmd.get_long_about()]
                .into_iter()
                .flatten()
                .map(ToString::to_string)
                .collect();
            for arg in cmd.get_arguments() {
                texts.extend(
                    [arg.get_help(), arg.get_long_help()]
                        .into_iter()
                        .flatten()
                        .map(ToString::to_string),
                );
                texts.extend(
                    arg.get_possible_values()
                        .iter()
                        .filter_map(|v| v.get_help().map(ToString::to_string)),
                );
            }
            found.extend(
                texts
                    .into_iter()
                    .filter(|t| t.contains("{n}"))
                    .map(|t| format!("{path}: {t}")),
            );
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), found);
            }
        }
        let mut found = Vec::new();
        walk(
            &<Cli as clap::CommandFactory>::command(),
            "cargo-alembic",
            &mut found,
        );
        assert!(found.is_empty(), "{found:#?}");
    }

    /// What users type, and whether it parses.
    #[test]
    fn argv_table() {
        let ok = [
            "alembic heads",
            "heads",
            "heads -v",
            "alembic history -r base:head",
            "history -r -3:current",
            "history --rev-range ae10:",
            "show head-1",
            "show -1",
            "revision -m msg --head base --branch-label net --depends-on ae10 --depends-on b2",
            "revision -m msg --splice --head ae10 --version-path migrations/versions/net",
            "merge heads -m joined",
            "merge ae10 b2c3 --rev-id m1",
            "check --allow-multiple-heads",
            "--script-location db heads --format json",
            "heads --script-location db -p svc --manifest-path x/Cargo.toml",
            "init",
            "init db --template generic",
            "edit",
            "migrate -m add-email",
            "migrate -m x --schema db/schema.sql",
            "revision --autogenerate -m x --from-database postgresql://h/db",
            "upgrade",
            "upgrade +2",
            "upgrade ae10:head --sql",
            "downgrade -1",
            "downgrade base",
            "downgrade head:base --sql",
            "stamp head",
            "stamp a1 b2 --purge",
            "stamp head --sql",
            "current -v",
            "history -i",
            "accept ae10 --reason fixed-a-comment",
            "verify",
            "verify --local --allow-multiple-heads",
            "verify --database-url postgresql://admin@db/postgres",
        ];
        for line in ok {
            assert!(parse(line).is_ok(), "{line}: {}", parse(line).unwrap_err());
        }
        let bad = [
            "",
            "alembic",
            "heads --format yaml",
            "merge",
            "show",
            "revision --head",
            "frobnicate",
        ];
        for line in bad {
            assert!(parse(line).is_err(), "{line} should not parse");
        }
        let cli = parse("alembic --format json history -r c0ff:").unwrap();
        assert_eq!(cli.global.format, Format::Json);
        assert!(
            matches!(cli.command, Command::History(HistoryArgs { rev_range: Some(ref r), verbose: false, indicate_current: false }) if r == "c0ff:")
        );
    }
}
