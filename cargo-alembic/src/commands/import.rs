//! `import sqlx|refinery|diesel PATH`: another tool's migrations folder as
//! a linear chain of revision files, one per migration, in the tool's
//! order. Ids are the tools' versions, so that a database that tool
//! migrated can be matched to the chain (`adopt`); messages are their
//! names; each migration's transaction mode is kept. The SQL is copied
//! as it is, so every statement keeps its text.
//!
//! Everything is read and checked before anything is written: a file this
//! chain could not load (a statement that does not split, an id that is too
//! long) is an error naming the original file, and nothing is written.

use std::fs;
use std::path::{Path, PathBuf};

use alembic_chain::{validate_id, HeaderFields, Revision, RevisionMap};
use chrono::Local;

use super::revision::{render_template, slug};
use crate::args::{ImportArgs, ImportTool};
use crate::errors::CliError;
use crate::output::print;
use crate::Ctx;

/// One migration of the other tool, read.
#[derive(Debug)]
pub(super) struct Foreign {
    /// The order the tool applies migrations in.
    order: Order,
    /// The revision id: the tool's version.
    pub(super) id: String,
    /// The tool's name for the migration.
    message: String,
    /// The file (or folder) it came from, for messages.
    pub(super) source: PathBuf,
    /// The upgrade's file and SQL.
    pub(super) up: (PathBuf, String),
    /// The downgrade's; `None`: irreversible.
    down: Option<(PathBuf, String)>,
    transactional: bool,
}

/// A tool's version, as it orders them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Order {
    Number(i64),
    Text(String),
}

/// Runs `import`.
pub(crate) fn run(ctx: &Ctx, args: &ImportArgs) -> Result<(), CliError> {
    if args.tool == ImportTool::Alembic {
        return super::import_alembic::run(ctx, args);
    }
    if args.python.is_some() || args.allow_manual || args.check {
        return Err(CliError::usage(
            "--python, --allow-manual and --check are for `import alembic`",
            None,
        ));
    }
    // Relative to the current folder, as the user gave it, so that
    // messages name files as the user knows them.
    let dir = args.path.clone();
    if !dir.is_dir() {
        return Err(CliError::usage(
            format!("{} is not a folder", args.path.display()),
            Some(format!(
                "give the folder that holds the {} migrations",
                tool_name(args.tool)
            )),
        ));
    }
    let migrations = read_migrations(ctx, args.tool, &dir)?;
    let versions = ctx.config.versions_dir();
    refuse_existing(&versions)?;
    let files = render(ctx, args.tool, &versions, &migrations)?;
    write_all(&files)?;
    print(&format!(
        "Imported {} {} migration{} into {}; head: {}\n",
        migrations.len(),
        tool_name(args.tool),
        if migrations.len() == 1 { "" } else { "s" },
        versions.display(),
        migrations.last().map_or("", |m| m.id.as_str())
    ))
}

/// The tool's migrations under `dir`, in the tool's order; none, or two
/// with one version, is an error.
pub(super) fn read_migrations(
    ctx: &Ctx,
    tool: ImportTool,
    dir: &Path,
) -> Result<Vec<Foreign>, CliError> {
    let mut migrations = match tool {
        ImportTool::Sqlx => read_sqlx(dir)?,
        ImportTool::Refinery => read_refinery(ctx, dir)?,
        ImportTool::Diesel => read_diesel(dir)?,
        ImportTool::Alembic => Vec::new(),
    };
    if migrations.is_empty() {
        return Err(CliError::failed(
            format!("no {} migrations in {}", tool_name(tool), dir.display()),
            None,
        ));
    }
    migrations.sort_by(|a, b| a.order.cmp(&b.order));
    refuse_duplicates(&migrations)?;
    Ok(migrations)
}

