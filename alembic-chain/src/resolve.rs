//! Revision identifiers (CONTRACT section 5) with Alembic's semantics:
//! ids and unambiguous prefixes, `head`, `heads`, `base`, `current`,
//! relative steps (`+2`, `-1`, `ae10+2`, `head-1`), branches (`label@head`,
//! `label@base`, `label@+1`, `rev@head`) and ranges (`a:b`).

use crate::errors::ResolveError;
use crate::graph::RevisionMap;

/// Prefixes match ids and labels of at least this many characters, as in
/// Alembic (whose message asks for four characters when nothing matches).
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

    /// One revision by id or label (the revision declaring it), else by a
    /// prefix of exactly one id or label, as Alembic's
    /// `_revision_for_ident` matches them: any prefix length, against ids
    /// and labels longer than three characters.
    pub fn revision(&self, text: &str) -> Result<usize, ResolveError> {
        if let Some(i) = self
            .map
            .index_of(text)
            .or_else(|| self.map.label_declared_by(text))
        {
            return Ok(i);
        }
        self.one_of(text, self.prefix_matches(text))
    }

    /// The revisions whose id, or a label they declare, starts with `text`
    /// (ids and labels of at least [`MIN_PREFIX`] characters), sorted.
    fn prefix_matches(&self, text: &str) -> Vec<usize> {
        let mut matches: Vec<usize> = self
            .map
            .with_prefix(text)
            .into_iter()
            .filter(|&i| self.map.rev(i).id.chars().count() >= MIN_PREFIX)
            .collect();
        for label in self.map.all_labels() {
            if label.chars().count() >= MIN_PREFIX && label.starts_with(text) {
                matches.extend(self.map.label_declared_by(label));
            }
        }
        matches.sort_unstable();
        matches.dedup();
        matches
    }

    /// The one revision a prefix matched, or Alembic's error.
    fn one_of(&self, text: &str, matches: Vec<usize>) -> Result<usize, ResolveError> {
        match matches.as_slice() {
            [] if text.chars().count() < MIN_PREFIX => {
                Err(ResolveError::PrefixTooShort(text.to_owned()))
            }
            [] => Err(ResolveError::NotFound(text.to_owned())),
            [one] => Ok(*one),
            many => Err(ResolveError::Ambiguous {
                prefix: text.to_owned(),
                candidates: self.ids(many),
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

    /// Alembic's "real" heads: revisions nothing builds on, neither as a
    /// parent nor through `depends_on` (what `heads` names in Alembic's
    /// `get_revisions`).
    fn real_heads(&self) -> Vec<usize> {
        (0..self.map.len())
            .filter(|&i| self.map.children(i).is_empty() && self.map.dependents(i).is_empty())
            .collect()
    }

    /// Alembic's `_revision_for_ident`: [`Resolver::revision`], and with a
    /// branch, a revision on that branch's lineage (a prefix matches only
    /// there).
    fn alembic_revision(&self, text: &str, branch: Option<&str>) -> Result<usize, ResolveError> {
        let Some(b) = branch else {
            return self.revision(text);
        };
        let (_, Lineage(on)) = self.lineage(b)?;
        let rev = match self
            .map
            .index_of(text)
            .or_else(|| self.map.label_declared_by(text))
        {
            Some(i) => i,
            None => {
                let mut matches = self.prefix_matches(text);
                matches.retain(|&i| on[i]);
                self.one_of(text, matches)?
            }
        };
        if !on[rev] {
            return Err(ResolveError::NotFound(format!("{b}@{text}")));
        }
        Ok(rev)
    }

    /// Alembic's `filter_for_lineage`: the `targets` sharing a lineage
    /// (ancestors or descendants, `depends_on` too with `with_deps`) with
    /// what `ident` names; all of them when it names nothing (`base`).
    pub(crate) fn alembic_filter_for_lineage(
        &self,
        targets: &[usize],
        ident: &str,
        with_deps: bool,
    ) -> Result<Vec<usize>, ResolveError> {
        if targets.is_empty() {
            return Ok(Vec::new());
        }
        let (branch, symbol) = split_branch(ident);
        let mut shares: Vec<usize> = Vec::new();
        if let Some(b) = branch {
            shares.push(self.revision(b)?);
        }
        match symbol {
            "heads" => shares.extend(match branch {
                Some(_) => self.alembic_lineage_heads(branch)?,
                None => self.real_heads(),
            }),
            "head" => shares.extend(self.alembic_current_head(branch, ident)?),
            "base" | "" => {}
            text => shares.push(self.revision(text)?),
        }
        if shares.is_empty() {
            return Ok(targets.to_vec());
        }
        Ok(targets
            .iter()
            .copied()
            .filter(|&t| {
                let up = self.map.descendants(&[t], with_deps);
                let down = self.map.ancestors(&[t], with_deps);
                shares.iter().any(|&s| up[s] || down[s])
            })
            .collect())
    }

    /// Heads (by parents only) on a branch's lineage.
    fn alembic_lineage_heads(&self, branch: Option<&str>) -> Result<Vec<usize>, ResolveError> {
        let heads = self.map.heads().to_vec();
        match branch {
            None => Ok(heads),
            Some(b) => self.alembic_filter_for_lineage(&heads, b, false),
        }
    }

    /// Alembic's `get_current_head`: the one head (on a branch's lineage).
    fn alembic_current_head(
        &self,
        branch: Option<&str>,
        ident: &str,
    ) -> Result<Option<usize>, ResolveError> {
        match self.alembic_lineage_heads(branch)?.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            many => Err(ResolveError::MultipleHeads {
                ident: ident.to_owned(),
                heads: self.ids(many),
            }),
        }
    }

    /// Alembic's `RevisionMap.get_revisions` for one identifier, which
    /// `stamp` uses: no current state, so `-N` walks down from every head
    /// of the chain (of a branch with `label@-N`) and `+N` names nothing.
    /// `None` is base.
    pub(crate) fn alembic_get_revisions(
        &self,
        ident: &str,
    ) -> Result<Vec<Option<usize>>, ResolveError> {
        self.alembic_got(ident)?
            .into_iter()
            .map(|got| match got {
                Got::Rev(r) => Ok(Some(r)),
                Got::Past { .. } => Ok(None),
                // Alembic's walk gives the string "base", which its stamp
                // then fails on (an assertion).
                Got::Base { from } => Err(ResolveError::StampRefused {
                    targets: ident.to_owned(),
                    reason: format!(
                        "it walks from {} down to exactly base, which Alembic fails on",
                        self.map.rev(from).id
                    ),
                }),
            })
            .collect()
    }

    /// [`Resolver::alembic_get_revisions`], with what each `-N` walk from a
    /// head ended on.
    fn alembic_got(&self, ident: &str) -> Result<Vec<Got>, ResolveError> {
        let (branch, symbol) = split_branch(ident);
        let resolved: Vec<String> = match symbol {
            "heads" => {
                let heads = match branch {
                    Some(_) => self.alembic_lineage_heads(branch)?,
                    None => self.real_heads(),
                };
                heads.iter().map(|&i| self.map.rev(i).id.clone()).collect()
            }
            "head" => self
                .alembic_current_head(branch, ident)?
                .map(|i| self.map.rev(i).id.clone())
                .into_iter()
                .collect(),
            "base" | "" => Vec::new(),
            text => vec![text.to_owned()],
        };
        if let [one] = resolved.as_slice() {
            if let Some(n) = python_int(one).filter(|n| *n < 0) {
                let mut heads = self.real_heads();
                if let Some(b) = branch {
                    heads.retain(|&h| self.map.labels(h).iter().any(|l| l == b));
                }
                return heads
                    .into_iter()
                    .map(|h| match self.alembic_walk(ident, Some(h), n, None)? {
                        Ok(Walked::Rev(r)) => Ok(Got::Rev(r)),
                        Err(taken) => Ok(Got::Past { taken }),
                        Ok(Walked::Base | Walked::Start) => Ok(Got::Base { from: h }),
                    })
                    .collect();
            }
        }
        resolved
            .iter()
            .map(|r| self.alembic_revision(r, branch).map(Got::Rev))
            .collect()
    }

    /// The revisions `show` lists: Alembic's `get_revisions` (`heads`
    /// leaves out heads another depends on, `-N` walks down from every
    /// head), and where that names nothing or fails, the rest of the
    /// grammar (`ae10+2`, `label@base`: its first revisions). Empty for
    /// base.
    pub fn show(&self, ident: &str) -> Result<Vec<usize>, ResolveError> {
        // The grammar first: `a@b@c` is no identifier, whatever it matches.
        self.parse(ident)?;
        let got = match self.alembic_got(ident) {
            Ok(got) => Some(got),
            Err(ResolveError::NotFound(_) | ResolveError::PrefixTooShort(_)) => None,
            Err(e) => return Err(e),
        };
        if let Some(got) = got {
            if let Some(taken) = got.iter().find_map(|g| match g {
                Got::Past { taken } => Some(*taken),
                _ => None,
            }) {
                let (_, symbol) = split_branch(ident);
                return Err(ResolveError::WalkedTooFar {
                    ident: ident.to_owned(),
                    steps: python_int(symbol).unwrap_or_default().unsigned_abs(),
                    taken,
                });
            }
            if !got.is_empty() {
                return Ok(got_revisions(&got));
            }
        }
        match self.resolve(ident)? {
            Target::Base => Ok(Vec::new()),
            Target::Revisions(revs) => Ok(revs),
            Target::BranchBase { roots, .. } => Ok(roots),
        }
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
        // Alembic's `_parse_upgrade_target`: "upgrading to current - n is
        // not valid" (nor `+0`); with a revision named (`ae10-1`) the walk
        // is from that revision instead.
        if matches!(relative_parts(ident), Some((_, None, steps)) if steps <= 0) {
            return Err(ResolveError::InvalidTarget {
                ident: ident.to_owned(),
                direction: "upgrade",
                current: self.ids(&current),
            });
        }
        let target = match self.resolve(ident)? {
            // `label@base` as an upgrade target is base, as in Alembic:
            // nothing to apply.
            Target::Base | Target::BranchBase { .. } => return Ok(Vec::new()),
            // Alembic upgrades `heads` to its "real" heads: the revisions
            // nothing builds on, not even through `depends_on` (the same
            // revisions are applied; the order, and so the rows a run passes
            // through, follow from them).
            Target::Revisions(_) if ident == "heads" => self.real_heads(),
            Target::Revisions(t) => t,
        };
        // Alembic walks the targets' and the rows' ancestors with a check
        // that none of them is below another (`_iterate_related_revisions`
        // with `check=True`), and refuses when one is.
        self.refuse_overlap(ident, &target, "requested revision", "upgrade")?;
        self.refuse_overlap(ident, &current, "row of the version table", "upgrade")?;
        let needed = self.map.ancestors(&target, true);
        let done = self.map.ancestors(&current, true);
        let set: Vec<bool> = needed.iter().zip(&done).map(|(n, d)| *n && !d).collect();
        let mut plan = self.alembic_order(ident, set, &target)?;
        plan.reverse();
        Ok(plan)
    }

    /// The revisions of `set`, newest first, in Alembic's order
    /// ([`RevisionMap::alembic_order`]); refused where Alembic's sort fails.
    fn alembic_order(
        &self,
        ident: &str,
        set: Vec<bool>,
        heads: &[usize],
    ) -> Result<Vec<usize>, ResolveError> {
        self.map
            .alembic_order(set, heads)
            .ok_or_else(|| ResolveError::InvalidTarget {
                ident: ident.to_owned(),
                direction: "migration",
                current: self.ids(heads),
            })
    }

    /// Alembic's overlap check: an error when one of `revs` is an ancestor
    /// (through `depends_on` too) of another.
    fn refuse_overlap(
        &self,
        ident: &str,
        revs: &[usize],
        what: &'static str,
        command: &'static str,
    ) -> Result<(), ResolveError> {
        for &r in revs {
            let below = self.map.ancestors(&[r], true);
            let under: Vec<usize> = revs
                .iter()
                .copied()
                .filter(|&o| o != r && below[o])
                .collect();
            if !under.is_empty() {
                return Err(ResolveError::Overlapping {
                    ident: ident.to_owned(),
                    command,
                    what,
                    revision: self.map.rev(r).id.clone(),
                    below: self.ids(&under),
                });
            }
        }
        Ok(())
    }

    /// What `downgrade <ident>` removes from the current heads, newest
    /// first: Alembic's `_collect_downgrade_revisions`, so that the version
    /// table ends as Python Alembic leaves it. Two refusals by design
    /// (CONTRACT section 8): a relative step without a branch from several
    /// current heads, and a `label@base` that would remove revisions
    /// outside that branch.
    pub fn downgrade_plan(&self, ident: &str) -> Result<Vec<usize>, ResolveError> {
        let current = self.current(ident)?.to_vec();
        let plan = self.alembic_downgrade(&current, ident)?;
        if let (Some(label), "base") = split_last_branch(ident) {
            self.refuse_outside_branch(ident, label, &current, &plan)?;
        }
        Ok(plan)
    }

    /// The revisions Alembic's downgrade to `ident` removes, newest first.
    fn alembic_downgrade(
        &self,
        current: &[usize],
        ident: &str,
    ) -> Result<Vec<usize>, ResolveError> {
        let (branch, target) = self.alembic_downgrade_target(current, ident)?;
        let roots: Vec<usize> = match target {
            None => (0..self.map.len())
                .filter(|&i| self.map.parents(i).is_empty())
                .collect(),
            Some(t) => self.map.children(t).to_vec(),
        };
        let roots = match &branch {
            Some(b) if roots.len() > 1 => {
                let below = self.map.ancestors(&[self.revision(b)?], false);
                let kept: Vec<usize> = roots.into_iter().filter(|&r| below[r]).collect();
                if kept.is_empty() {
                    return Err(self.invalid_downgrade(ident, current));
                }
                kept
            }
            _ => roots,
        };
        let drop = self.map.descendants(&roots, true);
        let active = self.map.ancestors(current, true);
        let set: Vec<bool> = drop.iter().zip(&active).map(|(d, a)| *d && *a).collect();
        let plan = self.alembic_order(ident, set, current)?;
        if let Some(t) = target {
            if plan.is_empty() && !current.contains(&t) {
                return Err(self.invalid_downgrade(ident, current));
            }
        }
        Ok(plan)
    }

    fn invalid_downgrade(&self, ident: &str, current: &[usize]) -> ResolveError {
        ResolveError::InvalidTarget {
            ident: ident.to_owned(),
            direction: "downgrade",
            current: self.ids(current),
        }
    }

    /// Alembic's `_parse_downgrade_target`: the branch the command names
    /// (for a relative step without one, the current head it starts from)
    /// and the target (`None`: base).
    fn alembic_downgrade_target(
        &self,
        current: &[usize],
        ident: &str,
    ) -> Result<(Option<String>, Option<usize>), ResolveError> {
        let too_far = |taken: u64, steps: u64| ResolveError::WalkedTooFar {
            ident: ident.to_owned(),
            steps,
            taken,
        };
        if let Some((branch, symbol, steps)) = relative_parts(ident) {
            if steps >= 0 {
                // A downgrade to the current revision plus N: Alembic
                // refuses it; no walk was tried.
                let Some(symbol) = symbol else {
                    return Err(ResolveError::InvalidTarget {
                        ident: ident.to_owned(),
                        direction: "downgrade",
                        current: self.ids(current),
                    });
                };
                let start = self.alembic_get_revision(symbol, ident)?;
                let end = self.alembic_walk(ident, start, steps, branch)?;
                return match end {
                    Ok(Walked::Rev(r)) => Ok((branch.map(str::to_owned), Some(r))),
                    Ok(Walked::Base | Walked::Start) => Ok((branch.map(str::to_owned), None)),
                    Err(taken) => Err(too_far(taken, steps.unsigned_abs())),
                };
            }
            let (branch, symbol): (Option<String>, String) = match (branch, symbol) {
                (branch, Some(symbol)) => (branch.map(str::to_owned), symbol.to_owned()),
                (Some(b), None) => {
                    let mut on_branch = self.alembic_filter_for_lineage(current, b, false)?;
                    if on_branch.is_empty() {
                        let all = self.all_current(current);
                        on_branch = self.alembic_filter_for_lineage(&all, b, false)?;
                    }
                    match on_branch.as_slice() {
                        [one] => (Some(b.to_owned()), self.map.rev(*one).id.clone()),
                        [] => return Err(too_far(0, steps.unsigned_abs())),
                        many => {
                            return Err(ResolveError::AmbiguousCurrent {
                                ident: ident.to_owned(),
                                heads: self.ids(many),
                            })
                        }
                    }
                }
                (None, None) => match current {
                    [] => return Err(too_far(0, steps.unsigned_abs())),
                    [one] => {
                        let id = self.map.rev(*one).id.clone();
                        (Some(id.clone()), id)
                    }
                    many => {
                        return Err(ResolveError::RelativeFromSeveralHeads {
                            ident: ident.to_owned(),
                            heads: self.ids(many),
                        })
                    }
                },
            };
            let start = match &branch {
                None => self.alembic_get_revision(&symbol, ident)?,
                Some(b) => self.alembic_get_revision(&format!("{b}@{symbol}"), ident)?,
            };
            return match self.alembic_walk(ident, start, steps, None)? {
                Ok(Walked::Rev(r)) => Ok((branch, Some(r))),
                Ok(Walked::Base | Walked::Start) => Ok((branch, None)),
                Err(taken) => Err(too_far(taken, steps.unsigned_abs())),
            };
        }
        let (branch, symbol) = split_last_branch(ident);
        Ok((
            branch.map(str::to_owned),
            self.alembic_get_revision(symbol, ident)?,
        ))
    }

    /// Alembic's `_get_all_current`: the rows and everything below them,
    /// reduced to the tips of each branch.
    fn all_current(&self, current: &[usize]) -> Vec<usize> {
        let below = self.map.ancestors(current, true);
        (0..self.map.len())
            .filter(|&i| below[i])
            .filter(|&i| {
                let above = self.map.descendants(&[i], false);
                !(0..self.map.len()).any(|j| j != i && below[j] && above[j])
            })
            .collect()
    }

    /// Alembic's `get_revision`: one revision, base (`None`), or an error
    /// when the identifier names several.
    fn alembic_get_revision(&self, text: &str, ident: &str) -> Result<Option<usize>, ResolveError> {
        let (branch, symbol) = split_branch(text);
        if python_int(symbol).is_some_and(|n| n < 0) {
            // Unlike `get_revisions`, `get_revision` looks `-N` up as an
            // id: no walk.
            return self.alembic_revision(symbol, branch).map(Some);
        }
        let found = self.alembic_get_revisions(text)?;
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(*one),
            _ => Err(ResolveError::MultipleHeads {
                ident: ident.to_owned(),
                heads: self.ids(&found.iter().flatten().copied().collect::<Vec<_>>()),
            }),
        }
    }

    /// Alembic's `_walk`: `steps` up (children, on a branch's lineage if
    /// one is named) or down (parents); a fork is ambiguous; past a base
    /// going down is base once, then nothing; past a head is nothing
    /// (`Err`: how many steps were taken before it).
    fn alembic_walk(
        &self,
        ident: &str,
        start: Option<usize>,
        steps: i64,
        branch: Option<&str>,
    ) -> Result<Result<Walked, u64>, ResolveError> {
        let mut at = match start {
            Some(r) => Walked::Rev(r),
            None => Walked::Start,
        };
        for taken in 0..steps.unsigned_abs() {
            let options: Vec<Walked> = if steps > 0 {
                let up: Vec<usize> = match at {
                    Walked::Start => self.map.bases().to_vec(),
                    Walked::Rev(r) => self.map.children(r).to_vec(),
                    Walked::Base => return Ok(Err(taken)),
                };
                let up = match branch {
                    Some(b) => self.alembic_filter_for_lineage(&up, b, false)?,
                    None => up,
                };
                up.into_iter().map(Walked::Rev).collect()
            } else {
                match at {
                    Walked::Base => Vec::new(),
                    Walked::Start => self.map.heads().iter().copied().map(Walked::Rev).collect(),
                    Walked::Rev(r) => match self.map.parents(r) {
                        [] => vec![Walked::Base],
                        parents => parents.iter().copied().map(Walked::Rev).collect(),
                    },
                }
            };
            at = match options.as_slice() {
                [] => return Ok(Err(taken)),
                [one] => *one,
                many => {
                    return Err(ResolveError::AmbiguousWalk {
                        ident: ident.to_owned(),
                        at: match at {
                            Walked::Rev(r) => self.map.rev(r).id.clone(),
                            _ => "base".to_owned(),
                        },
                        choices: many
                            .iter()
                            .filter_map(|w| match w {
                                Walked::Rev(r) => Some(self.map.rev(*r).id.clone()),
                                _ => None,
                            })
                            .collect(),
                    })
                }
            };
        }
        Ok(Ok(match at {
            Walked::Start => Walked::Base,
            other => other,
        }))
    }

    /// The documented refusal: `label@base` as a downgrade removes what
    /// Alembic removes only when all of it is on that branch.
    fn refuse_outside_branch(
        &self,
        ident: &str,
        label: &str,
        current: &[usize],
        plan: &[usize],
    ) -> Result<(), ResolveError> {
        let outside: Vec<usize> = plan
            .iter()
            .copied()
            .filter(|&i| !self.map.labels(i).iter().any(|l| l == label))
            .collect();
        if outside.is_empty() {
            return Ok(());
        }
        // What removes only the branch: `label@<the revision it forks from>`,
        // if Alembic's downgrade to that stays on the branch.
        let advice = self
            .map
            .branch_roots(label)
            .first()
            .and_then(|&root| match self.map.parents(root) {
                [fork] => Some(format!("{label}@{}", self.map.rev(*fork).id)),
                _ => None,
            })
            .filter(|instead| {
                self.alembic_downgrade(current, instead).is_ok_and(|p| {
                    !p.is_empty() && p.iter().all(|&i| self.map.labels(i).iter().any(|l| l == label))
                })
            })
            .map_or_else(
                || format!("downgrade the branch's revisions one at a time, newest first (`cargo alembic downgrade {label}@-1`)"),
                |instead| format!("to remove only the branch's revisions, run `cargo alembic downgrade {instead}`"),
            );
        Err(ResolveError::BranchBaseOutsideBranch {
            ident: ident.to_owned(),
            label: label.to_owned(),
            outside: self.ids(&outside),
            advice,
        })
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

    /// The revisions `history` lists, newest first: with a range
    /// `lower:upper` (either side may be empty), those Alembic's
    /// `walk_revisions` lists; without one, the whole chain. `current` on
    /// one side stands for the database's rows, as in Alembic (the
    /// resolver needs them, see [`history_reads_current`]); every other
    /// identifier is read without them (`-1` walks down from the heads).
    pub fn history(&self, range: Option<&str>) -> Result<Vec<usize>, ResolveError> {
        let spec = range.map(str::trim);
        let (lower, upper) = match spec {
            None => ("", ""),
            Some(spec) => spec.split_once(':').ok_or_else(|| ResolveError::Syntax {
                ident: spec.to_owned(),
                reason: "a range is written `lower:upper`".into(),
            })?,
        };
        let mut lower = End::Text(if lower.is_empty() { "base" } else { lower });
        let mut upper = End::Text(if upper.is_empty() { "heads" } else { upper });
        // The grammar first: `@` alone is no identifier, whatever it matches.
        for end in [&lower, &upper] {
            if let End::Text(text) = end {
                self.parse(text)?;
            }
        }
        // Alembic puts the rows in place of `current` on the upper side,
        // else on the lower one; none stands for `heads` above, `base`
        // below.
        if upper == End::Text("current") {
            let rows = self.current("current")?.to_vec();
            upper = if rows.is_empty() {
                End::Text("heads")
            } else {
                End::Rows(rows)
            };
        } else if lower == End::Text("current") {
            let rows = self.current("current")?.to_vec();
            lower = if rows.is_empty() {
                End::Text("base")
            } else {
                End::Rows(rows)
            };
        }
        let shown = |end: &End| match end {
            End::Text(t) => (*t).to_owned(),
            End::Rows(rows) => self.ids(rows).join(","),
        };
        let range = format!("{}:{}", shown(&lower), shown(&upper));
        self.alembic_range(&range, &lower, &upper)
    }

    /// Alembic's `_collect_upgrade_revisions` as `walk_revisions` calls it
    /// (inclusive, no implicit base, walks that may stop short), in
    /// Alembic's order.
    fn alembic_range(
        &self,
        range: &str,
        lower: &End,
        upper: &End,
    ) -> Result<Vec<usize>, ResolveError> {
        let Some(mut targets) = self.range_targets(lower, upper)? else {
            // The upper end walked down to base: nothing is below it.
            return Ok(Vec::new());
        };
        // `label@...` below: only targets on that branch.
        if let End::Text(text) = lower {
            if let Some((branch, _)) = text.split_once('@') {
                let rev = self.alembic_revision(branch, None)?;
                let label = match self.map.labels(rev) {
                    [one] if self.map.rev(rev).id == branch => one.as_str(),
                    _ => branch,
                };
                targets.retain(|&t| self.map.labels(t).iter().any(|l| l == label));
            }
        }
        self.refuse_overlap(range, &targets, "requested revision", "range")?;
        let required = self.map.ancestors(&targets, true);
        let not_below = || ResolveError::RangeNotAncestor(range.to_owned());
        let below: Vec<usize> = match lower {
            End::Rows(rows) => rows.clone(),
            End::Text(text) => {
                let got = self.alembic_got(text)?;
                if got.iter().any(|g| matches!(g, Got::Base { .. })) {
                    return Err(not_below());
                }
                if matches!(got.first(), Some(Got::Past { .. })) {
                    // A walk down past every base: from base.
                    Vec::new()
                } else {
                    got_revisions(&got)
                }
            }
        };
        if below.iter().any(|&r| !required[r]) {
            return Err(not_below());
        }
        self.refuse_overlap(range, &below, "requested revision", "range")?;
        let done = self.map.ancestors(&below, true);
        let mut needs: Vec<bool> = required.iter().zip(&done).map(|(r, d)| *r && !d).collect();
        for &r in &below {
            needs[r] = true;
        }
        if !below.is_empty() {
            let above = self.map.descendants(&below, false);
            for (n, a) in needs.iter_mut().zip(above) {
                *n &= a;
            }
        }
        // Where Alembic's sort fails (its assertion), the chain's order.
        Ok(self
            .map
            .alembic_order(needs.clone(), &targets)
            .unwrap_or_else(|| {
                let mut order = self.map.in_order(&needs);
                order.reverse();
                order
            }))
    }

    /// Alembic's `_parse_upgrade_target` for a range's upper end, the
    /// lower end standing for the current state; `None` when the upper end
    /// is base.
    fn range_targets(&self, lower: &End, upper: &End) -> Result<Option<Vec<usize>>, ResolveError> {
        let text = match upper {
            End::Rows(rows) => return Ok(Some(rows.clone())),
            End::Text(text) => *text,
        };
        let Some((branch, symbol, steps)) = relative_parts(text) else {
            let mut targets = Vec::new();
            for got in self.alembic_got(text)? {
                match got {
                    Got::Rev(r) => targets.push(r),
                    Got::Past { .. } | Got::Base { .. } => return Ok(None),
                }
            }
            return Ok(Some(targets));
        };
        let start = match (symbol, steps > 0) {
            // Alembic: "Relative revision -1 didn't produce 1 migrations".
            (None, false) => return Err(ResolveError::NeedsCurrent(text.to_owned())),
            (Some(symbol), true) => self.alembic_get_revision(symbol, text)?,
            (Some(symbol), false) => match branch {
                None => self.alembic_get_revision(symbol, text)?,
                Some(b) => self.alembic_get_revision(&format!("{b}@{symbol}"), text)?,
            },
            // `+N` from the lower end (Alembic's current state).
            (None, true) => {
                let from: Vec<Option<usize>> = match (branch, lower) {
                    (None, End::Rows(rows)) => rows.iter().copied().map(Some).collect(),
                    (None, End::Text(t)) => vec![self.alembic_get_revision(t, text)?],
                    (Some(b), lower) => {
                        let revs: Vec<usize> = match lower {
                            End::Rows(rows) => rows.clone(),
                            End::Text(t) => got_revisions(&self.alembic_got(t)?),
                        };
                        let mut on = self.alembic_filter_for_lineage(&revs, b, false)?;
                        if on.is_empty() {
                            // Back to where the branch leaves what is below.
                            let active = self.map.ancestors(&revs, true);
                            let all: Vec<usize> =
                                (0..self.map.len()).filter(|&i| active[i]).collect();
                            let mut set = vec![false; self.map.len()];
                            for i in self.alembic_filter_for_lineage(&all, b, false)? {
                                set[i] = true;
                            }
                            on = self.map.tips(&set);
                        }
                        if on.is_empty() {
                            vec![None]
                        } else {
                            on.into_iter().map(Some).collect()
                        }
                    }
                };
                match from.as_slice() {
                    [one] => *one,
                    _ => {
                        return Err(ResolveError::AmbiguousCurrent {
                            ident: text.to_owned(),
                            heads: self.ids(&from.iter().flatten().copied().collect::<Vec<_>>()),
                        })
                    }
                }
            }
        };
        let walk_branch = if steps > 0 { branch } else { None };
        // A walk that reaches the end stops there (Alembic's `no_overwalk`
        // is off for ranges).
        let end = match self.alembic_walk(text, start, steps, walk_branch)? {
            Ok(end) => end,
            Err(taken) => {
                let back = if steps > 0 {
                    taken as i64
                } else {
                    -(taken as i64)
                };
                self.alembic_walk(text, start, back, walk_branch)?
                    .map_err(|taken| ResolveError::WalkedTooFar {
                        ident: text.to_owned(),
                        steps: steps.unsigned_abs(),
                        taken,
                    })?
            }
        };
        Ok(match end {
            Walked::Rev(r) => Some(vec![r]),
            Walked::Base | Walked::Start => None,
        })
    }
}

/// One end of a `history` range.
#[derive(Debug, PartialEq, Eq)]
enum End<'a> {
    /// An identifier as written.
    Text(&'a str),
    /// The database's rows, for `current`.
    Rows(Vec<usize>),
}

/// What Alembic's `get_revisions` gives for one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Got {
    /// A revision.
    Rev(usize),
    /// A `-N` walk from a head went past every base (Python's `None`)
    /// after `taken` steps.
    Past {
        /// Steps taken before it.
        taken: u64,
    },
    /// A `-N` walk from the head `from` ended exactly on base (the string
    /// `"base"`).
    Base {
        /// The head walked from.
        from: usize,
    },
}

/// The revisions among what `get_revisions` gave.
fn got_revisions(got: &[Got]) -> Vec<usize> {
    got.iter()
        .filter_map(|g| match g {
            Got::Rev(r) => Some(*r),
            _ => None,
        })
        .collect()
}

/// Whether `history -r <range>` names `current` on a side, which Alembic
/// reads from the database.
pub fn history_reads_current(range: &str) -> bool {
    range
        .trim()
        .split_once(':')
        .is_some_and(|(lower, upper)| lower == "current" || upper == "current")
}

/// Where an Alembic walk is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Walked {
    /// Not started: below every base (walking up) or above every head
    /// (walking down).
    Start,
    /// At a revision.
    Rev(usize),
    /// Walked down past a base.
    Base,
}

