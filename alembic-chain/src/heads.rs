//! How `alembic_version` changes as revisions are applied or undone, exactly
//! as Alembic's `HeadMaintainer` does it, so that Python Alembic and this
//! tool can take turns on one database.
//!
//! The table holds one row per head. Upgrading a revision updates its
//! parent's row, inserts a row when it starts a branch, or deletes all but
//! one of its parents' rows when it merges; a dependency (`depends_on`)
//! takes part like a parent. Downgrading does the reverse.

use std::collections::BTreeSet;

use crate::graph::RevisionMap;

/// One change to the version table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionOp {
    /// `INSERT INTO alembic_version VALUES (id)`
    Insert(String),
    /// `DELETE FROM alembic_version WHERE version_num = id`
    Delete(String),
    /// `UPDATE alembic_version SET version_num = to WHERE version_num = from`
    Update {
        /// The row's current value.
        from: String,
        /// Its new value.
        to: String,
    },
}

/// A step the version table cannot record the way Alembic records it:
/// Alembic's `HeadMaintainer` fails on it (an assertion or a missing row),
/// so neither tool runs the command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "revision {revision} cannot be recorded in the version table as Alembic records it: {reason}"
)]
pub struct StepError {
    /// The revision of the step.
    pub revision: String,
    /// What Alembic trips over.
    pub reason: String,
}

impl StepError {
    fn new(map: &RevisionMap, rev: usize, reason: &str) -> StepError {
        StepError {
            revision: map.rev(rev).id.clone(),
            reason: reason.to_owned(),
        }
    }
}

/// The rows of the version table, as revision indexes, kept up to date step
/// by step.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeadState {
    heads: BTreeSet<usize>,
}

impl HeadState {
    /// The state for the given rows.
    pub fn new(heads: impl IntoIterator<Item = usize>) -> Self {
        HeadState {
            heads: heads.into_iter().collect(),
        }
    }

    /// The rows, by index.
    pub fn heads(&self) -> Vec<usize> {
        self.heads.iter().copied().collect()
    }

    /// Applies revision `rev` and returns what to do to the table; an
    /// error where Alembic's `HeadMaintainer` fails (it would stop the run
    /// and roll it back).
    pub fn upgrade(&mut self, map: &RevisionMap, rev: usize) -> Result<Vec<VersionOp>, StepError> {
        let down = normalized_down(map, rev);
        let present = down.iter().filter(|d| self.heads.contains(d)).count();
        if present == 0 {
            // A base, or none of the parents is a row any more (a second
            // branch from a branch point): a new row.
            return Ok(vec![self.insert(map, rev)?]);
        }
        if down.len() > 1 && present > 1 {
            // A merge: every parent that the other rows do not imply goes,
            // the last one becoming this revision. Like Alembic, a parent
            // that is no row any more is an error, not skipped.
            let others: Vec<usize> = self
                .heads
                .iter()
                .copied()
                .filter(|h| !down.contains(h))
                .collect();
            let from: Vec<usize> = if others.is_empty() {
                down
            } else {
                let implied = map.ancestors(&others, true);
                down.into_iter().filter(|&d| !implied[d]).collect()
            };
            let Some((&last, rest)) = from.split_last() else {
                return Err(StepError::new(
                    map,
                    rev,
                    "every parent of the merge is implied by another row",
                ));
            };
            let mut ops = Vec::with_capacity(from.len());
            for &d in rest {
                ops.push(self.delete(map, rev, d)?);
            }
            ops.push(self.update(map, rev, last, rev)?);
            return Ok(ops);
        }
        let from = match down.as_slice() {
            [one] => *one,
            several => {
                let rows: Vec<usize> = several
                    .iter()
                    .copied()
                    .filter(|d| self.heads.contains(d))
                    .collect();
                match rows.as_slice() {
                    [one] => *one,
                    _ => return Err(StepError::new(map, rev, "the row to update is ambiguous")),
                }
            }
        };
        Ok(vec![self.update(map, rev, from, rev)?])
    }

