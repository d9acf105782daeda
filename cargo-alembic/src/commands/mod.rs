//! One module per group of commands; `dispatch` picks the command.

mod adopt;
mod check;
pub(crate) mod database;
mod edit;
pub(crate) mod fleet;
mod import;
mod import_alembic;
mod init;
mod inspect;
mod refinery;
mod revision;
mod squash;
mod verify;

use crate::args::{Command, Format};
use crate::errors::CliError;
use crate::Ctx;

/// Runs a parsed command.
pub(crate) fn dispatch(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    if matches!(ctx.format, Format::Github | Format::Junit)
        && !matches!(command, Command::Verify(_))
    {
        return Err(CliError::usage(
            format!("--format {} is only for `verify`", format_name(ctx.format)),
            None,
        ));
    }
    match command {
        Command::Init(a) => no_json(ctx, "init").and_then(|()| init::run(ctx, &a)),
        Command::Revision(a) => {
            no_json(ctx, "revision").and_then(|()| revision::revision(ctx, &a, a.autogenerate))
        }
        Command::Merge(a) => no_json(ctx, "merge").and_then(|()| revision::merge(ctx, &a)),
        Command::Heads(a) => inspect::heads(ctx, &a),
        Command::Branches(a) => inspect::branches(ctx, &a),
        Command::History(a) => database::history(ctx, &a),
        Command::Show(a) => inspect::show(ctx, &a),
        Command::Edit(a) => no_json(ctx, "edit").and_then(|()| edit::run(ctx, &a)),
        Command::Check(a) => check::run(ctx, &a),
        Command::Upgrade(a) => database::upgrade(ctx, &a),
        Command::Downgrade(a) => database::downgrade(ctx, &a),
        Command::Stamp(a) => database::stamp(ctx, &a),
        Command::Current(a) => database::current(ctx, &a),
        Command::EnsureVersion(a) => {
            no_json(ctx, "ensure_version").and_then(|()| database::ensure_version(ctx, &a))
        }
        Command::ListTemplates => {
            no_json(ctx, "list_templates").and_then(|()| init::list_templates())
        }
        Command::Accept(a) => database::accept(ctx, &a),
        Command::Verify(a) => verify::run(ctx, &a),
        Command::Adopt(a) => no_json(ctx, "adopt").and_then(|()| adopt::run(ctx, &a)),
        Command::Import(a) => no_json(ctx, "import").and_then(|()| import::run(ctx, &a)),
        Command::Squash(a) => no_json(ctx, "squash").and_then(|()| squash::run(ctx, &a)),
        Command::Migrate(a) => {
            no_json(ctx, "migrate").and_then(|()| revision::revision(ctx, &a, true))
        }
    }
}

fn no_json(ctx: &Ctx, command: &str) -> Result<(), CliError> {
    match ctx.format {
        Format::Human => Ok(()),
        other => Err(CliError::usage(
            format!(
                "--format {} is not available for `{command}`",
                format_name(other)
            ),
            None,
        )),
    }
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Human => "human",
        Format::Json => "json",
        Format::Github => "github",
        Format::Junit => "junit",
    }
}
