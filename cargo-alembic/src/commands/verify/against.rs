//! `verify --against URL`: a real database's applied revisions against
//! the files, on a read-only session.

use std::time::Instant;

use alembic_chain::RevisionMap;
use alembic_embed::cli_engine::{Checked, Current, Engine, Settings};

use super::report::finish;
use super::{about, say, Problem};
use crate::errors::CliError;
use crate::Ctx;

/// What `--against` found on one database.
pub(crate) struct Found {
    /// Rows the files do not know, applied revisions edited since.
    pub(crate) problems: Vec<Problem>,
    /// Downgrades changed since they were applied (not a problem).
    pub(crate) notes: Vec<String>,
    /// `N applied (U unverified: …), P pending: …`.
    pub(crate) summary: String,
}

/// The database's applied revisions against the files, on a read-only
/// session: the same comparison and state as `current` and a run's check.
pub(crate) fn check(map: &RevisionMap, settings: Settings, url: &str) -> Result<Found, CliError> {
    let mut client = alembic_embed::tls::connect(url)
        .map_err(|e| CliError::by_code(e.exit_code(), e.to_string()))?;
    // Read-only for sure: the session cannot write.
    client
        .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        .map_err(|e| CliError::failed(format!("cannot make the session read-only: {e}"), None))?;
    let engine = Engine::new(map, settings);
    let current = engine
        .current(&mut client)
        .map_err(|e| CliError::failed(e.to_string(), None))?;
    let inside = inside_squash(&engine, &current);
    let engine = engine.view(&current);
    let map = engine.map();
    let checked = engine.check_applied(&current);
    let mut problems = ahead_and_edited(map, &current.unknown, &checked);
    let mut notes: Vec<String> = Vec::new();
    match inside {
        Some(Ok(note)) => notes.push(note),
        Some(Err(problem)) => {
            problems.retain(|p| p.revision != problem.revision);
            problems.push(problem);
        }
        None => {}
    }
    let notes = notes
        .into_iter()
        .chain(checked
        .downgrade_changed
        .iter()
        .map(|drift| {
            let rev = map.rev(drift.index);
            format!(
                "note: the downgrade of revision {} ({}) changed since it was applied: recorded {}, the file has {}",
                rev.id,
                rev.path.display(),
                drift.recorded_text(),
                drift.current_text()
            )
        }))
        .collect();
    let status = engine
        .status(&current)
        .map_err(|e| CliError::failed(e.to_string(), None))?;
    let listed = |ids: &[String]| {
        if ids.is_empty() {
            String::new()
        } else {
            format!(": {}", ids.join(", "))
        }
    };
    let summary = format!(
        "{} applied ({} unverified{}), {} pending{}",
        status.applied.len(),
        status.unverified.len(),
        listed(&status.unverified),
        status.pending.len(),
        listed(&status.pending)
    );
    Ok(Found {
        problems,
        notes,
        summary,
    })
}

/// `verify --against URL`: the database's applied revisions against the
/// files, read-only.
pub(super) fn against(
    ctx: &Ctx,
    map: &RevisionMap,
    url: &str,
    mut problems: Vec<Problem>,
    warnings: Vec<Problem>,
    started: Instant,
) -> Result<(), CliError> {
    let found = check(map, crate::commands::database::settings(ctx), url)?;
    problems.extend(found.problems);
    for note in &found.notes {
        say(ctx, &format!("{note}\n"))?;
    }
    say(
        ctx,
        &format!(
            "against {}: {}\n",
            alembic_embed::tls::describe_target(url),
            found.summary
        ),
    )?;
    finish(ctx, map, &problems, &warnings, started, None)
}

/// Whether the database is inside a range a squash replaced: a note while
/// the replaced files are kept (its next upgrade runs those it still
/// needs), a problem once they are pruned.
fn inside_squash(engine: &Engine<'_>, current: &Current) -> Option<Result<String, Problem>> {
    let map = engine.map();
    let row = current
        .heads
        .iter()
        .find(|r| map.state_index(r).is_none() && map.is_replaced(r))?;
    let squash = map
        .replaced_by(row)
        .map_or_else(String::new, |s| s.id.clone());
    Some(match engine.for_rows(&current.heads) {
        Ok(_) => Ok(format!(
            "note: the database is at {row}, inside the range squash {squash} replaced: its next upgrade runs \
             the replaced revisions it still needs; keep their files until it has (`squash --prune {squash}` would strand it)"
        )),
        Err(e) => Err(Problem {
            check: "against",
            revision: Some(row.clone()),
            file: None,
            line: None,
            message: e.to_string(),
        }),
    })
}

/// The problems `--against` finds: rows the files do not know, and applied
/// revisions edited since they ran.
fn ahead_and_edited(map: &RevisionMap, unknown: &[String], checked: &Checked) -> Vec<Problem> {
    let mut problems: Vec<Problem> = unknown
        .iter()
        .map(|id| Problem {
            check: "against",
            revision: Some(id.clone()),
            file: None,
            line: None,
            message: format!("the database has revision {id}, which has no file here: the database is ahead of these files, or they come from another project"),
        })
        .collect();
    for drift in &checked.edited {
        let rev = map.rev(drift.index);
        problems.push(about(
            map,
            drift.index,
            "against",
            Some(rev.upgrade.marker_line),
            format!(
                "revision {} ({}) was edited after it was applied: the database recorded {}, the file has {}",
                rev.id,
                rev.path.display(),
                drift.recorded_text(),
                drift.current_text()
            ),
        ));
    }
    problems
}
