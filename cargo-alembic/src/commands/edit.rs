//! `edit`: open a revision file in the user's editor.

use std::process::Command;

use alembic_chain::Resolver;

use crate::args::EditArgs;
use crate::errors::CliError;
use crate::Ctx;

/// Runs `edit`.
pub(crate) fn run(ctx: &Ctx, args: &EditArgs) -> Result<(), CliError> {
    let map = ctx.load()?;
    let Some(i) = Resolver::new(&map).resolve_single(&args.rev)? else {
        return Err(CliError::usage(
            format!("`{}` is base, which has no file to edit", args.rev),
            None,
        ));
    };
    let path = &map.rev(i).path;
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|e| !e.trim().is_empty()))
        .ok_or_else(|| {
            CliError::usage(
                format!("no editor to open {}", path.display()),
                Some("set $VISUAL or $EDITOR, e.g. `export EDITOR=vim`".to_owned()),
            )
        })?;
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
