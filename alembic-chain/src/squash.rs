//! Squashes: a revision whose `replaces:` header lists a closed range of
//! older revisions (the squash point last). The replaced files may stay in
//! the versions folder; they are then kept aside, out of the graph, and a
//! database still inside the range is served by [`RevisionMap::expanded`],
//! the graph as it was before the squash. A database at the squash point
//! is at the squash ([`RevisionMap::state_index`]).

use std::collections::{HashMap, HashSet};

use crate::errors::{GraphError, LoadError};
use crate::graph::RevisionMap;
use crate::revision::Revision;

/// Splits revisions into the graph and the files some squash replaces, and
/// returns every replaced id.
pub(crate) fn set_aside(revs: Vec<Revision>) -> (Vec<Revision>, Vec<Revision>, HashSet<String>) {
    let listed: HashSet<String> = revs
        .iter()
        .flat_map(|r| r.replaces.iter().cloned())
        .collect();
    if listed.is_empty() {
        return (revs, Vec::new(), listed);
    }
    let (replaced, graph): (Vec<Revision>, Vec<Revision>) =
        revs.into_iter().partition(|r| listed.contains(&r.id));
    (graph, replaced, listed)
}

/// Follows `undo` (a squash id → its squash point) to a revision that is
/// not an undone squash.
fn follow<'a>(undo: &'a HashMap<String, String>, mut id: &'a str) -> &'a str {
    // A chain of squashes is finite: each one's point is older.
    for _ in 0..=undo.len() {
        match undo.get(id) {
            Some(point) => id = point,
            None => break,
        }
    }
    id
}

impl RevisionMap {
    /// The files squashes replace that are still in the versions folder.
    pub fn replaced(&self) -> &[Revision] {
        &self.replaced
    }

    /// The graph's revisions and the replaced files: what a chain holds.
    pub fn all_revisions(&self) -> impl Iterator<Item = &Revision> {
        self.revisions().iter().chain(&self.replaced)
    }

    /// True when a squash lists `id` in `replaces`.
    pub fn is_replaced(&self, id: &str) -> bool {
        self.replaced_ids.contains(id)
    }

    /// The squash (in the graph or kept aside) that lists `id` in
    /// `replaces`.
    pub fn replaced_by(&self, id: &str) -> Option<&Revision> {
        self.all_revisions()
            .find(|s| s.replaces.iter().any(|r| r == id))
    }

