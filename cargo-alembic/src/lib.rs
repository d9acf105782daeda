//! `cargo alembic`: the command-line front end of cargo-alembic.
//!
//! `main` parses arguments, resolves one [`Config`], and dispatches to a
//! command in `commands`. Everything about revisions, graphs and
//! identifiers lives in `alembic-chain`, shared with the embedded runtime.
#![warn(missing_docs)]

mod args;
mod autogen;
mod catalog;
mod commands;
mod errors;
pub mod exit_codes;
mod output;
mod snapshot;

use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use alembic_chain::{load_versions, Config, Overrides, RevisionMap};

pub use args::{Cli, Command, Format};
pub use errors::CliError;

/// What every command gets: the resolved configuration and the output format.
pub(crate) struct Ctx {
    pub(crate) config: Config,
    pub(crate) format: Format,
    pub(crate) cwd: PathBuf,
    /// `--database-url` as given: `verify` uses an existing server only
    /// when asked explicitly, never `DATABASE_URL` from the environment.
    pub(crate) database_url_flag: Option<alembic_chain::DatabaseUrl>,
    /// The process ends when the command returns (`main`, not a test
    /// calling [`run`]).
    pub(crate) exits: bool,
}

impl Ctx {
    /// Disposes of a large value (a loaded chain) at the end of a command:
    /// when the process ends right after, it is left to the operating
    /// system (freeing 10,000 revisions one by one costs about a
    /// millisecond per thousand on a command that is otherwise ~10 ms);
    /// otherwise it is dropped.
    pub(crate) fn discard<T>(&self, value: T) {
        if self.exits {
            std::mem::forget(value);
        } else {
            drop(value);
        }
    }

    /// A path as GitHub wants it in annotations: relative to the
    /// repository (the workspace root, else the current directory).
    pub(crate) fn annotation_path(&self, path: &str) -> String {
        let full = self.cwd.join(path);
        let root = self.config.workspace_root.as_deref().unwrap_or(&self.cwd);
        full.strip_prefix(root)
            .map_or_else(|_| path.to_owned(), |p| p.display().to_string())
    }

    /// A path as the user gave it: relative to the current folder when it
    /// is under it (configured paths are made absolute, and some readers
    /// make them canonical).
    pub(crate) fn shown<'p>(&self, path: &'p Path) -> &'p Path {
        path.strip_prefix(&self.cwd)
            .ok()
            .or_else(|| {
                let canonical = self.cwd.canonicalize().ok()?;
                path.strip_prefix(canonical).ok()
            })
            .unwrap_or(path)
    }

    /// Loads and validates the chain under the configured versions folder.
    pub(crate) fn load(&self) -> Result<RevisionMap, CliError> {
        Ok(load_versions(&self.config.versions_dir())?)
    }
}

/// Drops the `alembic` argument cargo passes when run as `cargo alembic`.
pub fn normalize_argv(mut argv: Vec<OsString>) -> Vec<OsString> {
    if argv.get(1).is_some_and(|a| a == "alembic") {
        argv.remove(1);
    }
    argv
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> ExitCode {
    let argv = normalize_argv(std::env::args_os().collect());
    let mut command = <Cli as clap::CommandFactory>::command();
    let parsed = command
        .try_get_matches_from_mut(argv)
        .and_then(|mut matches| {
            <Cli as clap::FromArgMatches>::from_arg_matches_mut(&mut matches)
                .map_err(|e| e.format(&mut command))
        });
    // The process ends after the command: the parser's definition of every
    // command is left to the operating system, as a loaded chain is
    // (freeing it argument by argument was a quarter of parsing).
    std::mem::forget(command);
    let cli = match parsed {
        Ok(cli) => cli,
        Err(mut e) => {
            if let Some(tip) = alembic_option_tip(&e) {
                e.insert(
                    clap::error::ContextKind::Suggested,
                    clap::error::ContextValue::StyledStrs(vec![tip.into()]),
                );
            }
            let _ = e.print();
            // clap: 0 for --help/--version, 2 for usage errors.
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(exit_codes::USAGE));
        }
    };
    // The engine tells through `log` what would otherwise be silent, such as
    // waiting for another migrator's lock; the CLI shows it as notes.
    let _ = env_logger::Builder::new()
        .filter_level(log::LevelFilter::Off)
        .filter_module("alembic_embed", log::LevelFilter::Info)
        .format(|buf, record| {
            use std::io::Write as _;
            writeln!(buf, "note: {}", record.args())
        })
        .try_init();
    let fancy = std::io::stderr().is_terminal();
    let _ = miette::set_hook(Box::new(move |_| {
        Box::new(
            miette::MietteHandlerOpts::new()
                .terminal_links(false)
                .unicode(fancy)
                .color(fancy && std::env::var_os("NO_COLOR").is_none())
                // Wrap for people at a terminal; keep one line per message in
                // logs and CI output, where grep reads it.
                .width(100)
                .wrap_lines(fancy)
                .build(),
        )
    }));
    match run_then_exit(cli, true) {
        Ok(()) => ExitCode::from(exit_codes::OK),
        Err(e) => {
            let code = e.exit_code();
            eprintln!("{:?}", miette::Report::new(e));
            ExitCode::from(code)
        }
    }
}

