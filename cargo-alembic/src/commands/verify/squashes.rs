//! Squashes whose replaced files are kept: the squash alone on a fresh
//! database and the replaced revisions up to its squash point on another
//! must give one schema, the two paths a database can take.

use std::time::Instant;

use alembic_embed::cli_engine::Engine;
use alembic_throwaway::Server;

use super::{about, say, Problem};
use crate::errors::CliError;
use crate::snapshot;
use crate::Ctx;

/// Checks every squash whose replaced files are kept; the time it took,
/// in milliseconds (0 without one).
pub(super) fn check_all(
    ctx: &Ctx,
    engine: &Engine<'_>,
    server: &Server,
    skip: &[String],
    problems: &mut Vec<Problem>,
) -> Result<u128, CliError> {
    let map = engine.map();
    let Some(before) = engine.expanded() else {
        return Ok(0);
    };
    let kept: Vec<usize> = map
        .squashes()
        .into_iter()
        .filter(|&s| before.map().get(&map.rev(s).id).is_none())
        .collect();
    let t = Instant::now();
    for &s in &kept {
        let squash = map.rev(s);
        let point = squash.replaces.last().map_or("", String::as_str);
        let collapsed = schema_after(engine, server, skip, &squash.id);
        let replaced = schema_after(&before, server, skip, point);
        let message = match (collapsed?, replaced?) {
            (Ok(a), Ok(b)) => {
                let differs = snapshot::diff(&b, &a);
                if differs.is_empty() {
                    continue;
                }
                format!(
                    "squash {} ({}) does not give the schema its replaced revisions give at {point} (- replaced revisions, + squash):\n    {}",
                    squash.id,
                    squash.path.display(),
                    differs.join("\n    ")
                )
            }
            (Err(e), _) => format!(
                "squash {} ({}) fails on an empty database: {e}",
                squash.id,
                squash.path.display()
            ),
            (_, Err(e)) => format!(
                "the revisions squash {} replaced do not upgrade to {point}: {e}",
                squash.id
            ),
        };
        problems.push(about(map, s, "squash", None, message));
    }
    let ms = t.elapsed().as_millis();
    if !kept.is_empty() {
        say(
            ctx,
            &format!(
                "squash: {} checked against the replaced revisions it keeps ({}) ({ms} ms)\n",
                if kept.len() == 1 {
                    "1 squash".to_owned()
                } else {
                    format!("{} squashes", kept.len())
                },
                kept.iter()
                    .map(|&s| format!("squash {}", map.rev(s).id))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )?;
    }
    Ok(ms)
}

/// A fresh database upgraded to `target` with `engine`, and its schema;
/// the inner error when the upgrade fails.
fn schema_after(
    engine: &Engine<'_>,
    server: &Server,
    skip: &[String],
    target: &str,
) -> Result<Result<snapshot::Snapshot, String>, CliError> {
    let failed = |e: &dyn std::fmt::Display| CliError::failed(e.to_string(), None);
    let db = server.database().map_err(|e| failed(&e))?;
    let mut client = alembic_embed::tls::connect(db.url()).map_err(|e| failed(&e))?;
    if let Err(e) = engine.upgrade(&mut client, target, &mut |_| {}) {
        return Ok(Err(e.to_string()));
    }
    let snap = snapshot::Snapshotter::prepare(&mut client, skip)
        .and_then(|s| s.take(&mut client))
        .map_err(|e| failed(&e))?;
    Ok(Ok(snap))
}
