//! The revision graph: validation, heads and bases, a deterministic
//! topological order, branch labels, and the revisions between two states.
//!
//! Architecture Invariant: nothing here touches a database or the file
//! system; a [`RevisionMap`] is built from already-parsed revisions.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use crate::errors::{GraphError, LoadError};
use crate::revision::Revision;

/// A validated revision graph.
///
/// Revisions are addressed by index (`usize`) into [`RevisionMap::revisions`];
/// indexes are stable for the life of the map.
#[derive(Debug)]
pub struct RevisionMap {
    revs: Vec<Revision>,
    /// Revision indexes sorted by id: exact and prefix lookups by binary
    /// search, without a copy of every id.
    by_id: Vec<usize>,
    /// Label -> the revision that declares it.
    label_decl: HashMap<String, usize>,
    parents: Lists,
    /// Resolved `depends_on` targets.
    deps: Lists,
    children: Lists,
    dependents: Lists,
    /// Labels carried by each revision, after Alembic's propagation.
    labels: Vec<Vec<String>>,
    /// Topological order, bases first.
    order: Vec<usize>,
    /// `rank[i]` is the position of revision `i` in `order`.
    rank: Vec<usize>,
    heads: Vec<usize>,
    bases: Vec<usize>,
    /// Files a squash replaces, kept aside: not in the graph, read for
    /// databases still inside a squashed range ([`RevisionMap::expanded`]).
    pub(crate) replaced: Vec<Revision>,
    /// Every id a squash (in the graph or kept aside) lists in `replaces`.
    pub(crate) replaced_ids: HashSet<String>,
    /// The graph with every squash whose files are kept undone, built on
    /// first use.
    pub(crate) expanded: OnceLock<Box<RevisionMap>>,
    /// In an expanded graph: each squash left out, and its squash point.
    pub(crate) undone: HashMap<String, String>,
}

