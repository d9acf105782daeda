//! Revision identifiers (CONTRACT section 5) with Alembic's semantics:
//! ids and unambiguous prefixes, `head`, `heads`, `base`, `current`,
//! relative steps (`+2`, `-1`, `ae10+2`, `head-1`), branches (`label@head`,
//! `label@base`, `label@+1`, `rev@head`) and ranges (`a:b`).

use crate::errors::ResolveError;
use crate::graph::RevisionMap;

/// Partial ids must have at least this many characters, as in Alembic.
pub const MIN_PREFIX: usize = 4;

/// What an identifier names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// No revision: `base`, or a walk down past a base.
    Base,
    /// Revisions (several only for `heads`, `label@heads` or `current`).
    Revisions(Vec<usize>),
    /// `label@base`: the lowest revisions of the branch; a downgrade to it
    /// removes the branch and what was applied on top of it.
    BranchBase {
        /// The label.
        label: String,
        /// The branch's lowest revisions.
        roots: Vec<usize>,
    },
}

/// Resolves identifiers against a graph and, optionally, the database's
/// current heads (needed for `current`, `+N`, `-N` and `label@+N`).
pub struct Resolver<'m> {
    map: &'m RevisionMap,
    current: Option<Vec<usize>>,
}

/// An identifier split into its parts: `[branch@][symbol][+N|-N]`.
#[derive(Debug, PartialEq, Eq)]
struct Parts<'a> {
    branch: Option<&'a str>,
    symbol: Option<&'a str>,
    relative: Option<i64>,
}

/// The revisions related to an anchor: its ancestors and descendants.
struct Lineage(Vec<bool>);

impl<'m> Resolver<'m> {
    /// A resolver without a current state.
    pub fn new(map: &'m RevisionMap) -> Self {
        Resolver { map, current: None }
    }

    /// A resolver that knows the current heads (empty: the database is at base).
    pub fn with_current(map: &'m RevisionMap, current: Vec<usize>) -> Self {
        Resolver {
            map,
            current: Some(current),
        }
    }