    /// The squashes of the graph, by index.
    pub fn squashes(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| !self.rev(i).replaces.is_empty())
            .collect()
    }

    /// The squash of the graph whose squash point is `id`: a database
    /// whose version table holds `id` is at that squash.
    pub fn squash_at(&self, id: &str) -> Option<usize> {
        (0..self.len()).find(|&i| self.rev(i).replaces.last().is_some_and(|p| p == id))
    }

    /// The revision a version-table row stands for: the revision itself,
    /// the squash whose squash point it is, or (in the graph before a
    /// squash) the squash point of the squash it names.
    pub fn state_index(&self, id: &str) -> Option<usize> {
        self.index_of(id)
            .or_else(|| self.squash_at(id))
            .or_else(|| self.index_of(follow(&self.undone, self.undone.get(id)?)))
    }

    /// In the graph before squashes: the revisions a squash the database
    /// ran stands for (the squash point and everything below it), given
    /// the ids that have a ledger row.
    /// Empty when no squash was undone (the graph of a chain's files).
    pub fn covered_by_squashes(&self, recorded: &dyn Fn(&str) -> bool) -> Vec<bool> {
        if self.undone.is_empty() {
            return Vec::new();
        }
        let points: Vec<usize> = self
            .undone
            .iter()
            .filter(|(squash, _)| recorded(squash))
            .filter_map(|(_, point)| self.index_of(follow(&self.undone, point)))
            .collect();
        self.ancestors(&points, true)
    }

    /// The version-table rows that stand for revision `i`: its id, and the
    /// id of its squash point (a squash) or of the squash it was replaced
    /// by (a squash point in the graph before the squash).
    pub fn version_rows(&self, i: usize) -> Vec<&str> {
        let rev = self.rev(i);
        let mut rows = vec![rev.id.as_str()];
        rows.extend(rev.replaces.last().map(String::as_str));
        rows.extend(
            self.undone
                .iter()
                .filter(|(_, point)| follow(&self.undone, point) == rev.id)
                .map(|(squash, _)| squash.as_str()),
        );
        rows
    }

    /// The graph before the squashes whose replaced files are all kept:
    /// those squashes are left out, their files are in, and what built on
    /// a squash builds on its squash point again. The map itself when no
    /// squash can be undone.
    pub fn expanded(&self) -> Result<&RevisionMap, LoadError> {
        if self.replaced.is_empty() {
            return Ok(self);
        }
        if let Some(map) = self.expanded.get() {
            return Ok(map);
        }
        let all: Vec<&Revision> = self.all_revisions().collect();
        let present: HashSet<&str> = all.iter().map(|r| r.id.as_str()).collect();
        let undo: HashMap<String, String> = all
            .iter()
            .filter(|r| {
                !r.replaces.is_empty() && r.replaces.iter().all(|id| present.contains(id.as_str()))
            })
            .filter_map(|r| Some((r.id.clone(), r.replaces.last()?.clone())))
            .collect();
        if undo.is_empty() {
            return Ok(self);
        }
        let repoint = |ids: &[String]| {
            let mut out: Vec<String> = Vec::with_capacity(ids.len());
            for id in ids {
                let id = follow(&undo, id).to_owned();
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            out
        };
        let revs: Vec<Revision> = all
            .iter()
            .filter(|r| !undo.contains_key(&r.id))
            .map(|&r| {
                let mut r = r.clone();
                r.down_revisions = repoint(&r.down_revisions);
                r.depends_on = repoint(&r.depends_on);
                r
            })
            .collect();
        let mut map = RevisionMap::new(revs)?;
        self.check_ranges(&map, &undo)?;
        map.undone = undo;
        Ok(self.expanded.get_or_init(|| Box::new(map)))
    }

    /// Every undone squash must have replaced a closed range: its squash
    /// point and the point's ancestors.
    fn check_ranges(
        &self,
        map: &RevisionMap,
        undo: &HashMap<String, String>,
    ) -> Result<(), LoadError> {
        let mut problems = Vec::new();
        for squash in self.all_revisions().filter(|r| undo.contains_key(&r.id)) {
            let point = follow(undo, &squash.id);
            let Some(top) = map.index_of(point) else {
                continue;
            };
            let below = map.ancestors(&[top], true);
            let outside: Vec<String> = squash
                .replaces
                .iter()
                .filter_map(|id| map.index_of(follow(undo, id)))
                .filter(|&i| !below[i])
                .map(|i| map.rev(i).id.clone())
                .collect();
            if !outside.is_empty() {
                problems.push(LoadError::from(GraphError::SquashRange {
                    id: squash.id.clone(),
                    file: squash.path.display().to_string(),
                    point: point.to_owned(),
                    outside,
                }));
            }
        }
        LoadError::from_many(problems).map_or(Ok(()), Err)
    }

    /// What a squash at `point` replaces: the point and all its ancestors
    /// (parents and dependencies), in order. A revision outside that builds
    /// on a revision inside other than the point would lose its parent:
    /// the range must be closed, and such a revision is named.
    pub fn squash_range(&self, point: usize) -> Result<Vec<usize>, GraphError> {
        let inside = self.ancestors(&[point], true);
        for j in self.order().iter().copied().filter(|&j| !inside[j]) {
            let cut = self
                .parents(j)
                .iter()
                .chain(self.dependencies(j))
                .find(|&&p| inside[p] && p != point);
            if let Some(&p) = cut {
                return Err(GraphError::SquashCutsBranch {
                    point: self.rev(point).id.clone(),
                    id: self.rev(j).id.clone(),
                    file: self.rev(j).path.display().to_string(),
                    inside: self.rev(p).id.clone(),
                });
            }
        }
        Ok(self.in_order(&inside))
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::rev;

    use super::*;

    fn squash(spec: &str, replaces: &[&str]) -> Revision {
        let mut r = rev(spec);
        r.replaces = replaces.iter().map(|s| (*s).to_owned()).collect();
        r
    }

    fn ids(map: &RevisionMap, v: &[usize]) -> Vec<String> {
        v.iter().map(|&i| map.rev(i).id.clone()).collect()
    }

    #[test]
    fn replaced_files_are_kept_aside_and_expand_back() {
        let map = RevisionMap::new(vec![
            rev("a"),
            rev("b <- a"),
            rev("c <- b"),
            squash("s", &["a", "b"]),
            rev("c2 <- s"),
        ])
        .unwrap_err();
        // `c` builds on `b` inside the range: the expanded graph is fine,
        // but the collapsed one misses `b`.
        assert!(map.to_string().contains("`b`"), "{map}");

        let map = RevisionMap::new(vec![
            rev("a"),
            rev("b <- a"),
            squash("s", &["a", "b"]),
            rev("c <- s"),
        ])
        .unwrap();
        assert_eq!(ids(&map, map.order()), ["s", "c"]);
        assert_eq!(map.replaced().len(), 2);
        assert!(map.is_replaced("a") && !map.is_replaced("c"));
        assert_eq!(map.state_index("b"), map.index_of("s"));
        let old = map.expanded().unwrap();
        assert_eq!(ids(old, old.order()), ["a", "b", "c"]);
        assert_eq!(old.rev(old.index_of("c").unwrap()).down_revisions, ["b"]);
    }

    #[test]
    fn a_pruned_squash_does_not_expand() {
        let map = RevisionMap::new(vec![squash("s", &["a", "b"]), rev("c <- s")]).unwrap();
        assert!(std::ptr::eq(map.expanded().unwrap(), &map));
        assert_eq!(map.state_index("b"), map.index_of("s"));
        assert_eq!(map.state_index("a"), None);
    }

    #[test]
    fn nested_squashes_expand_to_the_first_history() {
        let map = RevisionMap::new(vec![
            rev("a"),
            rev("b <- a"),
            squash("s1", &["a", "b"]),
            rev("c <- s1"),
            squash("s2", &["s1", "c"]),
            rev("d <- s2"),
        ])
        .unwrap();
        assert_eq!(ids(&map, map.order()), ["s2", "d"]);
        let old = map.expanded().unwrap();
        assert_eq!(ids(old, old.order()), ["a", "b", "c", "d"]);
    }

    #[test]
    fn a_squash_must_close_its_range() {
        let map = RevisionMap::new(vec![
            rev("a"),
            rev("b <- a"),
            rev("x <- a"),
            rev("c <- b"),
            rev("m <- c,x"),
        ])
        .unwrap();
        let c = map.index_of("c").unwrap();
        let err = map.squash_range(c).unwrap_err().to_string();
        assert!(err.contains("`x`") && err.contains("`a`"), "{err}");
        let m = map.index_of("m").unwrap();
        assert_eq!(
            ids(&map, &map.squash_range(m).unwrap()),
            ["a", "b", "c", "x", "m"]
        );
    }
}
