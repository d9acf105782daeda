//! Branch order: at each merge point, everything below it applied once per
//! parent, that parent's branch first, each on a fresh database, and the
//! schemas compared.

use alembic_chain::RevisionMap;
use alembic_embed::cli_engine::Engine;
use alembic_embed::Direction;
use alembic_throwaway::Server;

use std::time::Instant;

use super::{about, say, Problem};
use crate::errors::CliError;
use crate::snapshot;
use crate::Ctx;

/// Checks every merge point; the time it took, in milliseconds (0 without
/// merges).
pub(super) fn check_all(
    ctx: &Ctx,
    engine: &Engine<'_>,
    server: &Server,
    skip: &[String],
    problems: &mut Vec<Problem>,
) -> Result<u128, CliError> {
    let map = engine.map();
    let merges = map.merge_points();
    if merges.is_empty() {
        return Ok(0);
    }
    let t = Instant::now();
    for &m in &merges {
        branch_order(map, engine, server, skip, m, problems)?;
    }
    let ms = t.elapsed().as_millis();
    say(
        ctx,
        &format!(
            "branch order: {} merge point{} checked, each branch applied first ({ms} ms)\n",
            merges.len(),
            if merges.len() == 1 { "" } else { "s" },
        ),
    )?;
    Ok(ms)
}

/// A topological order of `set` that takes the revisions of `preferred`
/// whenever they are ready.
fn preferring(map: &RevisionMap, set: &[bool], preferred: &[bool]) -> Vec<usize> {
    let mut done = vec![false; map.len()];
    let mut out = Vec::new();
    loop {
        let ready = |i: usize, done: &[bool]| {
            set[i]
                && !done[i]
                && map
                    .parents(i)
                    .iter()
                    .chain(map.dependencies(i))
                    .all(|&p| done[p] || !set[p])
        };
        let next = map
            .order()
            .iter()
            .copied()
            .filter(|&i| ready(i, &done))
            .min_by_key(|&i| (!preferred[i], map.rank(i)));
        match next {
            Some(i) => {
                done[i] = true;
                out.push(i);
            }
            None => return out,
        }
    }
}

/// Applies everything below merge point `m` once per parent, that
/// parent's branch first, each on a fresh database, and compares every
/// schema with the first one's.
fn branch_order(
    map: &RevisionMap,
    engine: &Engine<'_>,
    server: &Server,
    skip: &[String],
    m: usize,
    problems: &mut Vec<Problem>,
) -> Result<(), CliError> {
    let parents = map.parents(m);
    let below: Vec<Vec<bool>> = parents.iter().map(|&p| map.ancestors(&[p], true)).collect();
    let set = map.ancestors(parents, true);
    // Revisions of branch k: below parent k and below no other parent.
    let branch = |k: usize| -> Vec<bool> {
        (0..map.len())
            .map(|i| below[k][i] && below.iter().enumerate().all(|(j, b)| j == k || !b[i]))
            .collect()
    };
    let mut results = Vec::new();
    for (k, &parent) in parents.iter().enumerate() {
        let order = preferring(map, &set, &branch(k));
        match apply_in_order(map, engine, server, skip, m, parent, &order, problems)? {
            Some(snap) => results.push((parent, snap)),
            None => return Ok(()),
        }
    }
    let Some(((first, first_snap), rest)) = results.split_first() else {
        return Ok(());
    };
    for (other, snap) in rest {
        let differs = snapshot::diff(first_snap, snap);
        if !differs.is_empty() {
            problems.push(about(
                map,
                m,
                "branch-order",
                None,
                format!(
                    "the branches merged by revision {} ({}) are not independent: the schema with the branch of {} first differs from the one with the branch of {} first (- only in the first, + only in the second):\n    {}",
                    map.rev(m).id,
                    map.rev(m).path.display(),
                    map.rev(*first).id,
                    map.rev(*other).id,
                    differs.join("\n    ")
                ),
            ));
        }
    }
    Ok(())
}

/// Upgrades a fresh database revision by revision in `order` (the branch
/// of `parent` first) and takes its schema; `None`, with the problem
/// recorded, when a revision fails in that order.
#[allow(clippy::too_many_arguments)]
fn apply_in_order(
    map: &RevisionMap,
    engine: &Engine<'_>,
    server: &Server,
    skip: &[String],
    m: usize,
    parent: usize,
    order: &[usize],
    problems: &mut Vec<Problem>,
) -> Result<Option<snapshot::Snapshot>, CliError> {
    let failed = |e: &dyn std::fmt::Display| CliError::failed(e.to_string(), None);
    let db = server.database().map_err(|e| failed(&e))?;
    let mut client = alembic_embed::tls::connect(db.url()).map_err(|e| failed(&e))?;
    for &i in order {
        if let Err(e) = engine.step_one(&mut client, &map.rev(i).id, Direction::Upgrade) {
            problems.push(about(
                map,
                m,
                "branch-order",
                None,
                format!(
                    "the branches merged by revision {} ({}) depend on their order: with the branch of {} first, revision {} fails: {e}",
                    map.rev(m).id,
                    map.rev(m).path.display(),
                    map.rev(parent).id,
                    map.rev(i).id
                ),
            ));
            return Ok(None);
        }
    }
    let snap = snapshot::Snapshotter::prepare(&mut client, skip)
        .and_then(|s| s.take(&mut client))
        .map_err(|e| failed(&e))?;
    Ok(Some(snap))
}
