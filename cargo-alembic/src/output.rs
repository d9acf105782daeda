//! How revisions are shown: Alembic's text formats (`heads`, `history`,
//! `branches`, `show`) and their JSON counterparts.

use std::io::{self, Write};

use alembic_core::RevisionMap;
use serde::Serialize;

/// Which decorations `one_line` adds, as Alembic's `_head_only` takes them.
#[derive(Clone, Copy, Default)]
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

/// A revision as JSON.
#[derive(Serialize)]
pub struct RevisionJson<'a> {
    revision: &'a str,
    down_revisions: &'a [String],
    depends_on: &'a [String],
    branch_labels: &'a [String],
    labels: &'a [String],
    children: Vec<&'a str>,
    message: Option<&'a str>,
    create_date: Option<&'a str>,
    path: String,
    is_head: bool,
    is_base: bool,
    is_branch_point: bool,
    is_merge_point: bool,
    transactional: bool,
    irreversible: bool,
    upgrade_checksum: &'a str,
    downgrade_checksum: Option<&'a str>,
}

/// Builds the JSON view of revision `i`.
pub fn json(map: &RevisionMap, i: usize) -> RevisionJson<'_> {
    let r = map.rev(i);
    RevisionJson {
        revision: &r.id,
        down_revisions: &r.down_revisions,
        depends_on: &r.depends_on,
        branch_labels: &r.branch_labels,
        labels: map.labels(i),
        children: map
            .children(i)
            .iter()
            .map(|&c| map.rev(c).id.as_str())
            .collect(),
        message: r.message.as_deref(),
        create_date: r.create_date.as_deref(),
        path: r.path.display().to_string(),
        is_head: map.children(i).is_empty(),
        is_base: r.is_base(),
        is_branch_point: map.children(i).len() > 1,
        is_merge_point: r.is_merge_point(),
        transactional: r.transactional,
        irreversible: r.downgrade.is_none(),
        upgrade_checksum: r.upgrade.checksum().as_str(),
        downgrade_checksum: r.downgrade.as_ref().map(|d| d.checksum().as_str()),
    }
}

/// Writes to stdout in one piece; a closed pipe (`| head`) is not an error.
pub fn emit(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Serialises a value as pretty JSON followed by a newline.
pub fn to_json<T: Serialize>(value: &T) -> String {
    // Serialising these plain structs cannot fail.
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}
