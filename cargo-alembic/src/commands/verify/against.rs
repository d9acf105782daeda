//! `verify --against URL`: a real database's applied revisions against
//! the files, on a read-only session.

use std::time::Instant;

use alembic_chain::RevisionMap;
use alembic_embed::cli_engine::{Checked, Engine};

use super::report::finish;
use super::{about, say, Problem};
use crate::errors::CliError;
use crate::Ctx;

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
    let mut client = alembic_embed::tls::connect(url)
        .map_err(|e| CliError::by_code(e.exit_code(), e.to_string()))?;
    // Read-only for sure: the session cannot write.
    client
        .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        .map_err(|e| CliError::failed(format!("cannot make the session read-only: {e}"), None))?;
    let engine = Engine::new(map, crate::commands::database::settings(ctx));
    let current = engine
        .current(&mut client)
        .map_err(|e| CliError::failed(e.to_string(), None))?;
    // The same comparison and state as `current` and a run's check.
    let checked = engine.check_applied(&current);
    problems.extend(ahead_and_edited(map, &current.unknown, &checked));
    for drift in &checked.downgrade_changed {
        let rev = map.rev(drift.index);
        say(
            ctx,
            &format!(
                "note: the downgrade of revision {} ({}) changed since it was applied: recorded {}, the file has {}\n",
                rev.id,
                rev.path.display(),
                drift.recorded_text(),
                drift.current_text()
            ),
        )?;
    }
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
    say(
        ctx,
        &format!(
            "against {}: {} applied ({} unverified{}), {} pending{}\n",
            alembic_embed::tls::describe_target(url),
            status.applied.len(),
            status.unverified.len(),
            listed(&status.unverified),
            status.pending.len(),
            listed(&status.pending)
        ),
    )?;
    finish(ctx, map, &problems, &warnings, started, None)
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