    fn parse<'a>(&self, ident: &'a str) -> Result<Parts<'a>, ResolveError> {
        let syntax = |reason: &str| ResolveError::Syntax {
            ident: ident.to_owned(),
            reason: reason.to_owned(),
        };
        if ident.is_empty() {
            return Err(syntax("it is empty"));
        }
        let (branch, rest) = match ident.split_once('@') {
            Some((b, r)) if b.is_empty() => {
                return Err(syntax(&format!("nothing before `@` in `{b}@{r}`")))
            }
            Some((_, r)) if r.contains('@') => return Err(syntax("more than one `@`")),
            Some((b, r)) => (Some(b), r),
            None => (None, ident),
        };
        if rest.is_empty() {
            return Err(syntax("nothing after `@`"));
        }
        // An exact id or label wins over a relative reading, since ids may
        // contain `-` and digits (`table-name-2`).
        let exact = matches!(rest, "head" | "heads" | "base" | "current")
            || self.map.index_of(rest).is_some()
            || self.map.label_declared_by(rest).is_some();
        if !exact {
            if let Some(pos) = rest.rfind(['+', '-']) {
                let digits = &rest[pos + 1..];
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    let n: i64 = digits
                        .parse()
                        .map_err(|_| syntax("the step is too large"))?;
                    let n = if rest.as_bytes()[pos] == b'-' { -n } else { n };
                    let symbol = &rest[..pos];
                    return Ok(Parts {
                        branch,
                        symbol: (!symbol.is_empty()).then_some(symbol),
                        relative: Some(n),
                    });
                }
            }
        }
        Ok(Parts {
            branch,
            symbol: Some(rest),
            relative: None,
        })
    }

    fn current(&self, ident: &str) -> Result<&[usize], ResolveError> {
        self.current
            .as_deref()
            .ok_or_else(|| ResolveError::NeedsCurrent(ident.to_owned()))
    }

    /// One revision by id, unambiguous prefix (at least four characters)
    /// or label (the revision declaring it).
    pub fn revision(&self, text: &str) -> Result<usize, ResolveError> {
        if let Some(i) = self
            .map
            .index_of(text)
            .or_else(|| self.map.label_declared_by(text))
        {
            return Ok(i);
        }
        let matches = self.map.with_prefix(text);
        match matches.len() {
            0 => Err(ResolveError::NotFound(text.to_owned())),
            _ if text.chars().count() < MIN_PREFIX => {
                Err(ResolveError::PrefixTooShort(text.to_owned()))
            }
            1 => Ok(matches[0]),
            _ => Err(ResolveError::Ambiguous {
                prefix: text.to_owned(),
                candidates: matches
                    .iter()
                    .map(|&i| self.map.rev(i).id.clone())
                    .collect(),
            }),
        }
    }

    fn lineage(&self, branch: &str) -> Result<(usize, Lineage), ResolveError> {
        let anchor = self.revision(branch)?;
        let mut set = self.map.ancestors(&[anchor], false);
        for (i, d) in self
            .map
            .descendants(&[anchor], false)
            .into_iter()
            .enumerate()
        {
            set[i] |= d;
        }
        Ok((anchor, Lineage(set)))
    }

    fn ids(&self, revs: &[usize]) -> Vec<String> {
        revs.iter().map(|&i| self.map.rev(i).id.clone()).collect()
    }

    /// Resolves an identifier (no ranges).
    pub fn resolve(&self, ident: &str) -> Result<Target, ResolveError> {
        let parts = self.parse(ident)?;
        let lineage = parts.branch.map(|b| self.lineage(b)).transpose()?;
        let in_lineage = |revs: &[usize]| -> Vec<usize> {
            match &lineage {
                Some((_, l)) => revs.iter().copied().filter(|&i| l.0[i]).collect(),
                None => revs.to_vec(),
            }
        };
        let single_head = |label: &str| -> Result<Option<usize>, ResolveError> {
            let heads = in_lineage(self.map.heads());
            match heads.as_slice() {
                [] if self.map.is_empty() => Ok(None),
                [] => Err(ResolveError::NotFound(ident.to_owned())),
                [one] => Ok(Some(*one)),
                many => Err(ResolveError::MultipleHeads {
                    ident: label.to_owned(),
                    heads: self.ids(many),
                }),
            }
        };
        let Some(steps) = parts.relative else {
            let symbol = parts.symbol.unwrap_or_default();
            return match symbol {
                "heads" => Ok(Target::Revisions(in_lineage(self.map.heads()))),
                "head" => {
                    Ok(single_head(ident)?.map_or(Target::Base, |h| Target::Revisions(vec![h])))
                }
                "base" => match parts.branch {
                    None => Ok(Target::Base),
                    Some(label) => {
                        let roots = self.branch_roots(label)?;
                        Ok(Target::BranchBase {
                            label: label.to_owned(),
                            roots,
                        })
                    }
                },
                "current" => Ok(Target::Revisions(in_lineage(self.current(ident)?))),
                text => {
                    let rev = self.revision(text)?;
                    if let Some((_, l)) = &lineage {
                        if !l.0[rev] {
                            return Err(ResolveError::NotFound(ident.to_owned()));
                        }
                    }
                    Ok(Target::Revisions(vec![rev]))
                }
            };
        };
        let start: Option<usize> = match parts.symbol {
            Some("head") => single_head(ident)?,
            Some("base") => None,
            Some("heads") | Some("current") => {
                let from = if parts.symbol == Some("heads") {
                    in_lineage(self.map.heads())
                } else {
                    in_lineage(self.current(ident)?)
                };
                match from.as_slice() {
                    [] => None,
                    [one] => Some(*one),
                    many => {
                        return Err(ResolveError::AmbiguousCurrent {
                            ident: ident.to_owned(),
                            heads: self.ids(many),
                        })
                    }
                }
            }
            Some(text) => Some(self.revision(text)?),
            None => self.relative_start(ident, steps, lineage.as_ref().map(|(_, l)| l))?,
        };
        let end = self.walk(ident, start, steps, lineage.as_ref().map(|(_, l)| l))?;
        Ok(end.map_or(Target::Base, |i| Target::Revisions(vec![i])))
    }

    /// The lowest revisions carrying a label (or of the branch of a revision).
    fn branch_roots(&self, branch: &str) -> Result<Vec<usize>, ResolveError> {
        if self.map.label_declared_by(branch).is_some() {
            return Ok(self.map.branch_roots(branch));
        }
        // `rev@base`: the base below that revision.
        let rev = self.revision(branch)?;
        let below = self.map.ancestors(&[rev], false);
        Ok(self
            .map
            .bases()
            .iter()
            .copied()
            .filter(|&b| below[b])
            .collect())
    }

    /// Where `+N`/`-N` without a symbol starts: the current head, on the
    /// branch if one is named (Alembic backtracks to the branch's applied
    /// tip when the branch is not a current head).
    fn relative_start(
        &self,
        ident: &str,
        steps: i64,
        lineage: Option<&Lineage>,
    ) -> Result<Option<usize>, ResolveError> {
        let current = self.current(ident)?;
        let mut start: Vec<usize> = match lineage {
            Some(l) => current.iter().copied().filter(|&i| l.0[i]).collect(),
            None => current.to_vec(),
        };
        if start.is_empty() && steps > 0 {
            if let Some(l) = lineage {
                let mut active = self.map.ancestors(current, true);
                for (i, a) in active.iter_mut().enumerate() {
                    *a &= l.0[i];
                }
                start = self.map.tips(&active);
            }
        }
        match start.as_slice() {
            [] if steps < 0 => Err(ResolveError::WalkedTooFar {
                ident: ident.to_owned(),
                steps: steps.unsigned_abs(),
                taken: 0,
            }),
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            many if lineage.is_none() => Err(ResolveError::RelativeFromSeveralHeads {
                ident: ident.to_owned(),
                heads: self.ids(many),
            }),
            many => Err(ResolveError::AmbiguousCurrent {
                ident: ident.to_owned(),
                heads: self.ids(many),
            }),
        }
    }

    /// Walks `steps` up (children) or down (parents) from `start`
    /// (`None` is base). A fork is an error, as in Alembic.
    fn walk(
        &self,
        ident: &str,
        start: Option<usize>,
        steps: i64,
        lineage: Option<&Lineage>,
    ) -> Result<Option<usize>, ResolveError> {
        let mut at = start;
        for taken in 0..steps.unsigned_abs() {
            let too_far = || ResolveError::WalkedTooFar {
                ident: ident.to_owned(),
                steps: steps.unsigned_abs(),
                taken,
            };
            let options: Vec<usize> = if steps > 0 {
                let up = match at {
                    None => self.map.bases(),
                    Some(i) => self.map.children(i),
                };
                up.iter()
                    .copied()
                    .filter(|&c| lineage.is_none_or(|l| l.0[c]))
                    .collect()
            } else {
                match at {
                    None => return Err(too_far()),
                    Some(i) => self.map.parents(i).to_vec(),
                }
            };
            at = match options.as_slice() {
                [] if steps > 0 => return Err(too_far()),
                [] => None,
                [one] => Some(*one),
                many => {
                    let at_name =
                        at.map_or_else(|| "base".to_owned(), |i| self.map.rev(i).id.clone());
                    return Err(ResolveError::AmbiguousWalk {
                        ident: ident.to_owned(),
                        at: at_name,
                        choices: self.ids(many),
                    });
                }
            };
        }
        Ok(at)
    }

    /// Resolves an identifier that must name one revision or base
    /// (`None`): `heads` with several heads is an error.
    pub fn resolve_single(&self, ident: &str) -> Result<Option<usize>, ResolveError> {
        match self.resolve(ident)? {
            Target::Base => Ok(None),
            Target::Revisions(revs) => match revs.as_slice() {
                [] => Ok(None),
                [one] => Ok(Some(*one)),
                many => Err(ResolveError::MultipleHeads {
                    ident: ident.to_owned(),
                    heads: self.ids(many),
                }),
            },
            Target::BranchBase { roots, .. } => match roots.as_slice() {
                [one] => Ok(Some(*one)),
                _ => Err(ResolveError::NotFound(ident.to_owned())),
            },
        }
    }

    /// What `upgrade <ident>` runs from the current heads, in order.
    pub fn upgrade_plan(&self, ident: &str) -> Result<Vec<usize>, ResolveError> {
        let current = self.current.clone().unwrap_or_default();
        let target = match self.resolve(ident)? {
            Target::Base => return Ok(Vec::new()),
            Target::Revisions(t) => t,
            Target::BranchBase { roots, .. } => roots,
        };
        Ok(self.map.upgrade_path(&current, &target))
    }

    /// What `downgrade <ident>` removes from the current heads, newest first.
    pub fn downgrade_plan(&self, ident: &str) -> Result<Vec<usize>, ResolveError> {
        let current = self.current(ident)?.to_vec();
        match self.resolve(ident)? {
            Target::Base => Ok(self.map.downgrade_path(&current, &[])),
            Target::BranchBase { roots, .. } => Ok(self.map.remove_path(&current, &roots)),
            Target::Revisions(target) => {
                let active = self.map.ancestors(&current, true);
                if target.iter().any(|&t| !active[t]) {
                    return Err(ResolveError::InvalidTarget {
                        ident: ident.to_owned(),
                        direction: "downgrade",
                        current: self.ids(&current),
                    });
                }
                Ok(self.map.downgrade_path(&current, &target))
            }
        }
    }

    /// Splits a range `lower:upper`; either side may be empty (base, heads).
    pub fn range(&self, spec: &str) -> Result<(Target, Target), ResolveError> {
        let (lower, upper) = spec.split_once(':').ok_or_else(|| ResolveError::Syntax {
            ident: spec.to_owned(),
            reason: "a range is written `lower:upper`".into(),
        })?;
        let lower = if lower.is_empty() {
            Target::Base
        } else {
            self.resolve(lower)?
        };
        let upper = if upper.is_empty() {
            Target::Revisions(self.map.heads().to_vec())
        } else {
            self.resolve(upper)?
        };
        Ok((lower, upper))
    }

    /// The revisions of a `history -r` range, newest first: ancestors of the
    /// upper end that are descendants of the lower end, both included.
    pub fn history(&self, spec: &str) -> Result<Vec<usize>, ResolveError> {
        let (lower, upper) = self.range(spec)?;
        let upper = match upper {
            Target::Base => return Ok(Vec::new()),
            Target::Revisions(u) | Target::BranchBase { roots: u, .. } => u,
        };
        let mut set = self.map.ancestors(&upper, true);
        match lower {
            Target::Base => {}
            Target::Revisions(l) | Target::BranchBase { roots: l, .. } => {
                let above = self.map.descendants(&l, true);
                for (i, s) in set.iter_mut().enumerate() {
                    *s &= above[i];
                }
            }
        }
        let mut out = self.map.in_order(&set);
        out.reverse();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ids, map};

    /// a1b2c3d4 - a1b2ffff - c0ffee00 -+- d1 [feat] - d2 -+- m1 - m2
    ///                                 \- e1 [other] -----/
    ///                                  \- s1 [solo]
    /// plus an independent branch `n1 [net]` - `n2`.
    fn sample() -> RevisionMap {
        map(&[
            "a1b2c3d4",
            "a1b2ffff <- a1b2c3d4",
            "c0ffee00 <- a1b2ffff",
            "d1 <- c0ffee00 [feat]",
            "d2 <- d1",
            "e1 <- c0ffee00 [other]",
            "m1 <- d2,e1",
            "m2 <- m1",
            "s1 <- c0ffee00 [solo]",
            "n1 [net]",
            "n2 <- n1",
        ])
    }

    fn show(m: &RevisionMap, t: Result<Target, ResolveError>) -> String {
        match t {
            Ok(Target::Base) => "base".into(),
            Ok(Target::Revisions(r)) => ids(m, &r).join(" "),
            Ok(Target::BranchBase { label, roots }) => {
                format!("{label}@base={}", ids(m, &roots).join(" "))
            }
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn identifiers_without_a_current_state() {
        let m = sample();
        let r = Resolver::new(&m);
        let table: &[(&str, &str)] = &[
            ("a1b2c3d4", "a1b2c3d4"),
            ("c0ff", "c0ffee00"),
            ("a1b2", "error: multiple revisions start with `a1b2`: a1b2c3d4, a1b2ffff"),
            ("a1b", "error: no such revision or branch `a1b`; partial revision ids need at least four characters"),
            ("zzzz", "error: no such revision or branch `zzzz`"),
            ("heads", "m2 s1 n2"),
            (
                "head",
                "error: multiple heads are present for `head`: m2, s1, n2",
            ),
            ("base", "base"),
            ("feat@head", "m2"),
            ("net@head", "n2"),
            ("solo@head", "s1"),
            ("d1@head", "m2"),
            ("c0ffee00@head", "error: multiple heads are present for `c0ffee00@head`: m2, s1"),
            ("feat", "d1"),
            ("feat@base", "feat@base=d1"),
            ("net@base", "net@base=n1"),
            ("feat@d2", "d2"),
            ("feat@e1", "error: no such revision or branch `feat@e1`"),
            ("a1b2c3d4+2", "c0ffee00"),
            ("c0ffee00+1", "error: `c0ffee00+1` is ambiguous at `c0ffee00`, which leads to d1, e1, s1"),
            ("feat@c0ffee00+1", "d1"),
            ("m2-1", "m1"),
            ("m1-1", "error: `m1-1` is ambiguous at `m1`, which leads to d2, e1"),
            ("a1b2c3d4-1", "base"),
            ("a1b2c3d4-2", "error: `a1b2c3d4-2` goes past the end of the chain after 1 of 2 steps"),
            ("net@head-1", "n1"),
            ("solo@head-2", "a1b2ffff"),
            ("base+1", "error: `base+1` is ambiguous at `base`, which leads to a1b2c3d4, n1"),
            ("net@base+1", "n1"),
            ("m2+1", "error: `m2+1` goes past the end of the chain after 0 of 1 steps"),
            ("+1", "error: `+1` is relative to the database's current revision, which this command does not read"),
            ("current", "error: `current` is relative to the database's current revision, which this command does not read"),
            ("", "error: `` is not a revision identifier: it is empty"),
            ("a@b@c", "error: `a@b@c` is not a revision identifier: more than one `@`"),
            ("@head", "error: `@head` is not a revision identifier: nothing before `@` in `@head`"),
            ("nope@head", "error: no such revision or branch `nope`"),
        ];
        for (ident, expect) in table {
            assert_eq!(show(&m, r.resolve(ident)), *expect, "resolving {ident:?}");
        }
    }

    #[test]
    fn ids_with_dashes_and_digits_are_ids_first() {
        let m = map(&["table-1", "table-2 <- table-1", "table-3 <- table-2"]);
        let r = Resolver::new(&m);
        assert_eq!(show(&m, r.resolve("table-2")), "table-2");
        assert_eq!(show(&m, r.resolve("table-3-2")), "table-1");
        assert_eq!(show(&m, r.resolve("table-1+2")), "table-3");
    }

    #[test]
    fn identifiers_relative_to_the_current_state() {
        let m = sample();
        let at = |cur: &[&str]| {
            Resolver::with_current(&m, cur.iter().map(|c| m.index_of(c).unwrap()).collect())
        };
        assert_eq!(show(&m, at(&["a1b2ffff"]).resolve("+1")), "c0ffee00");
        assert_eq!(show(&m, at(&["a1b2ffff"]).resolve("-2")), "base");
        assert_eq!(
            show(&m, at(&[]).resolve("+1")),
            "error: `+1` is ambiguous at `base`, which leads to a1b2c3d4, n1"
        );
        assert_eq!(show(&m, at(&[]).resolve("net@+2")), "n2");
        assert_eq!(
            show(&m, at(&["d2", "e1"]).resolve("+1")),
            "error: `+1` is ambiguous: the database has several current heads (d2, e1)"
        );
        assert_eq!(show(&m, at(&["d2", "e1"]).resolve("feat@-1")), "d1");
        assert_eq!(show(&m, at(&["d2", "n1"]).resolve("net@+1")), "n2");
        // The branch is not a current head: start from its applied tip.
        assert_eq!(show(&m, at(&["c0ffee00"]).resolve("solo@+1")), "s1");
        assert_eq!(show(&m, at(&["m1", "n2"]).resolve("current")), "m1 n2");
        assert_eq!(show(&m, at(&["m1", "n2"]).resolve("feat@current")), "m1");
    }

    #[test]
    fn upgrade_and_downgrade_plans() {
        let m = sample();
        let at = |cur: &[&str]| {
            Resolver::with_current(&m, cur.iter().map(|c| m.index_of(c).unwrap()).collect())
        };
        let plan = |r: Result<Vec<usize>, ResolveError>| match r {
            Ok(p) => ids(&m, &p).join(" "),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(
            plan(at(&[]).upgrade_plan("feat@head")),
            "a1b2c3d4 a1b2ffff c0ffee00 d1 d2 e1 m1 m2"
        );
        assert_eq!(plan(at(&["d2"]).upgrade_plan("heads")), "e1 m1 m2 s1 n1 n2");
        assert_eq!(plan(at(&["m2"]).upgrade_plan("d1")), "");
        assert_eq!(
            plan(at(&["m2", "s1"]).downgrade_plan("c0ffee00")),
            "s1 m2 m1 e1 d2 d1"
        );
        assert_eq!(
            plan(at(&["m2", "s1"]).downgrade_plan("feat@base")),
            "m2 m1 d2 d1"
        );
        assert_eq!(
            plan(at(&["m2", "s1"]).downgrade_plan("-1")),
            "error: `-1` is ambiguous: the database has several current heads (m2, s1)"
        );
        assert_eq!(plan(at(&["m2"]).downgrade_plan("-1")), "m2");
        // As in Alembic, a relative walk through a merge point is ambiguous.
        assert_eq!(
            plan(at(&["m2"]).downgrade_plan("-2")),
            "error: `-2` is ambiguous at `m1`, which leads to d2, e1"
        );
        assert_eq!(
            plan(at(&["m2"]).downgrade_plan("base")),
            "m2 m1 e1 d2 d1 c0ffee00 a1b2ffff a1b2c3d4"
        );
        assert_eq!(
            plan(at(&["d1"]).downgrade_plan("s1")),
            "error: `s1` is not a valid downgrade target from the current heads (d1)"
        );
        assert_eq!(plan(Resolver::new(&m).downgrade_plan("base")), "error: `base` is relative to the database's current revision, which this command does not read");
    }

    #[test]
    fn history_ranges() {
        let m = sample();
        let r = Resolver::new(&m);
        let h = |spec: &str| match r.history(spec) {
            Ok(p) => ids(&m, &p).join(" "),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(h("c0ffee00:feat@head"), "m2 m1 e1 d2 d1 c0ffee00");
        assert_eq!(h(":a1b2ffff"), "a1b2ffff a1b2c3d4");
        assert_eq!(h("net@base:"), "n2 n1");
        assert_eq!(h("d1:d1"), "d1");
        assert_eq!(
            h("d1"),
            "error: `d1` is not a revision identifier: a range is written `lower:upper`"
        );
    }
}
