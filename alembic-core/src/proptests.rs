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

/// Fragments that reach deep into the parser and the splitter.
fn revision_like() -> impl Strategy<Value = String> {
    let fragment = prop::sample::select(vec![
        "-- revision: a1\n",
        "-- down_revision: None\n",
        "-- down_revision: ('a1', 'b2')\n",
        "-- branch_labels: x\n",
        "-- depends_on: a1\n",
        "-- transactional: false\n",
        "-- alembic:upgrade\n",
        "-- alembic:downgrade\n",
        "-- alembic:\n",
        "-- message\n",
        "--\n",
        "SELECT 1;\n",
        "'",
        "\"",
        "$$",
        "$a$",
        "/*",
        "*/",
        "--",
        ";",
        "E'\\'",
        "\r\n",
        "\r",
        "\u{feff}",
        "(",
        ")",
        "BEGIN ATOMIC",
        "CREATE FUNCTION f() ",
        "END",
        " ",
        "\n",
        "é",
        "key: value\n",
        "-- x: y\n",
    ]);
    prop::collection::vec(fragment, 0..40).prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn parsing_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(r) = crate::Revision::parse(std::path::Path::new("x.sql"), &bytes) {
            let _ = r.lex();
        }
    }

    #[test]
    fn parsing_never_panics_on_revision_like_text(text in revision_like()) {
        match crate::Revision::parse(std::path::Path::new("x.sql"), text.as_bytes()) {
            Ok(r) => {
                let _ = r.upgrade.checksum();
                if let Err(e) = r.lex() {
                    prop_assert!(e.line >= 1, "a statement error names a line: {}", e.located());
                }
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn splitting_keeps_every_statement_line_in_range(text in revision_like()) {
        let lines = text.split('\n').count();
        if let Ok(statements) = crate::split::split_statements(&text, 1) {
            for s in statements {
                prop_assert!(s.line >= 1 && s.line <= lines, "line {} of {}", s.line, lines);
                prop_assert!(!s.sql.is_empty());
            }
        }
    }
}
