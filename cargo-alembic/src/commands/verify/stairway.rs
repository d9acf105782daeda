//! The stairway: for each revision in order, upgrade it, snapshot,
//! downgrade it, compare with the snapshot taken before the upgrade, and
//! upgrade it again (which also upgrades the whole chain one revision at a
//! time). Two snapshots per revision; the catalog query is prepared once.

use std::time::{Duration, Instant};

use alembic_embed::cli_engine::Engine;
use alembic_embed::Direction;

use super::{about, error_line, say, Problem};
use crate::errors::CliError;
use crate::snapshot::{self, Snapshot, Snapshotter};
use crate::Ctx;

/// What the stairway did.
pub(super) struct Stairs {
    /// Revisions that went up, down and up again.
    pub(super) checked: usize,
    /// The whole walk.
    pub(super) took: Duration,
    /// Of that, taking snapshots.
    pub(super) snapshots: Duration,
    /// How many.
    pub(super) snapshot_count: usize,
}

/// Snapshots, timed.
struct Camera<'a> {
    snapper: Snapshotter,
    stairs: &'a mut Stairs,
}

impl Camera<'_> {
    fn take(&mut self, client: &mut postgres::Client) -> Result<Snapshot, CliError> {
        let t = Instant::now();
        let taken = self.snapper.take(client);
        self.stairs.snapshots += t.elapsed();
        self.stairs.snapshot_count += 1;
        taken.map_err(|e| {
            let reason = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |db| db.message().to_owned());
            CliError::failed(format!("cannot read the catalogs: {reason}"), None)
        })
    }
}

/// Walks the stairway on `client`'s empty database; stops at the first
/// revision with a problem.
pub(super) fn walk(
    ctx: &Ctx,
    engine: &Engine<'_>,
    client: &mut postgres::Client,
    skip: &[String],
    problems: &mut Vec<Problem>,
) -> Result<Stairs, CliError> {
    let t = Instant::now();
    let map = engine.map();
    let mut stairs = Stairs {
        checked: 0,
        took: Duration::ZERO,
        snapshots: Duration::ZERO,
        snapshot_count: 0,
    };
    let snapper = Snapshotter::prepare(client, skip)
        .map_err(|e| CliError::failed(format!("cannot read the catalogs: {e}"), None))?;
    let mut camera = Camera {
        snapper,
        stairs: &mut stairs,
    };
    let mut before = camera.take(client)?;
    for &i in map.order() {
        let Some(after) = step(ctx, engine, client, &mut camera, &before, i, problems)? else {
            break;
        };
        // Two snapshots per revision: the downgrade's (compared in `step`)
        // and the upgrade's, which is also the next revision's "before".
        before = after;
        camera.stairs.checked += 1;
    }
    stairs.took = t.elapsed();
    say(ctx, &format!("stairway: {} of {} revisions upgraded, downgraded and upgraded again, schemas compared ({} ms)\n", stairs.checked, map.len(), stairs.took.as_millis()))?;
    Ok(stairs)
}

/// One stair: revision `i` up, down (compared with `before`) and up again.
/// The schema after its upgrade, or `None` with the problem recorded.
fn step(
    ctx: &Ctx,
    engine: &Engine<'_>,
    client: &mut postgres::Client,
    camera: &mut Camera<'_>,
    before: &Snapshot,
    i: usize,
    problems: &mut Vec<Problem>,
) -> Result<Option<Snapshot>, CliError> {
    let map = engine.map();
    let rev = map.rev(i);
    let file = rev.path.display();
    if let Err(e) = engine.step_one(client, &rev.id, Direction::Upgrade) {
        problems.push(about(
            map,
            i,
            "upgrade",
            error_line(&e).or(Some(rev.upgrade.marker_line)),
            format!("upgrade of revision {} ({file}) failed: {e}", rev.id),
        ));
        return Ok(None);
    }
    let after = camera.take(client)?;
    if rev.downgrade.is_none() {
        return Ok(Some(after));
    }
    if let Err(e) = engine.step_one(client, &rev.id, Direction::Downgrade) {
        problems.push(about(
            map,
            i,
            "stairway",
            error_line(&e),
            format!("downgrade of revision {} ({file}) failed: {e}", rev.id),
        ));
        return Ok(None);
    }
    let undone = camera.take(client)?;
    let left = snapshot::diff(before, &undone);
    if !left.is_empty() {
        problems.push(about(
            map,
            i,
            "stairway",
            None,
            format!(
                "the downgrade of revision {} ({file}) does not undo its upgrade; compared with the schema before the upgrade (- missing, + left behind):\n    {}",
                rev.id,
                left.join("\n    ")
            ),
        ));
        // What follows would fail for this reason: stop here.
        say(ctx, &format!("stairway: stopped at revision {}\n", rev.id))?;
        return Ok(None);
    }
    if let Err(e) = engine.step_one(client, &rev.id, Direction::Upgrade) {
        problems.push(about(
            map,
            i,
            "stairway",
            error_line(&e),
            format!(
                "upgrade of revision {} ({file}) after its downgrade failed: {e}",
                rev.id
            ),
        ));
        return Ok(None);
    }
    Ok(Some(after))
}
