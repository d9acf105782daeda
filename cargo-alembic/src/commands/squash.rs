//! `squash REV`: one new revision replaces REV and every revision below
//! it. Its SQL is generated from the chain's catalog at REV and proven
//! before anything is written (`autogen::squash`); the revisions that built
//! on REV build on the squash; the replaced files move aside to
//! `versions/replaced/<squash>/`, still read, so that a database inside the
//! range runs them, until `squash --prune <squash>` removes them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use alembic_chain::{ResolveError, Resolver, RevisionMap, Target};

use super::revision::{new_id, write, NewRevision};
use crate::args::SquashArgs;
use crate::autogen::squash::{plan, Data};
use crate::errors::CliError;
use crate::output::print;
use crate::Ctx;

/// The folder, under the versions folder, the replaced files move to.
pub(crate) const REPLACED_DIR: &str = "replaced";

/// Runs `squash`.
pub(crate) fn run(ctx: &Ctx, args: &SquashArgs) -> Result<(), CliError> {
    if let Some(id) = &args.prune {
        return prune(ctx, id);
    }
    let given = args.revision.as_deref().unwrap_or("head");
    let map = ctx.load()?;
    map.lex_all()?;
    let point = squash_point(&map, given)?;
    let range = map
        .squash_range(point)
        .map_err(|e| CliError::failed(e.to_string(), Some(
            "squash at a revision that every branch leaving the range has merged into, or merge the branch first".into(),
        )))?;
    let point_id = map.rev(point).id.clone();
    if range.len() < 2 {
        return Err(CliError::usage(
            format!("revision `{point_id}` has no revision below it: there is nothing to squash"),
            None,
        ));
    }
    let found = data_statements(&map, &range)?;
    refuse_unsaid_data(&found, args)?;
    let id = new_id(&map, args.rev_id.as_deref())?;
    let message = args
        .message
        .clone()
        .unwrap_or_else(|| format!("squash at {point_id}"));
    let data = Data {
        statements: if args.include_data {
            found.into_iter().map(|d| d.sql).collect()
        } else {
            Vec::new()
        },
        compare: !args.no_data,
    };
    let planned = plan(ctx, &map, &point_id, &message, &data)?;
    let replaces: Vec<String> = range.iter().map(|&i| map.rev(i).id.clone()).collect();
    let labels = carried_labels(&map, point, &range);
    let path = write(
        ctx,
        NewRevision {
            id: id.clone(),
            message,
            parents: Vec::new(),
            labels,
            depends_on: Vec::new(),
            dir: ctx.config.versions_dir(),
            transactional: planned.transactional,
            replaces,
            upgrade: crate::autogen::section(&planned.upgrade, None),
            downgrade: crate::autogen::section(
                &planned.downgrade,
                planned.downgrade_note.as_deref(),
            ),
        },
    )?;
    let repointed = repoint_children(&map, point, &id)?;
    let moved = move_aside(ctx, &map, &range, &id)?;
    print(&summary(
        ctx,
        &point_id,
        &id,
        &path,
        range.len(),
        moved,
        &repointed,
    ))
}

/// Rows the replaced revisions write stop a squash that does not say what
/// to do with them.
fn refuse_unsaid_data(found: &[DataStatement], args: &SquashArgs) -> Result<(), CliError> {
    if found.is_empty() || args.include_data || args.no_data {
        return Ok(());
    }
    Err(CliError::failed(
        format!(
            "the revisions to squash write rows, which the catalog cannot show; nothing was written:\n{}",
            found
                .iter()
                .map(|d| format!("  {}: {}", d.at, d.first_line))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        Some("pass --include-data to copy these statements into the squash, in order, or --no-data if no database needs the rows".into()),
    ))
}

/// What `squash` tells when it has written the files.
fn summary(
    ctx: &Ctx,
    point_id: &str,
    id: &str,
    path: &Path,
    replaced: usize,
    moved: usize,
    repointed: &[String],
) -> String {
    format!(
        "Proven: the squash gives the schema the chain has at {point_id}, and its downgrade an empty database.\n\
         Squash {id} ({}) replaces {replaced} revisions; {} moved to {}.\n{}\
         Databases at {point_id} or beyond need nothing; a database inside the range runs the replaced revisions it still needs.\n\
         Once every database is past {point_id}, remove the replaced files with `cargo alembic squash --prune {id}`.\n",
        path.display(),
        if moved == 1 { "1 file".to_owned() } else { format!("{moved} files") },
        ctx.config.versions_dir().join(REPLACED_DIR).join(id).display(),
        repointed
            .iter()
            .map(|r| format!("{r} now builds on {id}.\n"))
            .collect::<String>()
    )
}

/// The squash point: one revision.
fn squash_point(map: &RevisionMap, given: &str) -> Result<usize, CliError> {
    match Resolver::new(map).resolve(given) {
        Ok(Target::Revisions(revs)) if revs.len() == 1 => Ok(revs[0]),
        Ok(Target::Revisions(_)) | Err(ResolveError::MultipleHeads { .. }) => Err(CliError::usage(
            format!("`{given}` is several revisions; a squash replaces one revision and everything below it"),
            Some("name one revision, or merge the heads first".into()),
        )),
        Ok(_) => Err(CliError::usage(
            format!("`{given}` is not a revision; name the revision to squash at"),
            None,
        )),
        Err(e) => Err(e.into()),
    }
}

/// A statement that writes rows, in a replaced revision.
struct DataStatement {
    /// `file:line`.
    at: String,
    first_line: String,
    sql: String,
}

/// The statements of the range's upgrades that write rows (`INSERT`,
/// `UPDATE`, `DELETE`, `COPY`, `MERGE`, also inside `WITH`), in order.
fn data_statements(map: &RevisionMap, range: &[usize]) -> Result<Vec<DataStatement>, CliError> {
    let mut out = Vec::new();
    for &i in range {
        let rev = map.rev(i);
        for s in rev
            .upgrade_statements()
            .map_err(alembic_chain::LoadError::from)?
        {
            if writes_rows(&s.sql) {
                out.push(DataStatement {
                    at: format!("{}:{}", rev.path.display(), s.line),
                    first_line: code(&s.sql)
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                    sql: format!("{};", s.sql.trim().trim_end_matches(';')),
                });
            }
        }
    }
    Ok(out)
}

/// A statement without its leading comments and blank lines.
fn code(sql: &str) -> &str {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            return rest;
        }
    }
}