/// Alembic's relative form `[branch@][symbol](+|-)N`, read as its regular
/// expression `(?:(.+?)@)?(\w+)?((?:\+|-)\d+)` reads it (anchored at the
/// start only).
fn relative_parts(ident: &str) -> Option<(Option<&str>, Option<&str>, i64)> {
    // The lazy `(.+?)@` takes the first `@` after which the rest matches.
    for (at, _) in ident.match_indices('@').filter(|(at, _)| *at > 0) {
        if let Some((symbol, n)) = relative_tail(&ident[at + 1..]) {
            return Some((Some(&ident[..at]), symbol, n));
        }
    }
    relative_tail(ident).map(|(symbol, n)| (None, symbol, n))
}

/// `(\w+)?((?:\+|-)\d+)` at the start of `text`.
fn relative_tail(text: &str) -> Option<(Option<&str>, i64)> {
    let word_end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    // `\w+` is greedy but gives back characters when the rest needs them:
    // the sign must follow it.
    let (symbol, rest) = text.split_at(word_end);
    let sign = rest.chars().next()?;
    if sign != '+' && sign != '-' {
        return None;
    }
    let digits: String = rest[1..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    if digits.is_empty() {
        return None;
    }
    let n: i64 = format!("{sign}{digits}").parse().ok()?;
    Some(((!symbol.is_empty()).then_some(symbol), n))
}

/// `label@symbol` split at the last `@`, as Alembic's `rpartition`.
fn split_last_branch(ident: &str) -> (Option<&str>, &str) {
    match ident.rsplit_once('@') {
        Some((b, rest)) if !b.is_empty() => (Some(b), rest),
        Some((_, rest)) => (None, rest),
        None => (None, ident),
    }
}

/// `label@rest` split as Alembic splits it: at the first `@`.
fn split_branch(ident: &str) -> (Option<&str>, &str) {
    match ident.split_once('@') {
        Some((b, rest)) => (Some(b), rest),
        None => (None, ident),
    }
}

/// What Python's `int()` reads from a string: an optional sign and
/// digits, surrounded by white space.
fn python_int(text: &str) -> Option<i64> {
    let t = text.trim();
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
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
            // Prefixes as in Alembic (checked against it): any length, of
            // ids and labels of four characters or more.
            ("a1b", "error: multiple revisions start with `a1b`: a1b2c3d4, a1b2ffff"),
            ("c", "c0ffee00"),
            ("fe", "d1"),
            ("so", "s1"),
            ("ne", "error: no such revision or branch `ne`; partial revision ids need at least four characters"),
            ("d", "error: no such revision or branch `d`; partial revision ids need at least four characters"),
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

    /// The orders asserted here are Python Alembic 1.20's, checked against
    /// it (`_upgrade_revs`/`_downgrade_revs` on this graph in file order).
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
        // Alembic's order: its topological sort walks down from the head
        // one line at a time, so e1 runs before d1.
        assert_eq!(
            plan(at(&[]).upgrade_plan("feat@head")),
            "a1b2c3d4 a1b2ffff c0ffee00 e1 d1 d2 m1 m2"
        );
        assert_eq!(plan(at(&["d2"]).upgrade_plan("heads")), "n1 n2 s1 e1 m1 m2");
        assert_eq!(plan(at(&["m2"]).upgrade_plan("d1")), "");
        assert_eq!(
            plan(at(&["m2", "s1"]).downgrade_plan("c0ffee00")),
            "m2 m1 d2 d1 s1 e1"
        );
        // Alembic unwinds `feat@base` from the tree's root, removing
        // revisions off the branch: refused by design, naming the command
        // that removes only the branch.
        assert_eq!(
            plan(at(&["m2", "s1"]).downgrade_plan("feat@base")),
            "error: `downgrade feat@base` would also remove s1, e1, c0ffee00, a1b2ffff, a1b2c3d4, which are not on branch `feat`"
        );
        match at(&["m2", "s1"]).downgrade_plan("feat@base") {
            Err(ResolveError::BranchBaseOutsideBranch { advice, .. }) => assert_eq!(
                advice,
                "to remove only the branch's revisions, run `cargo alembic downgrade feat@c0ffee00`"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            plan(at(&["m2", "s1"]).downgrade_plan("feat@c0ffee00")),
            "m2 m1 d2 d1"
        );
        // A label on a tree of its own: Alembic's result, the whole tree.
        assert_eq!(plan(at(&["m2", "n2"]).downgrade_plan("net@base")), "n2 n1");
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
        // An upgrade to the current revision minus N (or plus 0) is refused,
        // as Alembic refuses it (it was a silent no-op); from a named
        // revision it is a walk.
        for ident in ["-1", "+0", "-0", "feat@-1"] {
            assert_eq!(
                plan(at(&["m2"]).upgrade_plan(ident)),
                format!(
                    "error: `{ident}` is not a valid upgrade target from the current heads (m2)"
                )
            );
        }
        assert_eq!(
            plan(at(&[]).upgrade_plan("-1")),
            "error: `-1` is not a valid upgrade target from the current heads (base)"
        );
        assert_eq!(plan(at(&["m2"]).upgrade_plan("m2-1")), "");
        // Past base: how far the walk got (it said 0 steps whatever the
        // distance); base is a step, as in Alembic.
        let line = map(&["l1", "l2 <- l1", "l3 <- l2"]);
        let on = |cur: &str| Resolver::with_current(&line, vec![line.index_of(cur).unwrap()]);
        let plan_in = |m: &RevisionMap, r: Result<Vec<usize>, ResolveError>| match r {
            Ok(p) => ids(m, &p).join(" "),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(plan_in(&line, on("l3").downgrade_plan("-3")), "l3 l2 l1");
        assert_eq!(
            plan_in(&line, on("l3").downgrade_plan("-4")),
            "error: `-4` goes past the end of the chain after 3 of 4 steps"
        );
        assert_eq!(
            plan_in(&line, on("l2").downgrade_plan("l3-5")),
            "error: `l3-5` goes past the end of the chain after 3 of 5 steps"
        );
        assert_eq!(
            plan_in(&line, on("l2").downgrade_plan("+1")),
            "error: `+1` is not a valid downgrade target from the current heads (l2)"
        );
        assert_eq!(
            plan_in(&line, on("l2").downgrade_plan("l1+3")),
            "error: `l1+3` goes past the end of the chain after 2 of 3 steps"
        );
        assert_eq!(
            plan(at(&["m2"]).downgrade_plan("base")),
            "m2 m1 d2 d1 e1 c0ffee00 a1b2ffff a1b2c3d4"
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
        let h = |spec: &str| match r.history(Some(spec)) {
            Ok(p) => ids(&m, &p).join(" "),
            Err(e) => format!("error: {e}"),
        };
        // Alembic's order: down one line to where another joins it.
        assert_eq!(h("c0ffee00:feat@head"), "m2 m1 d2 d1 e1 c0ffee00");
        assert_eq!(
            h("d1:e1"),
            "error: `d1:e1` is not a range: its lower end is not below its upper end on one branch"
        );
        // `-N` walks down from the heads (of a branch); an upper end that
        // walks too far stops at the end, or is base (nothing below it).
        assert_eq!(h("feat@-1:feat@head"), "m2 m1");
        assert_eq!(h("d2:d2+5"), "m2 m1 d2");
        assert_eq!(h(":a1b2c3d4-1"), "");
        assert_eq!(
            h(":-1"),
            "error: `-1` is relative to the database's current revision, which this command does not read"
        );
        assert_eq!(
            h("current:"),
            "error: `current` is relative to the database's current revision, which this command does not read"
        );
        assert_eq!(h(":a1b2ffff"), "a1b2ffff a1b2c3d4");
        assert_eq!(h("net@base:"), "n2 n1");
        assert_eq!(h("d1:d1"), "d1");
        assert_eq!(
            h("d1"),
            "error: `d1` is not a revision identifier: a range is written `lower:upper`"
        );
        assert_eq!(
            h("@:"),
            "error: `@` is not a revision identifier: nothing before `@` in `@`"
        );
        assert_eq!(
            ids(&m, &r.history(None).unwrap()).join(" "),
            "m2 m1 d2 d1 s1 e1 n2 n1 c0ffee00 a1b2ffff a1b2c3d4"
        );
    }

    #[test]
    fn show_reads_identifiers_as_alembics_show_does() {
        let m = sample();
        let r = Resolver::new(&m);
        let s = |ident: &str| match r.show(ident) {
            Ok(p) => ids(&m, &p).join(" "),
            Err(e) => format!("error: {e}"),
        };
        // `-N` walks down from every head; `label@-N` from the branch's.
        assert_eq!(s("-1"), "m1 c0ffee00 n1");
        assert_eq!(s("feat@-1"), "m1");
        assert_eq!(
            s("-2"),
            "error: `-2` is ambiguous at `m1`, which leads to d2, e1"
        );
        assert_eq!(s("net@-2"), "");
        assert_eq!(
            s("net@-3"),
            "error: `net@-3` goes past the end of the chain after 2 of 3 steps"
        );
        assert_eq!(s("heads"), "m2 s1 n2");
        // Beyond Alembic's `show`: steps from a revision, a branch's base.
        assert_eq!(s("d1+1"), "d2");
        assert_eq!(s("other@base"), "e1");
        assert_eq!(s("base"), "");
    }

    #[test]
    fn history_ranges_with_current() {
        let m = sample();
        let at = |rows: &[&str]| rows.iter().map(|id| m.index_of(id).unwrap()).collect();
        let h = |current: Vec<usize>, spec: &str| match Resolver::with_current(&m, current)
            .history(Some(spec))
        {
            Ok(p) => ids(&m, &p).join(" "),
            Err(e) => format!("error: {e}"),
        };
        assert_eq!(
            h(at(&["d2"]), ":current"),
            "d2 d1 c0ffee00 a1b2ffff a1b2c3d4"
        );
        assert_eq!(h(at(&["d2"]), "current:"), "m2 m1 d2");
        assert_eq!(h(at(&["d2"]), "c0ffee00:current"), "d2 d1 c0ffee00");
        // Only `current` itself reads the rows: `-1` still walks from the heads.
        assert_eq!(h(at(&["d2"]), "feat@-1:"), "m2 m1");
        // Nothing applied: Alembic reads `:current` as `:heads`, and
        // `current:` as `base:`.
        let all = "m2 m1 d2 d1 s1 e1 n2 n1 c0ffee00 a1b2ffff a1b2c3d4";
        assert_eq!(h(Vec::new(), ":current"), all);
        assert_eq!(h(Vec::new(), "current:"), all);
    }
}