    /// Undoes revision `rev` and returns what to do to the table; an error
    /// where Alembic's `HeadMaintainer` fails.
    pub fn downgrade(
        &mut self,
        map: &RevisionMap,
        rev: usize,
    ) -> Result<Vec<VersionOp>, StepError> {
        let down = normalized_down(map, rev);
        if !self.heads.contains(&rev) {
            return Err(StepError::new(
                map,
                rev,
                "it is not a row of the version table",
            ));
        }
        let to = self.unmerge_targets(map, rev, &down);
        if down.is_empty() || to.is_empty() {
            // A base, or every parent is still accounted for by another row.
            return Ok(vec![self.delete(map, rev, rev)?]);
        }
        let Some((&last, rest)) = to.split_last() else {
            return Err(StepError::new(map, rev, "no row to restore"));
        };
        // Alembic's order: the other parents' rows first, then the update.
        let mut ops = Vec::with_capacity(to.len());
        for &r in rest {
            ops.push(self.insert(map, r)?);
        }
        ops.push(self.update(map, rev, rev, last)?);
        Ok(ops)
    }

    /// What takes the table from these rows to `after`'s in one go: a
    /// row that goes and one that comes are one update, the rest deletes
    /// and inserts. A run in one transaction records its revisions this
    /// way at its commit: the rows it leaves are the ones the steps leave
    /// (no row can go and come back in one direction), and no one sees the
    /// rows between.
    pub fn changes_to(&self, map: &RevisionMap, after: &HeadState) -> Vec<VersionOp> {
        let id = |i: usize| map.rev(i).id.clone();
        let mut gone = self.heads.difference(&after.heads).copied();
        let mut come = after.heads.difference(&self.heads).copied();
        let mut ops = Vec::new();
        loop {
            match (gone.next(), come.next()) {
                (Some(from), Some(to)) => ops.push(VersionOp::Update {
                    from: id(from),
                    to: id(to),
                }),
                (Some(from), None) => ops.push(VersionOp::Delete(id(from))),
                (None, Some(to)) => ops.push(VersionOp::Insert(id(to))),
                (None, None) => return ops,
            }
        }
    }

    fn insert(&mut self, map: &RevisionMap, rev: usize) -> Result<VersionOp, StepError> {
        if !self.heads.insert(rev) {
            return Err(StepError::new(map, rev, "it is a row already"));
        }
        Ok(VersionOp::Insert(map.rev(rev).id.clone()))
    }

    fn delete(
        &mut self,
        map: &RevisionMap,
        step: usize,
        row: usize,
    ) -> Result<VersionOp, StepError> {
        if !self.heads.remove(&row) {
            return Err(StepError::new(
                map,
                step,
                &format!("{} is not a row of the version table", map.rev(row).id),
            ));
        }
        Ok(VersionOp::Delete(map.rev(row).id.clone()))
    }

    fn update(
        &mut self,
        map: &RevisionMap,
        step: usize,
        from: usize,
        to: usize,
    ) -> Result<VersionOp, StepError> {
        if self.heads.contains(&to) {
            return Err(StepError::new(
                map,
                step,
                &format!("{} is a row already", map.rev(to).id),
            ));
        }
        if !self.heads.remove(&from) {
            return Err(StepError::new(
                map,
                step,
                &format!("{} is not a row of the version table", map.rev(from).id),
            ));
        }
        self.heads.insert(to);
        Ok(VersionOp::Update {
            from: map.rev(from).id.clone(),
            to: map.rev(to).id.clone(),
        })
    }

    /// Alembic's `_unmerge_to_revisions`: the parents that no other row
    /// already accounts for.
    fn unmerge_targets(&self, map: &RevisionMap, rev: usize, down: &[usize]) -> Vec<usize> {
        let others: Vec<usize> = self.heads.iter().copied().filter(|&h| h != rev).collect();
        if !others.is_empty() {
            let implied = map.ancestors(&others, true);
            return down.iter().copied().filter(|&d| !implied[d]).collect();
        }
        // Parents that are ancestors of other parents are accounted for.
        down.iter()
            .copied()
            .filter(|&d| {
                !down
                    .iter()
                    .any(|&other| other != d && map.ancestors(&[other], true)[d])
            })
            .collect()
    }
}