impl RevisionMap {
    /// Builds and validates the graph. Every problem found is reported:
    /// duplicate ids, missing parents and dependencies, duplicate labels,
    /// labels equal to revision ids, and cycles.
    pub fn new(revs: Vec<Revision>) -> Result<RevisionMap, LoadError> {
        let (revs, replaced, replaced_ids) = crate::squash::set_aside(revs);
        let n = revs.len();
        let mut problems: Vec<LoadError> = Vec::new();
        let by_id = sorted_ids(&revs, &mut problems);
        let label_decl = declare_labels(&revs, &by_id, &mut problems);
        let (parents, deps) = resolve_edges(&revs, &by_id, &label_decl, &mut problems);
        let (children, dependents) = reverse_edges(&revs, &parents, &deps);
        let order = topological_order(&revs, &parents, &deps, &children, &dependents);
        if order.len() < n {
            problems.push(
                GraphError::Cycle {
                    cycle: find_cycle(&revs, &parents, &deps, &order),
                }
                .into(),
            );
        }
        if let Some(err) = LoadError::from_many(problems) {
            return Err(err);
        }
        let mut rank = vec![0; n];
        for (pos, &i) in order.iter().enumerate() {
            rank[i] = pos;
        }
        let heads: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| children[i].is_empty())
            .collect();
        let bases: Vec<usize> = order
            .iter()
            .copied()
            .filter(|&i| parents[i].is_empty())
            .collect();
        let mut map = RevisionMap {
            revs,
            by_id,
            label_decl,
            parents,
            deps,
            children,
            dependents,
            labels: vec![Vec::new(); n],
            order,
            rank,
            heads,
            bases,
            replaced,
            replaced_ids,
            expanded: OnceLock::new(),
            undone: HashMap::new(),
        };
        map.propagate_labels();
        Ok(map)
    }

    /// Alembic's propagation: a label applies to the revision declaring it,
    /// to all its descendants, and down its ancestors until a real branch
    /// point or a merge point.
    fn propagate_labels(&mut self) {
        let mut decls: Vec<(&String, &usize)> = self.label_decl.iter().collect();
        decls.sort();
        let mut labels = vec![Vec::new(); self.revs.len()];
        for (label, &decl) in decls {
            let below = self.descendants(&[decl], false);
            for (i, inside) in below.iter().enumerate() {
                if *inside {
                    labels[i].push(label.clone());
                }
            }
            let mut cur = decl;
            while let [p] = self.parents[cur] {
                if self.children[p].len() > 1 || self.parents[p].len() > 1 {
                    break;
                }
                labels[p].push(label.clone());
                cur = p;
            }
        }
        for l in labels.iter_mut() {
            l.sort();
            l.dedup();
        }
        self.labels = labels;
    }

    /// Splits every revision's statements, reporting every file that does
    /// not lex (listing commands skip this; `check` and the engine do not).
    pub fn lex_all(&self) -> Result<(), LoadError> {
        let problems: Vec<LoadError> = self
            .revs
            .iter()
            .filter_map(|r| r.lex().err())
            .map(LoadError::from)
            .collect();
        LoadError::from_many(problems).map_or(Ok(()), Err)
    }

    /// Number of revisions.
    pub fn len(&self) -> usize {
        self.revs.len()
    }

    /// True for an empty chain.
    pub fn is_empty(&self) -> bool {
        self.revs.is_empty()
    }

    /// The revision at an index.
    pub fn rev(&self, i: usize) -> &Revision {
        &self.revs[i]
    }

    /// All revisions, in load order (not topological).
    pub fn revisions(&self) -> &[Revision] {
        &self.revs
    }

    /// The index of an exact revision id.
    pub fn index_of(&self, id: &str) -> Option<usize> {
        find(&self.revs, &self.by_id, id)
    }

    /// Revisions whose id starts with `prefix`, sorted by id.
    pub fn with_prefix(&self, prefix: &str) -> Vec<usize> {
        let start = self
            .by_id
            .partition_point(|&i| self.revs[i].id.as_str() < prefix);
        self.by_id[start..]
            .iter()
            .copied()
            .take_while(|&i| self.revs[i].id.starts_with(prefix))
            .collect()
    }

    /// A revision by exact id.
    pub fn get(&self, id: &str) -> Option<&Revision> {
        self.index_of(id).map(|i| &self.revs[i])
    }

    /// The revision declaring a label.
    pub fn label_declared_by(&self, label: &str) -> Option<usize> {
        self.label_decl.get(label).copied()
    }

    /// All declared labels, sorted.
    pub fn all_labels(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.label_decl.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Topological order: parents and dependencies before children.
    /// Deterministic: ties go to the branch just walked, then to the
    /// smallest id, so a branch's revisions stay together.
    pub fn order(&self) -> &[usize] {
        &self.order
    }

    /// Position of a revision in [`RevisionMap::order`].
    pub fn rank(&self, i: usize) -> usize {
        self.rank[i]
    }

    /// Revisions without children, in topological order.
    pub fn heads(&self) -> &[usize] {
        &self.heads
    }

    /// Whether a database is at this graph's heads with every revision
    /// recorded as it is now: `rows` are the version table's rows, sorted;
    /// `ledger` the ledger's revisions with their upgrade and downgrade
    /// checksums, in any order (the order applied, the usual one, is
    /// compared as it comes). Then an upgrade to the heads has nothing to
    /// do, nothing is unverified and nothing was edited; `false` when
    /// anything differs, for the caller to check the long way. The same
    /// check as [`PackedChain::all_applied`](crate::embed::PackedChain::all_applied),
    /// on the graph: the files squashes replaced are not in it, and a
    /// squash's row stands for them.
    pub fn all_applied(&self, rows: &[String], ledger: &[crate::embed::LedgerEntry<'_>]) -> bool {
        let heads = self
            .heads
            .iter()
            .map(|&i| self.revs[i].id.as_str())
            .collect();
        crate::recorded::all_recorded(heads, rows, ledger, |f| {
            self.order.iter().all(|&i| {
                let rev = &self.revs[i];
                f((
                    &rev.id,
                    rev.upgrade.checksum().as_str(),
                    rev.downgrade.as_ref().map(|d| d.checksum().as_str()),
                ))
            })
        })
    }

    /// Revisions without parents, in topological order.
    pub fn bases(&self) -> &[usize] {
        &self.bases
    }

    /// Parents (`down_revision`), in the order written.
    pub fn parents(&self, i: usize) -> &[usize] {
        &self.parents[i]
    }

    /// Resolved `depends_on` targets.
    pub fn dependencies(&self, i: usize) -> &[usize] {
        &self.deps[i]
    }

    /// Children (revisions naming `i` as `down_revision`), sorted by id.
    pub fn children(&self, i: usize) -> &[usize] {
        &self.children[i]
    }

    /// Revisions that depend on `i`, sorted by id.
    pub fn dependents(&self, i: usize) -> &[usize] {
        &self.dependents[i]
    }

    /// Labels carried by a revision (declared or inherited), sorted.
    pub fn labels(&self, i: usize) -> &[String] {
        &self.labels[i]
    }

    /// Revisions with more than one child, in topological order.
    pub fn branch_points(&self) -> Vec<usize> {
        self.order
            .iter()
            .copied()
            .filter(|&i| self.children[i].len() > 1)
            .collect()
    }

    /// Revisions with more than one parent, in topological order.
    pub fn merge_points(&self) -> Vec<usize> {
        self.order
            .iter()
            .copied()
            .filter(|&i| self.parents[i].len() > 1)
            .collect()
    }

    /// Ancestors of `from`, themselves included; through `depends_on` too
    /// when `with_deps`.
    pub fn ancestors(&self, from: &[usize], with_deps: bool) -> Vec<bool> {
        self.closure(from, |i| {
            let deps: &[usize] = if with_deps { &self.deps[i] } else { &[] };
            self.parents[i].iter().chain(deps)
        })
    }

    /// Descendants of `from`, themselves included; through dependents too
    /// when `with_deps`.
    pub fn descendants(&self, from: &[usize], with_deps: bool) -> Vec<bool> {
        self.closure(from, |i| {
            let deps: &[usize] = if with_deps { &self.dependents[i] } else { &[] };
            self.children[i].iter().chain(deps)
        })
    }

    fn closure<'a, I: Iterator<Item = &'a usize>>(
        &'a self,
        from: &[usize],
        next: impl Fn(usize) -> I,
    ) -> Vec<bool> {
        let mut seen = vec![false; self.revs.len()];
        let mut stack: Vec<usize> = from.to_vec();
        while let Some(i) = stack.pop() {
            if !std::mem::replace(&mut seen[i], true) {
                stack.extend(next(i).copied().filter(|&j| !seen[j]));
            }
        }
        seen
    }

    /// The members of a set in topological order.
    pub(crate) fn in_order(&self, set: &[bool]) -> Vec<usize> {
        self.order.iter().copied().filter(|&i| set[i]).collect()
    }

    /// The heads of a state: members of `set` with no descendant in `set`
    /// (through parents and dependencies), in topological order.
    pub fn tips(&self, set: &[bool]) -> Vec<usize> {
        self.order
            .iter()
            .copied()
            .filter(|&i| {
                set[i]
                    && !self.children[i]
                        .iter()
                        .chain(&self.dependents[i])
                        .any(|&c| set[c])
            })
            .collect()
    }

    /// For tests (the property tests walk random chains up and down with
    /// these): the targets and their ancestors (dependencies included) not
    /// yet applied, in this map's topological order. The engine's plans
    /// are `Resolver::upgrade_plan`'s, ordered by [`Self::alembic_order`].
    #[cfg(test)]
    pub fn upgrade_path(&self, current: &[usize], target: &[usize]) -> Vec<usize> {
        let need = self.ancestors(target, true);
        let have = self.ancestors(current, true);
        self.order
            .iter()
            .copied()
            .filter(|&i| need[i] && !have[i])
            .collect()
    }

    /// For tests: what leaves only the ancestors of `target` (empty: base)
    /// from `current` heads, newest first (the engine's plans are
    /// `Resolver::downgrade_plan`'s).
    #[cfg(test)]
    pub fn downgrade_path(&self, current: &[usize], target: &[usize]) -> Vec<usize> {
        let roots: Vec<usize> = if target.is_empty() {
            self.bases.clone()
        } else {
            let keep = self.ancestors(target, true);
            target
                .iter()
                .flat_map(|&t| self.children[t].iter().copied())
                .filter(|&c| !keep[c])
                .collect()
        };
        self.remove_path(current, &roots)
    }

    /// For tests: what removing `roots` and everything applied above them
    /// takes, newest first.
    #[cfg(test)]
    pub fn remove_path(&self, current: &[usize], roots: &[usize]) -> Vec<usize> {
        let drop = self.descendants(roots, true);
        let active = self.ancestors(current, true);
        self.order
            .iter()
            .rev()
            .copied()
            .filter(|&i| drop[i] && active[i])
            .collect()
    }

    /// Alembic's `_topological_sort`: the revisions of `todo`, newest
    /// first, walking down from `heads` one line at a time (in file order),
    /// so that the version table passes through the same rows as in
    /// Alembic; `None` where Alembic's sort fails (its `assert not todo`).
    pub fn alembic_order(&self, mut todo: Vec<bool>, heads: &[usize]) -> Option<Vec<usize>> {
        let mut left = todo.iter().filter(|t| **t).count();
        let mut current: Vec<usize> = heads.iter().copied().filter(|&h| todo[h]).collect();
        current.sort_unstable();
        current.dedup();
        let mut below: Vec<Vec<bool>> = current
            .iter()
            .map(|&h| self.ancestors(&[h], true))
            .collect();
        let mut out = Vec::with_capacity(left);
        let mut idx = 0;
        // Each pass either emits a revision, moves a line down, drops a
        // line, or switches to a line above: bounded by the graph's size.
        let mut budget = 4 * (self.len() + 1) * (self.len() + 1);
        while !current.is_empty() {
            budget = budget.saturating_sub(1);
            if budget == 0 {
                break;
            }
            let candidate = current[idx];
            if let Some(k) = below
                .iter()
                .enumerate()
                .position(|(k, b)| k != idx && b[candidate])
            {
                idx = k;
                continue;
            }
            if std::mem::replace(&mut todo[candidate], false) {
                out.push(candidate);
                left -= 1;
            }
            let down = crate::heads::normalized_down(self, candidate);
            let add: Vec<usize> = down
                .iter()
                .copied()
                .filter(|&r| todo[r] && !current.contains(&r))
                .collect();
            match add.split_first() {
                None => {
                    current.remove(idx);
                    below.remove(idx);
                    idx = idx.saturating_sub(1);
                }
                Some((&first, rest)) => {
                    current[idx] = first;
                    let plain = down.len() == 1 && self.parents(candidate).len() == 1;
                    if plain {
                        below[idx][candidate] = false;
                    } else {
                        below[idx] = self.ancestors(&[first], true);
                        for &r in rest {
                            current.push(r);
                            below.push(self.ancestors(&[r], true));
                        }
                    }
                }
            }
        }
        (left == 0).then_some(out)
    }

    /// The lowest revisions carrying `label`: what `label@base` removes.
    pub fn branch_roots(&self, label: &str) -> Vec<usize> {
        self.order
            .iter()
            .copied()
            .filter(|&i| {
                self.labels[i].iter().any(|l| l == label)
                    && !self.parents[i]
                        .iter()
                        .any(|&p| self.labels[p].iter().any(|l| l == label))
            })
            .collect()
    }
}

/// Binary search of an exact id in indexes sorted by id.
/// Revision indexes sorted by id; every duplicate id is a problem.
fn sorted_ids(revs: &[Revision], problems: &mut Vec<LoadError>) -> Vec<usize> {
    let mut by_id: Vec<usize> = (0..revs.len()).collect();
    by_id.sort_unstable_by(|&a, &b| revs[a].id.cmp(&revs[b].id).then(a.cmp(&b)));
    for pair in by_id.windows(2) {
        let (first, second) = (&revs[pair[0]], &revs[pair[1]]);
        if first.id == second.id {
            problems.push(
                GraphError::DuplicateRevision {
                    id: second.id.clone(),
                    first: first.path.display().to_string(),
                    second: second.path.display().to_string(),
                }
                .into(),
            );
        }
    }
    by_id
}

/// Each branch label and the revision declaring it; a label that is also a
/// revision id, or declared twice, is a problem.
fn declare_labels(
    revs: &[Revision],
    by_id: &[usize],
    problems: &mut Vec<LoadError>,
) -> HashMap<String, usize> {
    let mut label_decl: HashMap<String, usize> = HashMap::new();
    for (i, r) in revs.iter().enumerate() {
        for label in &r.branch_labels {
            if find(revs, by_id, label).is_some() {
                problems.push(
                    GraphError::LabelIsRevision {
                        label: label.clone(),
                        id: r.id.clone(),
                    }
                    .into(),
                );
            } else if let Some(&first) = label_decl.get(label) {
                problems.push(
                    GraphError::DuplicateLabel {
                        label: label.clone(),
                        first: revs[first].id.clone(),
                        second: r.id.clone(),
                    }
                    .into(),
                );
            } else {
                label_decl.insert(label.clone(), i);
            }
        }
    }
    label_decl
}

/// Each revision's parents and `depends_on` targets (ids or labels), by
/// index; a dependency that is also a parent, or repeated, counts once.
/// Every missing one is a problem.
fn resolve_edges(
    revs: &[Revision],
    by_id: &[usize],
    label_decl: &HashMap<String, usize>,
    problems: &mut Vec<LoadError>,
) -> (Lists, Lists) {
    let n = revs.len();
    let lookup = |id: &str| find(revs, by_id, id);
    let mut parents = Lists::with_capacity(n, n);
    let mut deps = Lists::with_capacity(n, 0);
    for (i, r) in revs.iter().enumerate() {
        for p in &r.down_revisions {
            match lookup(p) {
                Some(pi) => parents.push(pi),
                None => problems.push(
                    GraphError::MissingParent {
                        id: r.id.clone(),
                        file: r.locate(r.key_lines.down_revision),
                        parent: p.clone(),
                    }
                    .into(),
                ),
            }
        }
        parents.close();
        for d in &r.depends_on {
            match lookup(d).or_else(|| label_decl.get(d).copied()) {
                Some(di) if !parents[i].contains(&di) && !deps.open().contains(&di) => {
                    deps.push(di)
                }
                Some(_) => {}
                None => problems.push(
                    GraphError::MissingDependency {
                        id: r.id.clone(),
                        file: r.locate(r.key_lines.depends_on),
                        target: d.clone(),
                    }
                    .into(),
                ),
            }
        }
        deps.close();
    }
    (parents, deps)
}

/// Children and dependents of each revision, sorted by id.
fn reverse_edges(revs: &[Revision], parents: &Lists, deps: &Lists) -> (Lists, Lists) {
    let id_order = |a: &usize, b: &usize| revs[*a].id.cmp(&revs[*b].id);
    let mut children = parents.reversed();
    let mut dependents = deps.reversed();
    children.sort_each_by(id_order);
    dependents.sort_each_by(id_order);
    (children, dependents)
}

/// One list of revision indexes per revision, all in one vector: a graph
/// of a thousand revisions made a thousand allocations for each kind of
/// edge, a third of building it (callgrind).
#[derive(Debug)]
struct Lists {
    /// Where each revision's list starts in `items`, and one more entry:
    /// where the last one ends (or the list being written starts).
    starts: Vec<usize>,
    items: Vec<usize>,
}

impl Lists {
    /// No lists yet, room for `lists` of them holding `items` in all.
    fn with_capacity(lists: usize, items: usize) -> Lists {
        let mut starts = Vec::with_capacity(lists + 1);
        starts.push(0);
        Lists {
            starts,
            items: Vec::with_capacity(items),
        }
    }

    /// Adds `i` to the list being written.
    fn push(&mut self, i: usize) {
        self.items.push(i);
    }

    /// The list being written.
    fn open(&self) -> &[usize] {
        let start = self.starts.last().copied().unwrap_or(0);
        &self.items[start..]
    }

    /// Ends the list being written: the next push starts the next one.
    fn close(&mut self) {
        self.starts.push(self.items.len());
    }

    /// How many lists are closed.
    fn len(&self) -> usize {
        self.starts.len() - 1
    }

    /// The reverse edges: list `t` holds every `i` whose list holds `t`,
    /// in increasing `i`.
    fn reversed(&self) -> Lists {
        let n = self.len();
        let mut counts = vec![0usize; n + 1];
        for &t in &self.items {
            counts[t + 1] += 1;
        }
        for k in 0..n {
            counts[k + 1] += counts[k];
        }
        let starts = counts.clone();
        let mut items = vec![0; self.items.len()];
        for i in 0..n {
            for &t in &self[i] {
                items[counts[t]] = i;
                counts[t] += 1;
            }
        }
        Lists { starts, items }
    }

    /// Sorts each list (stably) by `order`.
    fn sort_each_by(&mut self, mut order: impl FnMut(&usize, &usize) -> std::cmp::Ordering) {
        for k in 0..self.len() {
            self.items[self.starts[k]..self.starts[k + 1]].sort_by(&mut order);
        }
    }
}

impl std::ops::Index<usize> for Lists {
    type Output = [usize];

    fn index(&self, i: usize) -> &[usize] {
        &self.items[self.starts[i]..self.starts[i + 1]]
    }
}

fn find(revs: &[Revision], by_id: &[usize], id: &str) -> Option<usize> {
    by_id
        .binary_search_by(|&i| revs[i].id.as_str().cmp(id))
        .ok()
        .map(|pos| by_id[pos])
}

/// Kahn's algorithm with a stack, so that after a revision its newly ready
/// children come next (a branch stays contiguous), smallest id first.
fn topological_order(
    revs: &[Revision],
    parents: &Lists,
    deps: &Lists,
    children: &Lists,
    dependents: &Lists,
) -> Vec<usize> {
    let n = revs.len();
    let mut waiting: Vec<usize> = (0..n).map(|i| parents[i].len() + deps[i].len()).collect();
    let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
    ready.sort_by(|a, b| revs[*b].id.cmp(&revs[*a].id));
    let mut order = Vec::with_capacity(n);
    let mut next: Vec<usize> = Vec::new();
    while let Some(i) = ready.pop() {
        order.push(i);
        next.clear();
        for &c in children[i].iter().chain(&dependents[i]) {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                next.push(c);
            }
        }
        next.sort_by(|a, b| revs[*b].id.cmp(&revs[*a].id));
        ready.extend_from_slice(&next);
    }
    order
}