fn writes_rows(sql: &str) -> bool {
    const WRITES: [&str; 5] = ["INSERT", "UPDATE", "DELETE", "COPY", "MERGE"];
    let code = code(sql);
    let word = |w: &str| w.to_ascii_uppercase();
    let mut words = code
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    match words.next().map(word).as_deref() {
        Some(first) if WRITES.contains(&first) => true,
        Some("WITH") => words.any(|w| WRITES.contains(&word(w).as_str())),
        _ => false,
    }
}

/// The labels the squash point carries that revisions of the range
/// declare: the squash declares them, so `label@head` still finds the
/// branch.
fn carried_labels(map: &RevisionMap, point: usize, range: &[usize]) -> Vec<String> {
    map.labels(point)
        .iter()
        .filter(|l| map.label_declared_by(l).is_some_and(|d| range.contains(&d)))
        .cloned()
        .collect()
}

/// Rewrites `down_revision` and `depends_on` of the revisions that built
/// on the squash point to name the squash instead; the sections (and so
/// the checksums) are untouched.
fn repoint_children(
    map: &RevisionMap,
    point: usize,
    squash: &str,
) -> Result<Vec<String>, CliError> {
    let old = &map.rev(point).id;
    let mut children: Vec<usize> = map
        .children(point)
        .iter()
        .chain(map.dependents(point))
        .copied()
        .collect();
    children.sort_unstable();
    children.dedup();
    let mut done = Vec::new();
    for j in children {
        let rev = map.rev(j);
        let swap = |ids: &[String]| {
            ids.iter()
                .map(|id| if id == old { squash } else { id.as_str() })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut edits = Vec::new();
        if rev.down_revisions.contains(old) {
            edits.push((
                rev.key_lines.down_revision,
                "down_revision",
                swap(&rev.down_revisions),
            ));
        }
        if rev.depends_on.contains(old) {
            edits.push((
                rev.key_lines.depends_on,
                "depends_on",
                swap(&rev.depends_on),
            ));
        }
        rewrite_lines(&rev.path, &edits)?;
        done.push(rev.id.clone());
    }
    Ok(done)
}

/// Replaces header lines (1-based) with `-- key: value`, keeping each
/// line's ending and every other byte of the file.
fn rewrite_lines(path: &Path, edits: &[(usize, &str, String)]) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        path: path.to_owned(),
        reason: source,
    };
    let text = std::fs::read_to_string(path).map_err(io)?;
    let mut out = String::with_capacity(text.len() + 64);
    for (n, line) in text.split_inclusive('\n').enumerate() {
        match edits.iter().find(|e| e.0 == n + 1) {
            Some((_, key, value)) => {
                let ending = &line[line.trim_end_matches(['\r', '\n']).len()..];
                out.push_str(&format!("-- {key}: {value}{ending}"));
            }
            None => out.push_str(line),
        }
    }
    replace_file(path, &out)
}

