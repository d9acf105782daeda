//! Property tests on random revision graphs.

use proptest::prelude::*;

use crate::graph::RevisionMap;
use crate::resolve::{Resolver, Target};
use crate::testutil::map;

/// A random DAG: revision `i` takes up to two parents and one dependency
/// among the revisions before it, and sometimes a label.
fn dag() -> impl Strategy<Value = RevisionMap> {
    prop::collection::vec(
        (
            prop::collection::vec(any::<prop::sample::Index>(), 0..3),
            prop::option::of(any::<prop::sample::Index>()),
            prop::bool::weighted(0.1),
        ),
        1..40,
    )
    .prop_map(|nodes| {
        let specs: Vec<String> = nodes
            .iter()
            .enumerate()
            .map(|(i, (parents, dep, labelled))| {
                let mut ps: Vec<usize> = if i == 0 {
                    Vec::new()
                } else {
                    parents.iter().map(|p| p.index(i)).collect()
                };
                ps.sort_unstable();
                ps.dedup();
                let dep = dep
                    .filter(|_| i > 0)
                    .map(|d| d.index(i))
                    .filter(|d| !ps.contains(d));
                let mut spec = format!("r{i:03}");
                if *labelled {
                    spec.push_str(&format!(" [l{i}]"));
                }
                if let Some(d) = dep {
                    spec.push_str(&format!(" {{r{d:03}}}"));
                }
                if !ps.is_empty() {
                    spec.push_str(" <- ");
                    spec.push_str(
                        &ps.iter()
                            .map(|p| format!("r{p:03}"))
                            .collect::<Vec<_>>()
                            .join(","),
                    );
                }
                spec
            })
            .collect();
        let refs: Vec<&str> = specs.iter().map(String::as_str).collect();
        map(&refs)
    })
}

proptest! {
    #[test]
    fn order_respects_parents_and_dependencies(m in dag()) {
        prop_assert_eq!(m.order().len(), m.len());
        for i in 0..m.len() {
            for &p in m.parents(i).iter().chain(m.dependencies(i)) {
                prop_assert!(m.rank(p) < m.rank(i), "{} before {}", m.rev(p).id, m.rev(i).id);
            }
        }
    }

    #[test]
    fn heads_are_exactly_the_childless(m in dag()) {
        let mut expect: Vec<usize> = (0..m.len()).filter(|&i| m.children(i).is_empty()).collect();
        let mut heads = m.heads().to_vec();
        expect.sort_unstable();
        heads.sort_unstable();
        prop_assert_eq!(heads, expect);
        let mut bases = m.bases().to_vec();
        bases.sort_unstable();
        prop_assert_eq!(bases, (0..m.len()).filter(|&i| m.parents(i).is_empty()).collect::<Vec<_>>());
    }

    #[test]
    fn a_step_up_and_down_returns(m in dag()) {
        let r = Resolver::new(&m);
        for i in 0..m.len() {
            let id = &m.rev(i).id;
            let up = r.resolve(&format!("{id}+1"));
            match m.children(i) {
                [only] => {
                    prop_assert_eq!(&up, &Ok(Target::Revisions(vec![*only])));
                    let back = r.resolve(&format!("{}-1", m.rev(*only).id));
                    if m.parents(*only).len() == 1 {
                        prop_assert_eq!(back, Ok(Target::Revisions(vec![i])));
                    } else {
                        prop_assert!(back.is_err());
                    }
                }
                _ => prop_assert!(up.is_err()),
            }
        }
    }

    #[test]
    fn plans_apply_prerequisites_first(m in dag(), picks in prop::collection::vec(any::<prop::sample::Index>(), 0..4), target in any::<prop::sample::Index>()) {
        // A state: the ancestors of a few random revisions.
        let current: Vec<usize> = picks.iter().map(|p| p.index(m.len())).collect();
        let mut state = m.ancestors(&current, true);
        let target = target.index(m.len());
        for step in m.upgrade_path(&m.tips(&state), &[target]) {
            prop_assert!(!state[step]);
            for &p in m.parents(step).iter().chain(m.dependencies(step)) {
                prop_assert!(state[p], "{} before its prerequisite {}", m.rev(step).id, m.rev(p).id);
            }
            state[step] = true;
        }
        prop_assert!(m.ancestors(&[target], true).iter().zip(&state).all(|(need, have)| !need || *have));
        // Downgrading to base removes everything, dependents first.
        for step in m.downgrade_path(&m.tips(&state), &[]) {
            prop_assert!(state[step]);
            for &c in m.children(step).iter().chain(m.dependents(step)) {
                prop_assert!(!state[c], "{} removed before its dependent {}", m.rev(step).id, m.rev(c).id);
            }
            state[step] = false;
        }
        prop_assert!(state.iter().all(|s| !s));
    }
}
