//! `init`: create a script location with an empty versions folder.

use std::path::Path;

use crate::args::InitArgs;
use crate::errors::CliError;
use crate::output::print;
use crate::Ctx;

/// The templates `init` knows, with their descriptions.
const TEMPLATES: [(&str, &str); 1] = [(
    "generic",
    "One folder of SQL revision files (versions/, sub-folders allowed).",
)];

const README: &str = "# Revision chain

Managed by `cargo alembic`. Each file under `versions/` is one revision:

```sql
-- create users table
--
-- revision: 1975ea83b712
-- down_revision: None
-- branch_labels: None
-- depends_on: None
-- create_date: 2026-11-21 10:42:07.123456

-- alembic:upgrade
CREATE TABLE users (id bigint PRIMARY KEY);

-- alembic:downgrade
DROP TABLE users;
```

Create one with `cargo alembic revision -m \"create users table\"`, apply with
`cargo alembic upgrade head`, and list them with `cargo alembic history`.
";

/// Runs `list_templates` (and `init --list-templates`).
pub(crate) fn list_templates() -> Result<(), CliError> {
    let mut out = String::from("Available templates:\n\n");
    for (name, about) in TEMPLATES {
        out.push_str(&format!("{name} - {about}\n"));
    }
    out.push_str("\nTemplates are used via the 'init' command, e.g.:\n\n  cargo alembic init --template generic ./migrations\n");
    print(&out)
}

/// Runs `init`.
pub(crate) fn run(ctx: &Ctx, args: &InitArgs) -> Result<(), CliError> {
    if args.list_templates {
        return list_templates();
    }
    if !TEMPLATES.iter().any(|(name, _)| *name == args.template) {
        let names: Vec<&str> = TEMPLATES.iter().map(|(n, _)| *n).collect();
        return Err(CliError::usage(
            format!(
                "no such template `{}` (available: {})",
                args.template,
                names.join(", ")
            ),
            None,
        ));
    }
    let dir = match &args.directory {
        Some(d) => d.clone(),
        None => ctx.config.script_location.clone(),
    };
    let not_empty = std::fs::read_dir(&dir)
        .map(|mut entries| entries.next().is_some())
        .unwrap_or(false);
    if not_empty {
        return Err(CliError::failed(
            format!("directory {} already exists and is not empty", dir.display()),
            Some("pick another directory, or add revisions to this one with `cargo alembic revision`".to_owned()),
        ));
    }
    let mut out = String::new();
    for (path, contents) in [
        (dir.join("versions").join(".gitkeep"), ""),
        (dir.join("README.md"), README),
    ] {
        if let Some(parent) = path.parent() {
            if !parent.exists() {
                out.push_str(&format!(
                    "  Creating directory {} ...  done\n",
                    parent.display()
                ));
                std::fs::create_dir_all(parent).map_err(|source| CliError::Io {
                    path: parent.to_owned(),
                    reason: source,
                })?;
            }
        }
        out.push_str(&format!("  Generating {} ...  done\n", path.display()));
        std::fs::write(&path, contents).map_err(|source| CliError::Io {
            path: path.clone(),
            reason: source,
        })?;
    }
    let configured = ctx.cwd.join(&ctx.config.script_location);
    if ctx.cwd.join(&dir) != configured {
        let shown = relative_to_root(ctx, &ctx.cwd.join(&dir));
        out.push_str(&format!(
            "\nAdd this to the workspace's Cargo.toml so that cargo alembic finds it:\n\n[workspace.metadata.alembic]\nscript_location = \"{}\"\n",
            shown.display()
        ));
    } else {
        out.push_str("\nCreate the first revision with `cargo alembic revision -m \"create users table\"`.\n");
    }
    print(&out)
}

fn relative_to_root(ctx: &Ctx, path: &Path) -> std::path::PathBuf {
    match &ctx.config.workspace_root {
        Some(root) => path
            .strip_prefix(root)
            .map(Path::to_owned)
            .unwrap_or_else(|_| path.to_owned()),
        None => path.to_owned(),
    }
}