/// Writes a file through a temporary file and a rename.
fn replace_file(path: &Path, text: &str) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        path: path.to_owned(),
        reason: source,
    };
    let tmp = path.with_extension("sql.tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Moves the replaced files to `versions/replaced/<squash>/`, keeping
/// their paths under the versions folder.
fn move_aside(
    ctx: &Ctx,
    map: &RevisionMap,
    range: &[usize],
    squash: &str,
) -> Result<usize, CliError> {
    let versions = ctx.config.versions_dir();
    let aside = versions.join(REPLACED_DIR).join(squash);
    for &i in range {
        let from = &map.rev(i).path;
        let relative: PathBuf = from.strip_prefix(&versions).map_or_else(
            |_| PathBuf::from(from.file_name().unwrap_or_default()),
            Path::to_owned,
        );
        let to = aside.join(relative);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|source| CliError::Io {
                path: parent.to_owned(),
                reason: source,
            })?;
        }
        std::fs::rename(from, &to).map_err(|source| CliError::Io {
            path: from.clone(),
            reason: source,
        })?;
    }
    Ok(range.len())
}

/// `squash --prune ID`: removes the files squash ID replaced (and those
/// the squashes it replaced replaced).
fn prune(ctx: &Ctx, id: &str) -> Result<(), CliError> {
    let map = ctx.load()?;
    let squash = map.get(id).filter(|r| !r.replaces.is_empty()).ok_or_else(|| {
        CliError::usage(
            format!("`{id}` is not a squash of this chain"),
            Some("name the id of a revision written by `cargo alembic squash` (its header has `replaces:`)".into()),
        )
    })?;
    let mut gone: HashSet<&str> = squash.replaces.iter().map(String::as_str).collect();
    loop {
        let more: Vec<&str> = map
            .replaced()
            .iter()
            .filter(|r| gone.contains(r.id.as_str()))
            .flat_map(|r| r.replaces.iter().map(String::as_str))
            .filter(|r| !gone.contains(r))
            .collect();
        if more.is_empty() {
            break;
        }
        gone.extend(more);
    }
    let files: Vec<&Path> = map
        .replaced()
        .iter()
        .filter(|r| gone.contains(r.id.as_str()))
        .map(|r| r.path.as_path())
        .collect();
    if files.is_empty() {
        return print(&format!(
            "The files squash {id} replaced are already pruned.\n"
        ));
    }
    refuse_if_configured_database_inside(ctx, &map, &gone, id)?;
    for f in &files {
        std::fs::remove_file(f).map_err(|source| CliError::Io {
            path: f.to_path_buf(),
            reason: source,
        })?;
    }
    remove_empty_dirs(&ctx.config.versions_dir().join(REPLACED_DIR));
    let point = squash.replaces.last().map_or("", String::as_str);
    print(&format!(
        "Removed {} files squash {id} replaced.\n\
         A database at {point} or beyond is unaffected. A database still inside the range can no longer be upgraded \
         with these files, and `squash --prune` cannot see your databases: check each with \
         `cargo alembic verify --against URL` (it says whether a database is inside a squashed range).\n",
        files.len()
    ))
}

/// With a database configured, refuses while it is inside the range.
fn refuse_if_configured_database_inside(
    ctx: &Ctx,
    map: &RevisionMap,
    gone: &HashSet<&str>,
    id: &str,
) -> Result<(), CliError> {
    if ctx.config.database_url.is_none() {
        return Ok(());
    }
    let Ok(current) = (|| -> Result<_, CliError> {
        let mut client = super::database::connect(ctx)?;
        alembic_embed::cli_engine::Engine::new(map, super::database::settings(ctx))
            .current(&mut client)
            .map_err(|e| CliError::failed(e.to_string(), None))
    })() else {
        return Ok(());
    };
    match current
        .heads
        .iter()
        .find(|r| gone.contains(r.as_str()) && map.squash_at(r).is_none())
    {
        Some(row) => Err(CliError::failed(
            format!("the configured database is at {row}, inside the range squash {id} replaced: pruning would strand it; nothing was removed"),
            Some("upgrade it first (`cargo alembic upgrade`), then prune".into()),
        )),
        None => Ok(()),
    }
}

/// Removes the empty folders under `dir`, and `dir` if it ends up empty.
fn remove_empty_dirs(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_that_write_rows_are_found() {
        assert!(writes_rows("INSERT INTO t VALUES (1)"));
        assert!(writes_rows(
            "-- seed\n/* lookup */ insert into t values (1)"
        ));
        assert!(writes_rows("WITH x AS (SELECT 1) UPDATE t SET a = 1"));
        assert!(writes_rows("copy t FROM stdin"));
        assert!(!writes_rows("CREATE TABLE inserts (id int)"));
        assert!(!writes_rows("WITH x AS (SELECT 1) SELECT * FROM x"));
        assert!(!writes_rows(
            "CREATE FUNCTION f() RETURNS void AS $$ INSERT INTO t VALUES (1) $$ LANGUAGE sql"
        ));
    }
}
