//! How revisions are shown as text, in Alembic's formats: the one-line form
//! of `heads`, `history` and `current`, and the verbose form of `show` and
//! `-v`. Shared by the CLI and the `migrate` command of embedded binaries.

use crate::graph::RevisionMap;

/// Which decorations `one_line` adds, as Alembic's `_head_only` takes them.
#[derive(Clone, Copy, Debug, Default)]
pub struct LineStyle {
    /// ` (label)` after the id.
    pub branches: bool,
    /// `, message` at the end.
    pub doc: bool,
    /// `parent -> ` before the id.
    pub parents: bool,
    /// ` (branchpoint)` and ` (mergepoint)`.
    pub tree: bool,
    /// ` (current)`: the database is at this revision.
    pub current: bool,
}

fn down_revisions(map: &RevisionMap, i: usize) -> String {
    let r = map.rev(i);
    if r.down_revisions.is_empty() {
        "<base>".to_owned()
    } else {
        r.down_revisions.join(", ")
    }
}

/// Alembic's one-line form: `1975ea83b712 -> ae1027a6acf (head), add a column`.
pub fn one_line(map: &RevisionMap, i: usize, style: LineStyle) -> String {
    let r = map.rev(i);
    let mut text = r.id.clone();
    if style.parents {
        text = if r.depends_on.is_empty() {
            format!("{} -> {text}", down_revisions(map, i))
        } else {
            format!(
                "{} ({}) -> {text}",
                down_revisions(map, i),
                r.depends_on.join(", ")
            )
        };
    }
    if style.branches && !map.labels(i).is_empty() {
        text.push_str(&format!(" ({})", map.labels(i).join(", ")));
    }
    if map.children(i).is_empty() {
        text.push_str(if map.dependents(i).is_empty() {
            " (head)"
        } else {
            " (effective head)"
        });
    }
    if style.current {
        text.push_str(" (current)");
    }
    if style.tree {
        if map.children(i).len() > 1 {
            text.push_str(" (branchpoint)");
        }
        if r.is_merge_point() {
            text.push_str(" (mergepoint)");
        }
    }
    if style.doc {
        text.push_str(&format!(", {}", r.message.as_deref().unwrap_or("")));
    }
    text
}

/// Alembic's verbose form (`show`, `-v`).
pub fn log_entry(map: &RevisionMap, i: usize) -> String {
    let r = map.rev(i);
    let mut out = format!("Rev: {}", r.id);
    if map.children(i).is_empty() {
        out.push_str(" (head)");
    }
    if map.children(i).len() > 1 {
        out.push_str(" (branchpoint)");
    }
    if r.is_merge_point() {
        out.push_str(" (mergepoint)");
    }
    out.push('\n');
    out.push_str(&format!(
        "{}: {}\n",
        if r.is_merge_point() {
            "Merges"
        } else {
            "Parent"
        },
        down_revisions(map, i)
    ));
    if !r.depends_on.is_empty() {
        out.push_str(&format!("Also depends on: {}\n", r.depends_on.join(", ")));
    }
    if map.children(i).len() > 1 {
        let ids: Vec<&str> = map
            .children(i)
            .iter()
            .map(|&c| map.rev(c).id.as_str())
            .collect();
        out.push_str(&format!("Branches into: {}\n", ids.join(", ")));
    }
    if !map.labels(i).is_empty() {
        out.push_str(&format!("Branch names: {}\n", map.labels(i).join(", ")));
    }
    if !r.transactional {
        out.push_str("Transactional: false\n");
    }
    if r.downgrade.is_none() {
        out.push_str("Irreversible: no downgrade section\n");
    }
    out.push_str(&format!("Path: {}\n", r.path.display()));
    out.push_str(&format!("Upgrade checksum: {}\n", r.upgrade.checksum()));
    if let Some(d) = &r.downgrade {
        out.push_str(&format!("Downgrade checksum: {}\n", d.checksum()));
    }
    out.push('\n');
    out.push_str(&format!("    {}\n\n", r.message.as_deref().unwrap_or("")));
    out.push_str(&format!("    Revision ID: {}\n", r.id));
    out.push_str(&format!("    Revises: {}\n", r.down_revisions.join(", ")));
    out.push_str(&format!(
        "    Create Date: {}\n",
        r.create_date.as_deref().unwrap_or("")
    ));
    out
}

/// `history`'s text, newest first as given: one line per revision
/// (` (current)` after the rows in `current`, when given), or the verbose
/// form.
pub fn listing(
    map: &RevisionMap,
    revs: &[usize],
    verbose: bool,
    style: LineStyle,
    current: Option<&[usize]>,
) -> String {
    let mut out = String::with_capacity(revs.len() * 64);
    for &i in revs {
        if verbose {
            out.push_str(&log_entry(map, i));
        } else {
            let style = LineStyle {
                current: current.is_some_and(|rows| rows.contains(&i)),
                ..style
            };
            out.push_str(&one_line(map, i, style));
        }
        out.push('\n');
    }
    out
}

/// The decorations `history` uses.
pub const HISTORY_STYLE: LineStyle = LineStyle {
    branches: true,
    doc: true,
    parents: true,
    tree: true,
    current: false,
};