/// A cycle among the revisions Kahn's algorithm could not order, as ids
/// from child to parent, the first repeated at the end.
fn find_cycle(revs: &[Revision], parents: &Lists, deps: &Lists, ordered: &[usize]) -> Vec<String> {
    let mut done = vec![false; revs.len()];
    for &i in ordered {
        done[i] = true;
    }
    let mut stuck: Vec<usize> = (0..revs.len()).filter(|&i| !done[i]).collect();
    stuck.sort_by(|a, b| revs[*a].id.cmp(&revs[*b].id));
    // Every unordered revision has an unordered parent or dependency, so
    // following them must come back to a revision already on the path.
    let mut path: Vec<usize> = Vec::new();
    let mut on_path = vec![usize::MAX; revs.len()];
    let mut cur = stuck[0];
    loop {
        if on_path[cur] != usize::MAX {
            let mut cycle: Vec<String> = path[on_path[cur]..]
                .iter()
                .map(|&i| revs[i].id.clone())
                .collect();
            cycle.push(revs[cur].id.clone());
            return cycle;
        }
        on_path[cur] = path.len();
        path.push(cur);
        match parents[cur]
            .iter()
            .chain(&deps[cur])
            .copied()
            .find(|&p| !done[p])
        {
            Some(p) => cur = p,
            None => return path.iter().map(|&i| revs[i].id.clone()).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ids, map, rev};

    fn errors(specs: &[&str]) -> Vec<String> {
        let err = RevisionMap::new(specs.iter().map(|s| rev(s)).collect())
            .expect_err("graph should be invalid");
        err.problems().iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn graph_errors_name_the_revisions() {
        assert_eq!(errors(&["a", "b <- zzz"]), ["revision `b` (versions/b.sql:3) has down_revision `zzz`, which is not in the chain"]);
        assert_eq!(errors(&["a", "b <- a {nope}"]), [
            "revision `b` (versions/b.sql:5) depends on `nope`, which is neither a revision nor a branch label"
        ]);
        assert_eq!(
            errors(&["a <- c", "b <- a", "c <- b", "d"]),
            ["the revision graph has a cycle: a -> c -> b -> a"]
        );
        assert_eq!(
            errors(&["a <- a"]),
            ["the revision graph has a cycle: a -> a"]
        );
        assert_eq!(
            errors(&["a [x]", "b <- a [x]"]),
            ["branch label `x` is declared by both `a` and `b`"]
        );
        assert_eq!(
            errors(&["a [b]", "b <- a"]),
            ["branch label `b` of revision `a` is also a revision id"]
        );
        // Several problems are all reported.
        assert_eq!(errors(&["a", "b <- x", "c <- y"]).len(), 2);
    }

    #[test]
    fn duplicate_ids_name_both_files() {
        let mut second = rev("a");
        second.path = "versions/sub/a_again.sql".into();
        let err = RevisionMap::new(vec![rev("a"), second]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "revision `a` is defined twice: in versions/a.sql and in versions/sub/a_again.sql"
        );
    }

    #[test]
    fn structure() {
        // a - b - c ----- e (merge) - f
        //      \- d [feat] /
        let m = map(&[
            "a",
            "b <- a",
            "c <- b",
            "d <- b [feat]",
            "e <- c,d",
            "f <- e",
            "x {a}",
        ]);
        assert_eq!(ids(&m, m.heads()), ["f", "x"]);
        assert_eq!(ids(&m, m.bases()), ["a", "x"]);
        assert_eq!(ids(&m, &m.branch_points()), ["b"]);
        assert_eq!(ids(&m, &m.merge_points()), ["e"]);
        // x depends on a but has no parent: it is a base of its own.
        let x = m.index_of("x").unwrap();
        assert!(m.parents(x).is_empty());
        assert_eq!(ids(&m, m.order()), ["a", "b", "c", "d", "e", "f", "x"]);
        // Labels reach descendants but not the trunk below the branch point.
        let labelled: Vec<&str> = m
            .order()
            .iter()
            .filter(|&&i| !m.labels(i).is_empty())
            .map(|&i| m.rev(i).id.as_str())
            .collect();
        assert_eq!(labelled, ["d", "e", "f"]);
        assert_eq!(ids(&m, &m.branch_roots("feat")), ["d"]);
    }

    #[test]
    fn labels_propagate_down_to_the_branch_point() {
        let m = map(&["a", "b <- a", "c <- b", "d <- c [feat]", "e <- a"]);
        let labelled: Vec<&str> = m
            .order()
            .iter()
            .filter(|&&i| !m.labels(i).is_empty())
            .map(|&i| m.rev(i).id.as_str())
            .collect();
        assert_eq!(labelled, ["b", "c", "d"]);
        assert_eq!(ids(&m, &m.branch_roots("feat")), ["b"]);
    }

    #[test]
    fn order_keeps_a_branch_together() {
        let m = map(&[
            "a",
            "b1 <- a",
            "c1 <- a",
            "b2 <- b1",
            "c2 <- c1",
            "m <- b2,c2",
        ]);
        assert_eq!(ids(&m, m.order()), ["a", "b1", "b2", "c1", "c2", "m"]);
    }

    #[test]
    fn paths_between_states() {
        let m = map(&[
            "a",
            "b <- a",
            "c <- b",
            "d <- b",
            "e <- c,d",
            "y",
            "z <- y {c}",
        ]);
        let i = |id: &str| m.index_of(id).unwrap();
        assert_eq!(
            ids(&m, &m.upgrade_path(&[], &[i("e")])),
            ["a", "b", "c", "d", "e"]
        );
        assert_eq!(ids(&m, &m.upgrade_path(&[i("c")], &[i("e")])), ["d", "e"]);
        // A dependency pulls in the other branch.
        assert_eq!(
            ids(&m, &m.upgrade_path(&[i("a")], &[i("z")])),
            ["b", "c", "y", "z"]
        );
        // Downgrade to b removes c and d and what depends on c, newest first.
        assert_eq!(
            ids(&m, &m.downgrade_path(&[i("e"), i("z")], &[i("b")])),
            ["z", "e", "d", "c"]
        );
        assert_eq!(
            ids(&m, &m.downgrade_path(&[i("e")], &[])),
            ["e", "d", "c", "b", "a"]
        );
        // Downgrading one branch leaves the other alone.
        assert_eq!(
            ids(&m, &m.downgrade_path(&[i("c"), i("d")], &[i("b")])),
            ["d", "c"]
        );
        assert_eq!(
            ids(&m, &m.downgrade_path(&[i("c"), i("d")], &[i("c")])),
            Vec::<String>::new()
        );
    }

    proptest::proptest! {
        /// Lists written one after the other read back as written, and
        /// their reverse is what pushing each edge onto its target's list
        /// gives, in increasing source.
        #[test]
        fn lists_in_one_vector_are_lists_of_vectors(
            lists in proptest::strategy::Strategy::prop_flat_map(1usize..30, |n| {
                proptest::collection::vec(proptest::collection::vec(0..n, 0..4), n)
            }),
        ) {
            let n = lists.len();
            let mut written = Lists::with_capacity(n, 0);
            for list in &lists {
                for &t in list {
                    written.push(t);
                }
                proptest::prop_assert_eq!(written.open(), list.as_slice());
                written.close();
            }
            proptest::prop_assert_eq!(written.len(), n);
            for (i, list) in lists.iter().enumerate() {
                proptest::prop_assert_eq!(&written[i], list.as_slice());
            }
            let mut expected = vec![Vec::new(); n];
            for (i, list) in lists.iter().enumerate() {
                for &t in list {
                    expected[t].push(i);
                }
            }
            let reversed = written.reversed();
            for (t, list) in expected.iter().enumerate() {
                proptest::prop_assert_eq!(&reversed[t], list.as_slice());
            }
        }
    }
}