/// Alembic's `_normalized_down_revisions`: the parents, then the
/// dependencies that no ancestor (through parents) already depends on.
pub fn normalized_down(map: &RevisionMap, rev: usize) -> Vec<usize> {
    let mut out: Vec<usize> = map.parents(rev).to_vec();
    if map.dependencies(rev).is_empty() {
        return out;
    }
    let below = map.ancestors(&[rev], false);
    for &d in map.dependencies(rev) {
        let inherited =
            (0..map.len()).any(|a| a != rev && below[a] && map.dependencies(a).contains(&d));
        if !inherited && !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ids, map};

    /// Runs upgrade steps then downgrade steps, checking the rows after each.
    fn walk(m: &RevisionMap, up: &[&str], down: &[&str]) -> Vec<(Vec<VersionOp>, Vec<String>)> {
        let mut state = HeadState::default();
        let mut out = Vec::new();
        for id in up {
            let ops = state.upgrade(m, m.index_of(id).unwrap()).unwrap();
            out.push((ops, ids(m, &state.heads())));
        }
        for id in down {
            let ops = state.downgrade(m, m.index_of(id).unwrap()).unwrap();
            out.push((ops, ids(m, &state.heads())));
        }
        out
    }

    fn ins(s: &str) -> VersionOp {
        VersionOp::Insert(s.into())
    }
    fn del(s: &str) -> VersionOp {
        VersionOp::Delete(s.into())
    }
    fn upd(a: &str, b: &str) -> VersionOp {
        VersionOp::Update {
            from: a.into(),
            to: b.into(),
        }
    }

    #[test]
    fn linear() {
        let m = map(&["a", "b <- a"]);
        let got = walk(&m, &["a", "b"], &["b", "a"]);
        assert_eq!(got[0], (vec![ins("a")], vec!["a".to_owned()]));
        assert_eq!(got[1], (vec![upd("a", "b")], vec!["b".to_owned()]));
        assert_eq!(got[2], (vec![upd("b", "a")], vec!["a".to_owned()]));
        assert_eq!(got[3], (vec![del("a")], vec![]));
    }

    #[test]
    fn branch_and_merge() {
        // a -> b1, a -> c1, (b1, c1) -> m
        let m = map(&["a", "b1 <- a", "c1 <- a", "m <- b1,c1"]);
        let got = walk(&m, &["a", "b1", "c1", "m"], &["m", "c1", "b1"]);
        let rows: Vec<Vec<String>> = got.iter().map(|g| g.1.clone()).collect();
        assert_eq!(got[1].0, vec![upd("a", "b1")]);
        assert_eq!(
            got[2].0,
            vec![ins("c1")],
            "a second branch from a branch point inserts"
        );
        assert_eq!(
            got[3].0,
            vec![del("b1"), upd("c1", "m")],
            "a merge deletes one row and updates the other"
        );
        assert_eq!(rows[3], ["m"]);
        assert_eq!(
            got[4].0,
            vec![ins("b1"), upd("m", "c1")],
            "undoing a merge restores both rows (Alembic's order: insert, then update)"
        );
        assert_eq!(rows[4], ["b1", "c1"]);
        assert_eq!(
            got[5].0,
            vec![del("c1")],
            "the branch point is still held by b1"
        );
        assert_eq!(got[6].0, vec![upd("b1", "a")]);
        assert_eq!(rows[6], ["a"]);
    }

    #[test]
    fn a_dependency_takes_part_like_a_parent() {
        // x is its own branch; b depends on x.
        let m = map(&["a", "x", "b <- a {x}"]);
        let got = walk(&m, &["a", "x", "b"], &["b"]);
        assert_eq!(got[1].0, vec![ins("x")]);
        assert_eq!(got[2].0, vec![del("a"), upd("x", "b")]);
        assert_eq!(got[2].1, ["b"]);
        assert_eq!(got[3].0, vec![ins("a"), upd("b", "x")]);
        assert_eq!(got[3].1, ["a", "x"]);
    }

    /// Alembic's own behaviour, kept for interoperability: undoing a
    /// revision while another row exists restores every parent and
    /// dependency that the other row does not imply, even one implied by
    /// another restored row (`p`, implied by `d`).
    #[test]
    fn unmerge_keeps_alembics_redundant_row() {
        let m = map(&["p", "d {p}", "r <- p {d}", "o"]);
        let got = walk(&m, &["p", "d", "r", "o"], &["r"]);
        assert_eq!(got[2], (vec![upd("d", "r")], vec!["r".to_owned()]));
        assert_eq!(got[4].0, vec![ins("p"), upd("r", "d")]);
        assert_eq!(got[4].1, ["p", "d", "o"]);
    }

    /// Applies ops to a table's rows as the server would.
    fn apply(rows: &mut BTreeSet<String>, ops: &[VersionOp]) {
        for op in ops {
            match op {
                VersionOp::Insert(id) => assert!(rows.insert(id.clone()), "{id} twice"),
                VersionOp::Delete(id) => assert!(rows.remove(id), "no row {id}"),
                VersionOp::Update { from, to } => {
                    assert!(rows.remove(from), "no row {from}");
                    assert!(rows.insert(to.clone()), "{to} twice");
                }
            }
        }
    }

    /// The ops a whole transaction sends at its commit leave the rows its
    /// steps one by one would: for every prefix of walks up and down
    /// through branches, merges and dependencies.
    #[test]
    fn changes_in_one_go_leave_the_rows_of_the_steps() {
        let walks: [(&[&str], &[&str], &[&str]); 3] = [
            (
                &["a", "b1 <- a", "c1 <- a", "m <- b1,c1", "n <- m"],
                &["a", "b1", "c1", "m", "n"],
                &["n", "m", "c1", "b1", "a"],
            ),
            (
                &["a", "x", "b <- a {x}", "c <- b"],
                &["a", "x", "b", "c"],
                &["c", "b", "x", "a"],
            ),
            (
                &["p", "d {p}", "r <- p {d}", "o"],
                &["p", "d", "r", "o"],
                &["r", "o", "d", "p"],
            ),
        ];
        for (chain, up, down) in walks {
            let m = map(chain);
            let idx = |id: &&str| m.index_of(id).unwrap();
            for (direction, steps) in [("up", up), ("down", down)] {
                let mut start = HeadState::default();
                if direction == "down" {
                    for id in up {
                        start.upgrade(&m, idx(id)).unwrap();
                    }
                }
                for from in 0..steps.len() {
                    for to in from..=steps.len() {
                        let mut before = start.clone();
                        for id in &steps[..from] {
                            step(&m, &mut before, direction, idx(id));
                        }
                        let mut after = before.clone();
                        let mut one_by_one: BTreeSet<String> =
                            ids(&m, &before.heads()).into_iter().collect();
                        for id in &steps[from..to] {
                            let ops = step(&m, &mut after, direction, idx(id));
                            apply(&mut one_by_one, &ops);
                        }
                        let mut at_once: BTreeSet<String> =
                            ids(&m, &before.heads()).into_iter().collect();
                        let ops = before.changes_to(&m, &after);
                        apply(&mut at_once, &ops);
                        assert_eq!(
                            at_once, one_by_one,
                            "{chain:?} {direction} {from}..{to}: {ops:?}"
                        );
                    }
                }
            }
        }
        let m = map(&["a", "b <- a", "c <- b"]);
        let a = HeadState::new([m.index_of("a").unwrap()]);
        let c = HeadState::new([m.index_of("c").unwrap()]);
        assert_eq!(
            a.changes_to(&m, &c),
            vec![upd("a", "c")],
            "one update for a linear run"
        );
        assert_eq!(a.changes_to(&m, &a), vec![]);
        assert_eq!(HeadState::default().changes_to(&m, &c), vec![ins("c")]);
        assert_eq!(c.changes_to(&m, &HeadState::default()), vec![del("c")]);
    }

    fn step(m: &RevisionMap, state: &mut HeadState, direction: &str, i: usize) -> Vec<VersionOp> {
        match direction {
            "up" => state.upgrade(m, i).unwrap(),
            _ => state.downgrade(m, i).unwrap(),
        }
    }

    #[test]
    fn inherited_dependencies_are_not_repeated() {
        let m = map(&["a", "x", "b <- a {x}", "c <- b {x}"]);
        assert_eq!(
            ids(&m, &normalized_down(&m, m.index_of("c").unwrap())),
            ["b"]
        );
        assert_eq!(
            ids(&m, &normalized_down(&m, m.index_of("b").unwrap())),
            ["a", "x"]
        );
    }
}