/// What to say instead of "unexpected argument" when a user coming from
/// Python Alembic types one of its options that have no place here: the
/// ones that pick an `alembic.ini` or pass values to `env.py`.
fn alembic_option_tip(e: &clap::Error) -> Option<&'static str> {
    if e.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    let clap::error::ContextValue::String(arg) = e.get(clap::error::ContextKind::InvalidArg)?
    else {
        return None;
    };
    let name = arg.split_once('=').map_or(arg.as_str(), |(name, _)| name);
    Some(match name {
        "-c" | "--config" => {
            "cargo alembic has no alembic.ini: it reads `[package.metadata.alembic]` or \
             `[workspace.metadata.alembic]` in Cargo.toml (another one with --manifest-path), \
             then the flags; `cargo alembic import alembic PATH` converts a Python Alembic project"
        }
        "-n" | "--name" => {
            "`--name` picks a section of alembic.ini; here -p/--package picks the package \
             whose `[package.metadata.alembic]` to use"
        }
        "--raiseerr" => {
            "there is no traceback to raise: every error already names its revision, file and line"
        }
        _ if name == "--x-arg" || (name.starts_with("-x") && !name.starts_with("--")) => {
            "`-x` hands values to Alembic's env.py, which cargo alembic has no need of: the \
             database goes in --database-url (or DATABASE_URL), one tenant's schema in the \
             URL (`?options=-csearch_path%3DNAME`), and every tenant at once with \
             `--each-schema PATTERN`"
        }
        _ => return None,
    })
}

/// Resolves configuration and runs one parsed command line.
pub fn run(cli: Cli) -> Result<(), CliError> {
    run_then_exit(cli, false)
}

/// [`run`]; `exits` when the process ends right after (the binary's
/// `main`), so that large values need not be freed one allocation at a time.
fn run_then_exit(cli: Cli, exits: bool) -> Result<(), CliError> {
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::failed(format!("cannot read the current directory: {e}"), None))?;
    let g = &cli.global;
    output::set_quiet(g.quiet);
    let overrides = Overrides {
        script_location: g.script_location.clone(),
        database_url: g.database_url.clone(),
        manifest_path: g.manifest_path.clone(),
        package: g.package.clone(),
        version_table: None,
        version_table_schema: None,
        lock_timeout: g.lock_timeout,
        statement_lock_timeout: g.statement_lock_timeout,
        script_location_only: cli.command.script_location_only(),
        without_database_url: false,
    };
    let config = Config::resolve(&overrides, &cwd)?;
    let ctx = Ctx {
        config,
        format: g.format,
        cwd,
        database_url_flag: g.database_url.clone(),
        exits,
    };
    if cli.global.fleet.is_fleet() {
        return commands::fleet::run(&ctx, &cli.global.fleet, &cli.command);
    }
    commands::dispatch(&ctx, cli.command)
}
