//! The stairway: for each revision in order, upgrade it, snapshot,
//! downgrade it, compare with the snapshot taken before the upgrade, and
//! upgrade it again (which also upgrades the whole chain one revision at a
//! time). Two snapshots per revision; the catalog query is prepared once.
//!
//! A long chain is walked in two halves at once, on two databases of the
//! throwaway server: the second database is first brought to the end of
//! the first half (plain upgrades, no snapshots). The server's work is
//! most of a stair, so two backends on two cores take about half the time.
//! Problems are reported as one walk would: the first half's, else the
//! second's.

use std::time::{Duration, Instant};

use alembic_chain::RevisionMap;
use alembic_embed::cli_engine::Engine;
use alembic_embed::{Direction, EngineError};

use super::{about, error_line, say, Problem};
use crate::errors::CliError;
use crate::snapshot::{self, Snapshot, Snapshotter};
use crate::Ctx;

/// Chains shorter than this are walked in one piece: a second database
/// and the catch-up cost more than they save.
const TWO_HALVES_FROM: usize = 24;

/// What the stairway did.
#[derive(Default)]
pub(super) struct Stairs {
    /// Revisions that went up, down and up again.
    pub(super) checked: usize,
    /// The whole walk.
    pub(super) took: Duration,
    /// Of that, taking snapshots (summed over both halves).
    pub(super) snapshots: Duration,
    /// How many.
    pub(super) snapshot_count: usize,
}

