//! `stamp` exactly as Alembic 1.20 does it (`ScriptDirectory._stamp_revs`
//! and the `HeadMaintainer` steps it produces), so that a stamp leaves the
//! same `alembic_version` rows as Python Alembic, quirks included:
//!
//! - a stamp target is resolved without the database's state: `-1` walks
//!   down from every head of the chain, `+1` and `rev+1` name nothing;
//! - `base` among several targets adds nothing (`stamp a base` is
//!   `stamp a`), but it makes every current row a candidate to replace;
//! - a target replaces the current rows on its lineage (dependencies
//!   included) in one step, upward or downward; one on no current lineage
//!   becomes a new row.

use std::collections::BTreeSet;

use crate::errors::ResolveError;
use crate::graph::RevisionMap;
use crate::resolve::Resolver;

/// One of Alembic's `StampStep`s: rows `from` become the row `to`.
struct StampStep {
    from: Vec<usize>,
    to: Option<usize>,
    upgrade: bool,
    branch_move: bool,
}

/// The rows of the version table after `stamp targets` from `rows`; an
/// error where Alembic refuses (then the table is left as it was).
// Over 80 lines on purpose: it follows Alembic's `_stamp_revs` step by step,
// so that the two can be read side by side when Alembic changes.
pub fn stamp_rows(
    map: &RevisionMap,
    rows: &[usize],
    targets: &[&str],
) -> Result<Vec<usize>, ResolveError> {
    let resolver = Resolver::new(map);
    let refused = |ident: &str, reason: &str| ResolveError::StampRefused {
        targets: targets.join(" "),
        reason: format!("{reason} ({ident})"),
    };
    // The lineage of each target, among the current rows (dependencies
    // included); in target order, each row once.
    let mut filtered: Vec<usize> = Vec::new();
    for ident in targets.iter().filter(|t| !t.is_empty()) {
        for h in resolver.alembic_filter_for_lineage(rows, ident, true)? {
            if !filtered.contains(&h) {
                filtered.push(h);
            }
        }
    }
    let mut dests: Vec<Option<usize>> = Vec::new();
    for ident in targets {
        dests.extend(resolver.alembic_get_revisions(ident)?);
    }
    if dests.is_empty() {
        dests.push(None);
    }
    let mut steps = Vec::new();
    for dest in dests {
        let Some(dest) = dest else {
            // Base: a "delete branch" step for every row on the lineage.
            steps.extend(filtered.iter().map(|&h| StampStep {
                from: vec![h],
                to: None,
                upgrade: false,
                branch_move: true,
            }));
            continue;
        };
        if filtered.contains(&dest) {
            continue;
        }
        let above = map.descendants(&[dest], true);
        let below = map.ancestors(&[dest], true);
        if filtered.iter().any(|&h| above[h]) && filtered.iter().any(|&h| below[h]) {
            // Alembic asserts that a downward stamp has no row below it.
            return Err(refused(
                &map.rev(dest).id,
                "the rows on its lineage are both above and below it",
            ));
        }
        if filtered.iter().any(|&h| above[h]) {
            steps.push(StampStep {
                from: filtered.clone(),
                to: Some(dest),
                upgrade: false,
                branch_move: false,
            });
        } else if filtered.iter().any(|&h| below[h]) {
            steps.push(StampStep {
                from: filtered.clone(),
                to: Some(dest),
                upgrade: true,
                branch_move: false,
            });
        } else {
            steps.push(StampStep {
                from: Vec::new(),
                to: Some(dest),
                upgrade: true,
                branch_move: true,
            });
        }
    }
    let mut heads: BTreeSet<usize> = rows.iter().copied().collect();
    let id = |i: usize| map.rev(i).id.clone();
    for step in steps {
        apply(&mut heads, &step)
            .map_err(|reason| refused(&step.to.map_or_else(|| "base".to_owned(), id), reason))?;
    }
    Ok(heads.into_iter().collect())
}

/// `HeadMaintainer.update_to_step` for a stamp step; Alembic's assertion
/// and row-count failures become refusals.
fn apply(heads: &mut BTreeSet<usize>, step: &StampStep) -> Result<(), &'static str> {
    let to: Vec<usize> = step.to.into_iter().collect();
    let remove = |heads: &mut BTreeSet<usize>, r: usize| {
        if heads.remove(&r) {
            Ok(())
        } else {
            Err("a row to replace is not in the version table")
        }
    };
    if !step.upgrade && step.branch_move {
        // Delete the branch: exactly one row.
        let [from] = step.from.as_slice() else {
            return Err("a branch to delete has several rows");
        };
        return remove(heads, *from);
    }
    let creates = step.upgrade
        && (step.branch_move || step.from.iter().any(|f| !heads.contains(f)))
        && to.iter().any(|t| !heads.contains(t));
    if creates {
        let [t] = to.as_slice() else {
            return Err("a new row needs one revision");
        };
        heads.insert(*t);
        return Ok(());
    }
    let [t] = to.as_slice() else {
        return Err("the step has no revision to write");
    };
    if heads.contains(t) {
        return Err("the revision is already a row");
    }
    match step.from.as_slice() {
        [] => Err("there is no row to replace"),
        // A merge: delete all but the last, update the last.
        [rest @ .., last] => {
            for &r in rest {
                remove(heads, r)?;
            }
            remove(heads, *last)?;
            heads.insert(*t);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ids, map};

    fn stamp(m: &RevisionMap, rows: &[&str], targets: &[&str]) -> String {
        let rows: Vec<usize> = rows.iter().map(|r| m.index_of(r).unwrap()).collect();
        match stamp_rows(m, &rows, targets) {
            Ok(after) => ids(m, &after).join(" "),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn stamps_as_alembic_does() {
        // a - b - c [x: branch off b] ; b - d ; m merges c and d
        let m = map(&[
            "a1 [trunk]",
            "b2 <- a1",
            "c3 <- b2 [side]",
            "d4 <- b2",
            "e5 <- c3,d4",
            "z9 [other]",
        ]);
        let table: &[(&[&str], &[&str], &str)] = &[
            (&[], &["c3"], "c3"),
            (&["c3"], &["a1"], "a1"),
            (&["c3"], &["e5"], "e5"),
            (&["c3", "d4"], &["e5"], "e5"),
            (&["c3"], &["z9"], "c3 z9"),
            (&["c3", "z9"], &["base"], ""),
            (&["c3", "z9"], &["side@base"], "z9"),
            // `base` among several targets adds nothing, but makes every
            // row a candidate: the rows on no lineage of `a1` go too.
            (&["c3", "z9"], &["a1", "base"], "a1"),
            // Relative: from every head of the chain, not the rows.
            // `-1` from the head e5 is ambiguous (a merge): Alembic refuses.
            (&[], &["-1"], "error"),
            (&[], &["+1"], "error"),
            (&["a1"], &["a1+1"], "error"),
            (&["e5"], &["e5"], "e5"),
        ];
        for (rows, targets, expected) in table {
            let got = stamp(&m, rows, targets);
            if *expected == "error" {
                assert!(got.starts_with("error"), "{rows:?} {targets:?}: {got}");
            } else {
                assert_eq!(got, *expected, "{rows:?} {targets:?}");
            }
        }
    }
}
