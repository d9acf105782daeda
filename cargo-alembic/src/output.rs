//! How revisions are shown: Alembic's text formats (`heads`, `history`,
//! `branches`, `show`) and their JSON counterparts.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};

pub use alembic_chain::display::{log_entry, one_line, LineStyle};
use alembic_chain::RevisionMap;
use serde::Serialize;

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

/// `-q`: nothing goes to stdout (errors and notes still go to stderr).
static QUIET: AtomicBool = AtomicBool::new(false);

/// Sets `-q` for the process.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether `-q` was given.
pub(crate) fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Writes to stdout in one piece; a closed pipe (`| head`) is not an error.
pub fn emit(text: &str) -> io::Result<()> {
    if quiet() {
        return Ok(());
    }
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// [`emit`] for a command: a failure to write is the command's error.
pub(crate) fn print(text: &str) -> Result<(), crate::errors::CliError> {
    emit(text).map_err(|source| crate::errors::CliError::Io {
        path: "stdout".into(),
        reason: source,
    })
}

/// Serialises a value as pretty JSON followed by a newline.
pub fn to_json<T: Serialize>(value: &T) -> String {
    // Serialising these plain structs cannot fail.
    let mut s = serde_json::to_string_pretty(value).unwrap_or_default();
    s.push('\n');
    s
}

/// GitHub's escaping for annotation messages and properties.
pub(crate) fn escape(text: &str, property: bool) -> String {
    let mut out = text
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    if property {
        out = out.replace(':', "%3A").replace(',', "%2C");
    }
    out
}

/// XML's escaping for text and attribute values.
pub(crate) fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