/// One walk over a run of revisions: what it checked, and the problem that
/// stopped it.
#[derive(Default)]
struct Walked {
    stairs: Stairs,
    problems: Vec<Problem>,
    /// The revision it stopped at after a downgrade left something behind.
    stopped_at: Option<String>,
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

/// Walks the stairway on `client`'s empty database (and, for a long
/// chain, on the one `second` makes: another empty database of the same
/// server, kept for the walk, and a client of it); stops at the first
/// revision with a problem.
pub(super) fn walk<D>(
    ctx: &Ctx,
    engine: &Engine<'_>,
    client: &mut postgres::Client,
    second: impl FnOnce() -> Result<(D, postgres::Client), CliError>,
    skip: &[String],
    problems: &mut Vec<Problem>,
) -> Result<Stairs, CliError> {
    let t = Instant::now();
    let map = engine.map();
    let order = map.order();
    let walked = if order.len() < TWO_HALVES_FROM {
        walk_run(engine, client, skip, &[], order)?
    } else {
        let (_database, mut other) = second()?;
        let (first, rest) = order.split_at(order.len() / 2);
        let (a, b) = std::thread::scope(|scope| {
            let b = scope.spawn(|| walk_run(engine, &mut other, skip, first, rest));
            let a = walk_run(engine, client, skip, &[], first);
            (a, b.join())
        });
        let a = a?;
        // The first half's problem comes first, as one walk would stop there.
        if !a.problems.is_empty() || a.stopped_at.is_some() {
            a
        } else {
            let b =
                b.map_err(|_| CliError::failed("the stairway's second half panicked", None))??;
            Walked {
                stairs: Stairs {
                    checked: a.stairs.checked + b.stairs.checked,
                    took: Duration::ZERO,
                    snapshots: a.stairs.snapshots + b.stairs.snapshots,
                    snapshot_count: a.stairs.snapshot_count + b.stairs.snapshot_count,
                },
                ..b
            }
        }
    };
    let Walked {
        mut stairs,
        problems: found,
        stopped_at,
    } = walked;
    problems.extend(found);
    if let Some(id) = stopped_at {
        say(ctx, &format!("stairway: stopped at revision {id}\n"))?;
    }
    stairs.took = t.elapsed();
    say(ctx, &format!("stairway: {} of {} revisions upgraded, downgraded and upgraded again, schemas compared ({} ms)\n", stairs.checked, map.len(), stairs.took.as_millis()))?;
    Ok(stairs)
}

/// Upgrades `ready` one by one (no checks: the other half walks them),
/// then walks the stairs of `run`.
fn walk_run(
    engine: &Engine<'_>,
    client: &mut postgres::Client,
    skip: &[String],
    ready: &[usize],
    run: &[usize],
) -> Result<Walked, CliError> {
    let map = engine.map();
    let mut walked = Walked::default();
    for &i in ready {
        let rev = map.rev(i);
        if let Err(e) = engine.step_one(client, &rev.id, Direction::Upgrade) {
            walked.problems.push(upgrade_failed(engine, i, &e));
            return Ok(walked);
        }
    }
    let snapper = Snapshotter::prepare(client, skip)
        .map_err(|e| CliError::failed(format!("cannot read the catalogs: {e}"), None))?;
    let mut camera = Camera {
        snapper,
        stairs: &mut walked.stairs,
    };
    let mut before = camera.take(client)?;
    for &i in run {
        let stair = step(engine, client, &mut camera, &before, i)?;
        match stair {
            Stair::Up(after) => {
                // Two snapshots per revision: the downgrade's (compared in
                // `step`) and the upgrade's, which is also the next
                // revision's "before".
                before = after;
                camera.stairs.checked += 1;
            }
            Stair::Failed(problem) => {
                walked.problems.push(problem);
                break;
            }
            Stair::LeftBehind(problem) => {
                walked.problems.push(problem);
                walked.stopped_at = Some(map.rev(i).id.clone());
                break;
            }
        }
    }
    Ok(walked)
}

/// How a stair went.
enum Stair {
    /// Up, down and up again: the schema after the upgrade.
    Up(Snapshot),
    /// A step failed.
    Failed(Problem),
    /// The downgrade left the schema changed (what follows would fail for
    /// this reason: the walk stops).
    LeftBehind(Problem),
}

/// One stair: revision `i` up, down (compared with `before`) and up again.
/// The schema after its upgrade, or the problem.
fn step(
    engine: &Engine<'_>,
    client: &mut postgres::Client,
    camera: &mut Camera<'_>,
    before: &Snapshot,
    i: usize,
) -> Result<Stair, CliError> {
    let map = engine.map();
    let rev = map.rev(i);
    let file = rev.path.display();
    if let Err(e) = engine.step_one(client, &rev.id, Direction::Upgrade) {
        return Ok(Stair::Failed(upgrade_failed(engine, i, &e)));
    }
    let after = camera.take(client)?;
    if rev.downgrade.is_none() {
        return Ok(Stair::Up(after));
    }
    if let Err(e) = engine.step_one(client, &rev.id, Direction::Downgrade) {
        return Ok(Stair::Failed(about(
            map,
            i,
            "stairway",
            error_line(&e),
            failed_step("downgrade", map, i, &e),
        )));
    }
    let undone = camera.take(client)?;
    let left = snapshot::diff(before, &undone);
    if !left.is_empty() {
        return Ok(Stair::LeftBehind(about(
            map,
            i,
            "stairway",
            None,
            format!(
                "the downgrade of revision {} ({file}) does not undo its upgrade; compared with the schema before the upgrade (- missing, + left behind):\n    {}",
                rev.id,
                left.join("\n    ")
            ),
        )));
    }
    if let Err(e) = engine.step_one(client, &rev.id, Direction::Upgrade) {
        return Ok(Stair::Failed(about(
            map,
            i,
            "stairway",
            error_line(&e),
            format!(
                "after its downgrade, {}",
                failed_step("upgrade", map, i, &e)
            ),
        )));
    }
    Ok(Stair::Up(after))
}

/// Revision `i`'s first upgrade failed (on the way to a half, or on its
/// stair): the problem, at the failing line or the upgrade marker.
fn upgrade_failed(engine: &Engine<'_>, i: usize, e: &EngineError) -> Problem {
    let map = engine.map();
    let rev = map.rev(i);
    about(
        map,
        i,
        "upgrade",
        error_line(e).or(Some(rev.upgrade.marker_line)),
        failed_step("upgrade", map, i, e),
    )
}

/// What a failed step of revision `i` says: the engine's own words when a
/// statement failed (they name the step, the revision and the file's
/// line), else `step`, the revision and its file before them.
fn failed_step(step: &str, map: &RevisionMap, i: usize, e: &EngineError) -> String {
    match e {
        EngineError::Sql(_) => e.to_string(),
        _ => {
            let rev = map.rev(i);
            format!(
                "{step} of revision {} ({}) failed: {e}",
                rev.id,
                rev.path.display()
            )
        }
    }
}
