//! Builds revision graphs from compact specs for unit and property tests.

use std::path::PathBuf;

use crate::graph::RevisionMap;
use crate::revision::Revision;

/// One revision: `"id <- p1,p2 [labels] {deps}"`, e.g. `"c <- a,b [x] {d}"`.
pub(crate) fn rev(spec: &str) -> Revision {
    let take = |open: char, close: char, s: &str| -> (String, String) {
        match (s.find(open), s.find(close)) {
            (Some(a), Some(b)) => (
                s[a + 1..b].to_owned(),
                format!("{}{}", &s[..a], &s[b + 1..]),
            ),
            _ => (String::new(), s.to_owned()),
        }
    };
    let (labels, rest) = take('[', ']', spec);
    let (deps, rest) = take('{', '}', &rest);
    let (id, parents) = rest
        .split_once("<-")
        .map(|(a, b)| (a.trim().to_owned(), b.trim().to_owned()))
        .unwrap_or((rest.trim().to_owned(), String::new()));
    let list = |s: &str| {
        if s.trim().is_empty() {
            "None".to_owned()
        } else {
            s.trim().to_owned()
        }
    };
    let text = format!(
        "-- revision {id}\n-- revision: {id}\n-- down_revision: {}\n-- branch_labels: {}\n-- depends_on: {}\n-- alembic:upgrade\nSELECT 1;\n-- alembic:downgrade\nSELECT 2;\n",
        list(&parents),
        list(&labels),
        list(&deps)
    );
    Revision::parse(
        &PathBuf::from(format!("versions/{id}.sql")),
        text.as_bytes(),
    )
    .unwrap_or_else(|e| panic!("{spec}: {e}"))
}

/// A graph from specs; panics on graph errors.
pub(crate) fn map(specs: &[&str]) -> RevisionMap {
    RevisionMap::new(specs.iter().map(|s| rev(s)).collect()).unwrap_or_else(|e| {
        panic!(
            "{e}: {:?}",
            e.problems()
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
        )
    })
}

/// Ids of indexes.
pub(crate) fn ids(m: &RevisionMap, idx: &[usize]) -> Vec<String> {
    idx.iter().map(|&i| m.rev(i).id.clone()).collect()
}
