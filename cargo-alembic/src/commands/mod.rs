//! One module per group of commands; `dispatch` picks the command.

mod adopt;
mod check;
mod database;
mod edit;
pub(crate) mod fleet;
mod import;
mod import_alembic;
mod init;
mod inspect;
mod revision;
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
        Command::Revision(a) => no_json(ctx, "revision").and_then(|()| revision::revision(ctx, &a)),
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
        Command::Accept(a) => database::accept(ctx, &a),
        Command::Verify(a) => verify::run(ctx, &a),
        Command::Adopt(a) => no_json(ctx, "adopt").and_then(|()| adopt::run(ctx, &a)),
        Command::Import(a) => no_json(ctx, "import").and_then(|()| import::run(ctx, &a)),
        Command::Migrate { .. } => Err(autogenerate_unavailable("migrate")),
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

/// The answer to `migrate` and `revision --autogenerate`.
pub(crate) fn autogenerate_unavailable(what: &str) -> CliError {
    CliError::usage(
        format!("`{what}` needs autogenerate, which cargo alembic does not have yet: it does not compare a schema with the database"),
        Some(
            "write the SQL by hand: `cargo alembic revision -m \"add users\"` creates a revision file with empty \
             `-- alembic:upgrade` and `-- alembic:downgrade` sections to fill in; to apply revisions, run \
             `cargo alembic upgrade head`"
                .to_owned(),
        ),
    )
}