/// An import writes into an empty versions folder only.
pub(super) fn refuse_existing(versions: &Path) -> Result<(), CliError> {
    let existing = alembic_chain::revision_files(versions).unwrap_or_default();
    if existing.is_empty() {
        return Ok(());
    }
    Err(CliError::usage(
        format!(
            "{} already holds {} revision file{}",
            versions.display(),
            existing.len(),
            if existing.len() == 1 { "" } else { "s" }
        ),
        Some(
            "import into an empty versions folder (`cargo alembic init`, or --script-location)"
                .into(),
        ),
    ))
}

pub(super) fn tool_name(tool: ImportTool) -> &'static str {
    match tool {
        ImportTool::Alembic => "Alembic",
        ImportTool::Sqlx => "sqlx",
        ImportTool::Refinery => "refinery",
        ImportTool::Diesel => "diesel",
    }
}

fn read(path: &Path) -> Result<String, CliError> {
    let bytes = fs::read(path)
        .map_err(|e| CliError::failed(format!("cannot read {}: {e}", path.display()), None))?;
    String::from_utf8(bytes).map_err(|_| {
        CliError::failed(
            format!("{} is not UTF-8 text", path.display()),
            Some("save the file as UTF-8 and import again".into()),
        )
    })
}

fn entries(dir: &Path) -> Result<Vec<PathBuf>, CliError> {
    let listing = fs::read_dir(dir)
        .map_err(|e| CliError::failed(format!("cannot list {}: {e}", dir.display()), None))?;
    let mut paths: Vec<PathBuf> = listing.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    Ok(paths)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// sqlx: `<VERSION>_<DESCRIPTION>.sql` (irreversible) or `.up.sql` with
/// `.down.sql`; VERSION a positive integer; `-- no-transaction` as the
/// first line runs it outside a transaction. Other files are ignored, as
/// sqlx ignores them; a `.sql` file without a version is named in a note,
/// in case it is a migration misnamed (sqlx never ran it).
fn read_sqlx(dir: &Path) -> Result<Vec<Foreign>, CliError> {
    let mut ups: Vec<Foreign> = Vec::new();
    let mut downs: Vec<(i64, PathBuf, String)> = Vec::new();
    for path in entries(dir)? {
        let name = file_name(&path);
        if !path.is_file() || !name.ends_with(".sql") {
            continue;
        }
        let Some((version, rest)) = name.split_once('_') else {
            eprintln!(
                "note: skipped {}: not `<VERSION>_<DESCRIPTION>.sql`, so sqlx does not run it either",
                path.display()
            );
            continue;
        };
        let number = version.parse::<i64>().ok().filter(|v| *v > 0).ok_or_else(|| {
            CliError::failed(
                format!("{}: `{version}` is not a sqlx version (a positive integer before the first `_`)", path.display()),
                None,
            )
        })?;
        let (description, down) = if let Some(d) = rest.strip_suffix(".down.sql") {
            (d, true)
        } else if let Some(d) = rest.strip_suffix(".up.sql") {
            (d, false)
        } else {
            (rest.trim_end_matches(".sql"), false)
        };
        let sql = read(&path)?;
        if down {
            downs.push((number, path, sql));
            continue;
        }
        ups.push(Foreign {
            order: Order::Number(number),
            id: version.to_owned(),
            message: description.replace('_', " "),
            transactional: !sql.starts_with("-- no-transaction"),
            source: path.clone(),
            up: (path, sql),
            down: None,
        });
    }
    for (number, path, sql) in downs {
        let Some(up) = ups.iter_mut().find(|m| m.order == Order::Number(number)) else {
            return Err(CliError::failed(
                format!("{} has no `.up.sql` beside it", path.display()),
                None,
            ));
        };
        up.down = Some((path, sql));
    }
    Ok(ups)
}

/// refinery: `V{n}__{name}.sql` and `U{n}__{name}.sql` anywhere under the
/// folder, named as refinery reads them (`super::refinery`); refinery has
/// no down migrations, so each revision is irreversible. Rust migrations
/// (`.rs`) cannot be converted.
fn read_refinery(ctx: &Ctx, dir: &Path) -> Result<Vec<Foreign>, CliError> {
    use super::refinery::{migration_files, parse_name};
    let found = migration_files(dir)
        .map_err(|e| CliError::failed(format!("cannot read {}: {e}", dir.display()), None))?;
    let mut out = Vec::new();
    let mut rust = Vec::new();
    for path in found {
        let name = file_name(&path);
        if name.ends_with(".rs") {
            rust.push(shown(ctx, &path));
            continue;
        }
        let stem = name.trim_end_matches(".sql");
        let (version, migration) = parse_name(stem)
            .map_err(|e| CliError::failed(format!("{}: {e}", shown(ctx, &path)), None))?;
        out.push(Foreign {
            order: Order::Number(i64::from(version)),
            id: version.to_string(),
            message: migration.replace('_', " "),
            up: (path.clone(), read(&path)?),
            source: path,
            down: None,
            transactional: true,
        });
    }
    if !rust.is_empty() {
        return Err(CliError::failed(
            format!(
                "refinery migrations written in Rust cannot be converted to SQL: {}",
                rust.join(", ")
            ),
            Some(
                "rewrite them as `.sql` migrations (what they do to the schema), then import"
                    .into(),
            ),
        ));
    }
    Ok(out)
}

/// diesel: a folder `<version>_<name>` per migration with `up.sql` and
/// `down.sql`; the version is the part before the first `_` without its
/// dashes, as diesel records it; `run_in_transaction = false` in
/// `metadata.toml` runs it outside a transaction.
fn read_diesel(dir: &Path) -> Result<Vec<Foreign>, CliError> {
    let mut out = Vec::new();
    for path in entries(dir)? {
        let name = file_name(&path);
        if !path.is_dir() || !path.join("up.sql").is_file() {
            continue;
        }
        let (version, migration) = name.split_once('_').unwrap_or((&name, ""));
        let version = version.replace('-', "");
        let (up, down) = (path.join("up.sql"), path.join("down.sql"));
        out.push(Foreign {
            order: Order::Text(version.clone()),
            id: version,
            message: migration.replace('_', " "),
            up: (up.clone(), read(&up)?),
            down: match down.is_file() {
                true => Some((down.clone(), read(&down)?)),
                false => None,
            },
            transactional: diesel_transactional(&path.join("metadata.toml"))?,
            source: path,
        });
    }
    Ok(out)
}

fn diesel_transactional(metadata: &Path) -> Result<bool, CliError> {
    if !metadata.is_file() {
        return Ok(true);
    }
    let table: toml::Table = read(metadata)?.parse().map_err(|e: toml::de::Error| {
        CliError::failed(format!("{}: {}", metadata.display(), e.message()), None)
    })?;
    match table.get("run_in_transaction") {
        None => Ok(true),
        Some(toml::Value::Boolean(b)) => Ok(*b),
        // The value as written (JSON's quoting is TOML's for strings).
        Some(other) => Err(CliError::failed(
            format!(
                "{}: `run_in_transaction` is {}, not true or false",
                metadata.display(),
                serde_json::to_string(other).unwrap_or_else(|_| other.type_str().to_owned())
            ),
            None,
        )),
    }
}

fn refuse_duplicates(migrations: &[Foreign]) -> Result<(), CliError> {
    for pair in migrations.windows(2) {
        // By the tool's order: sqlx reads `1_a.sql` and `01_b.sql` as one version.
        if pair[0].order == pair[1].order || pair[0].id == pair[1].id {
            return Err(CliError::failed(
                format!(
                    "two migrations have version {}: {} and {}",
                    pair[0].id,
                    pair[0].source.display(),
                    pair[1].source.display()
                ),
                None,
            ));
        }
    }
    Ok(())
}

/// The revision files, rendered and checked as the chain will load them:
/// (path, text).
fn render(
    ctx: &Ctx,
    tool: ImportTool,
    versions: &Path,
    migrations: &[Foreign],
) -> Result<Vec<(PathBuf, String)>, CliError> {
    let now = Local::now();
    let create_date = now.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    let mut files = Vec::new();
    let mut revisions = Vec::new();
    let mut parent: Vec<String> = Vec::new();
    for m in migrations {
        validate_id(&m.id).map_err(|reason| {
            CliError::failed(
                format!(
                    "{}: its version cannot be a revision id: {reason}",
                    m.source.display()
                ),
                None,
            )
        })?;
        let mut text = Revision::render_header(&HeaderFields {
            message: &m.message,
            id: &m.id,
            down_revisions: &parent,
            branch_labels: &[],
            depends_on: &[],
            create_date: &create_date,
            transactional: m.transactional,
            replaces: &[],
        });
        text.push_str(&format!(
            "-- Imported from {} ({}).\n",
            tool_name(tool),
            shown(ctx, &m.source)
        ));
        refuse_markers(ctx, &m.up.0, &m.up.1)?;
        if let Some((path, sql)) = &m.down {
            refuse_markers(ctx, path, sql)?;
        }
        // Where each file's first line lands, to name its lines in errors.
        let mut starts = Vec::new();
        text.push_str("\n-- alembic:upgrade\n");
        starts.push((text.lines().count() + 1, &m.up.0));
        push_section(&mut text, &m.up.1);
        if let Some((path, sql)) = &m.down {
            text.push_str("\n-- alembic:downgrade\n");
            starts.push((text.lines().count() + 1, path));
            push_section(&mut text, sql);
        }
        let name = render_template(
            &ctx.config.file_template,
            &m.id,
            &slug(&m.message, ctx.config.truncate_slug_length),
            now,
        )?;
        let path = versions.join(format!("{name}.sql"));
        let parsed = match Revision::parse(&path, text.as_bytes()) {
            Ok(rev) => rev.lex().map(|()| rev),
            Err(e) => Err(e),
        };
        let rev = parsed.map_err(|e| {
                let (start, file) = starts
                    .iter()
                    .rev()
                    .find(|(start, _)| e.line >= *start)
                    .copied()
                    .unwrap_or((1, &m.source));
                CliError::failed(
                    format!("{}:{}: {}", shown(ctx, file), e.line + 1 - start, e.kind),
                    Some("fix the migration (this chain splits statements as psql does), then import again".into()),
                )
            })?;
        revisions.push(rev);
        parent = vec![m.id.clone()];
        files.push((path, text));
    }
    RevisionMap::new(revisions)?;
    Ok(files)
}

/// A path as the user gave it: relative to the current folder when it is
/// under it (refinery's reader makes paths canonical).
pub(super) fn shown(ctx: &Ctx, path: &Path) -> String {
    ctx.shown(path).display().to_string()
}

/// A line of another tool's SQL that this chain's files would read as a
/// section marker: refused, naming the file and line.
fn refuse_markers(ctx: &Ctx, file: &Path, sql: &str) -> Result<(), CliError> {
    match sql
        .lines()
        .position(|l| l.trim_start().starts_with("-- alembic:"))
    {
        None => Ok(()),
        Some(i) => Err(CliError::failed(
            format!(
                "{}:{}: a line starting with `-- alembic:` would be read as a section marker",
                shown(ctx, file),
                i + 1
            ),
            Some("reword that comment, then import again".into()),
        )),
    }
}

/// A section's SQL, ending with a newline.
fn push_section(text: &mut String, sql: &str) {
    text.push_str(sql);
    if !sql.ends_with('\n') {
        text.push('\n');
    }
}

/// Writes every file, or none: what was written is removed again when a
/// later file fails.
pub(super) fn write_all(files: &[(PathBuf, String)]) -> Result<(), CliError> {
    let mut written: Vec<&Path> = Vec::new();
    for (path, text) in files {
        let result = path
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|()| {
                fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(path)
            })
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
        if let Err(source) = result {
            for done in written {
                let _ = fs::remove_file(done);
            }
            return Err(CliError::Io {
                path: path.clone(),
                reason: source,
            });
        }
        written.push(path);
    }
    Ok(())
}
