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

/// The graph as specs (`id <- parents {deps}`), for failure messages.
fn specs(m: &RevisionMap) -> String {
    m.order()
        .iter()
        .map(|&i| {
            let r = m.rev(i);
            format!(
                "{} <- {} {{{}}}",
                r.id,
                r.down_revisions.join(","),
                r.depends_on.join(",")
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
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

proptest! {
    #[test]
    /// Alembic keeps one row per head; in rare dependency shapes it also
    /// keeps a row that another row already implies (its
    /// `_unmerge_to_revisions` only discounts other rows' ancestors), and so
    /// do we. What must always hold: the rows imply exactly what is applied,
    /// up to a step Alembic cannot record, which refuses the whole command.
    fn version_rows_imply_exactly_what_is_applied(m in dag(), target in any::<prop::sample::Index>()) {
        use crate::heads::{HeadState, VersionOp};
        let mut state = HeadState::default();
        let mut rows: std::collections::BTreeSet<String> = Default::default();
        let mut applied = vec![false; m.len()];
        let check = |ops: Vec<VersionOp>, rows: &mut std::collections::BTreeSet<String>| -> Result<(), TestCaseError> {
            for op in ops {
                match op {
                    VersionOp::Insert(id) => prop_assert!(rows.insert(id), "insert of an existing row"),
                    VersionOp::Delete(id) => prop_assert!(rows.remove(&id), "delete of a missing row"),
                    VersionOp::Update { from, to } => {
                        prop_assert!(rows.remove(&from), "update of a missing row");
                        prop_assert!(rows.insert(to), "update onto an existing row");
                    }
                }
            }
            Ok(())
        };
        let target = target.index(m.len());
        for step in m.upgrade_path(&[], &[target]) {
            let Ok(ops) = state.upgrade(&m, step) else { return Ok(()) };
            check(ops, &mut rows)?;
            applied[step] = true;
            let implied = m.ancestors(&state.heads(), true);
            prop_assert_eq!(&implied, &applied, "after upgrading {} in {}", m.rev(step).id, specs(&m));
            let state_rows: std::collections::BTreeSet<String> = state.heads().iter().map(|&i| m.rev(i).id.clone()).collect();
            prop_assert_eq!(&rows, &state_rows);
        }
        for step in m.downgrade_path(&m.tips(&applied), &[]) {
            let Ok(ops) = state.downgrade(&m, step) else { return Ok(()) };
            check(ops, &mut rows)?;
            applied[step] = false;
            let implied = m.ancestors(&state.heads(), true);
            prop_assert_eq!(&implied, &applied, "after downgrading {} in {}", m.rev(step).id, specs(&m));
            let state_rows: std::collections::BTreeSet<String> = state.heads().iter().map(|&i| m.rev(i).id.clone()).collect();
            prop_assert_eq!(&rows, &state_rows);
        }
        prop_assert!(rows.is_empty());
    }
}
