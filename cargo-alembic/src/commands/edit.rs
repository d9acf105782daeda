//! `edit`: open a revision file in the user's editor.

use std::path::Path;
use std::process::Command;

use alembic_chain::Resolver;

use crate::args::EditArgs;
use crate::errors::CliError;
use crate::Ctx;

/// Runs `edit`: opens each revision the identifier names, one after the
/// other, as Alembic's `edit` does (`heads`: every head; `current`: the
/// database's revisions).
pub(crate) fn run(ctx: &Ctx, args: &EditArgs) -> Result<(), CliError> {
    let loaded = ctx.load()?;
    let (map, revs) = if args.rev == "current" {
        let current = super::database::read_current(ctx, &loaded)?;
        current.all_known()?;
        if current.known.is_empty() {
            return Err(CliError::failed(
                "the database has no current revision, so no file to edit",
                None,
            ));
        }
        (current.map, current.known)
    } else {
        (&loaded, Resolver::new(&loaded).show(&args.rev)?)
    };
    if revs.is_empty() {
        return Err(CliError::usage(
            format!("`{}` is base, which has no file to edit", args.rev),
            None,
        ));
    }
    let first = &map.rev(revs[0]).path;
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
        .ok_or_else(|| {
            CliError::usage(
                format!("no editor to open {}", first.display()),
                Some("set $VISUAL or $EDITOR, e.g. `export EDITOR=vim`".to_owned()),
            )
        })?;
    for &i in &revs {
        open(ctx, &editor, &map.rev(i).path)?;
    }
    Ok(())
}

/// Runs the editor on one file and waits for it.
fn open(ctx: &Ctx, editor: &str, path: &Path) -> Result<(), CliError> {
    // Through the shell, so that `EDITOR="code --wait"` works as it does for git.
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$@\""))
        .arg("sh")
        .arg(path)
        .current_dir(&ctx.cwd)
        .status()
        .map_err(|e| CliError::failed(format!("cannot start the editor `{editor}`: {e}"), None))?;
    if !status.success() {
        return Err(CliError::failed(
            format!("the editor `{editor}` exited with {status}"),
            None,
        ));
    }
    Ok(())
}
