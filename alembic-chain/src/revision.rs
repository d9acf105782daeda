//! One revision file: its header (CONTRACT section 1), its upgrade and
//! downgrade sections, their checksums and statements.

// A ParseError carries the file's text to render a snippet; errors are the
// cold path, and a parsed Revision is larger than the error anyway.
#![allow(clippy::result_large_err)]

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use miette::{NamedSource, SourceSpan};

use crate::checksum::Checksum;
use crate::errors::{ParseError, ParseErrorKind, SplitErrorKind};
use crate::split::{split_statements, SplitError, Statement};

/// The header keys of CONTRACT section 1, in the order they are written.
pub const HEADER_KEYS: [&str; 8] = [
    "revision",
    "down_revision",
    "branch_labels",
    "depends_on",
    "create_date",
    "transactional",
    "allow",
    "replaces",
];

/// Alembic's `version_num` column is `VARCHAR(32)`.
pub const MAX_ID_LEN: usize = 32;

/// A parsed revision file.
#[derive(Clone, Debug)]
pub struct Revision {
    /// The revision id.
    pub id: String,
    /// Parent ids: empty for a base, several for a merge point.
    pub down_revisions: Vec<String>,
    /// Branch labels declared here.
    pub branch_labels: Vec<String>,
    /// Ordering dependencies (ids or labels) that are not parents.
    pub depends_on: Vec<String>,
    /// Free text written by `revision`.
    pub create_date: Option<String>,
    /// `false` runs the revision outside a transaction.
    pub transactional: bool,
    /// Lint warnings silenced for this revision (`allow: drop-table, ...`).
    pub allow: Vec<String>,
    /// The revisions a squash replaces, in the order they ran, the squash
    /// point last (`replaces:`, written by `squash`); empty otherwise.
    pub replaces: Vec<String>,
    /// The first comment line that is not `key: value`.
    pub message: Option<String>,
    /// The file, as found under the versions folder.
    pub path: PathBuf,
    /// 1-based lines of the header keys, for messages that point at them.
    pub key_lines: KeyLines,
    /// The upgrade section.
    pub upgrade: Section,
    /// The downgrade section; `None` makes the revision irreversible.
    pub downgrade: Option<Section>,
    /// The file's text with line endings made LF and a BOM removed.
    pub source: Arc<str>,
}

/// Where each header key was written (1-based lines; 0 when absent).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyLines {
    /// `revision:`
    pub revision: usize,
    /// `down_revision:`
    pub down_revision: usize,
    /// `branch_labels:`
    pub branch_labels: usize,
    /// `depends_on:`
    pub depends_on: usize,
}

/// An upgrade or downgrade section.
#[derive(Clone, Debug)]
pub struct Section {
    /// 1-based line of the `-- alembic:...` marker.
    pub marker_line: usize,
    /// Byte range of the section's text in [`Revision::source`].
    pub range: Range<usize>,
    pub(crate) source: Text,
    /// Computed on first use: listing a chain needs no checksum.
    pub(crate) checksum: OnceLock<Checksum>,
    /// Split on first use: listing a chain needs no statements.
    pub(crate) statements: OnceLock<Result<Vec<Statement>, SplitError>>,
    /// Statements split at compile time by `embed_migrations!`.
    pub(crate) embedded: Option<&'static [u8]>,
}

/// A section's file text: shared with its revision when read from disk,
/// the binary's own when compiled in (not copied at startup).
#[derive(Clone, Debug)]
pub(crate) enum Text {
    Shared(Arc<str>),
    Static(&'static str),
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Text::Shared(text) => text,
            Text::Static(text) => text,
        }
    }
}

impl Section {
    /// A section compiled into the binary: its text borrowed, its checksum
    /// as the macro computed it (computed again if malformed), its
    /// statements as packed places in the text (`None`: split on use).
    pub(crate) fn compiled_in(
        marker_line: usize,
        sql: &'static str,
        checksum: &'static str,
        statements: Option<&'static [u8]>,
    ) -> Section {
        Section {
            marker_line,
            range: 0..sql.len(),
            source: Text::Static(sql),
            checksum: Checksum::parse_static(checksum).map_or_else(OnceLock::new, OnceLock::from),
            statements: OnceLock::new(),
            embedded: statements,
        }
    }

    /// The section's text.
    pub fn sql(&self) -> &str {
        &self.source[self.range.clone()]
    }

    /// The checksum of CONTRACT section 2.
    pub fn checksum(&self) -> &Checksum {
        self.checksum
            .get_or_init(|| Checksum::of_section(self.sql()))
    }

    fn split(&self) -> &Result<Vec<Statement>, SplitError> {
        let first_line = self.marker_line + 1;
        self.statements.get_or_init(|| {
            let sql = self.sql();
            // Compiled in: each statement is a byte range of the text. A
            // range that does not fit (data written by hand) splits again.
            let embedded = self
                .embedded
                .and_then(|packed| crate::packed::statements(sql, packed));
            match embedded {
                Some(statements) => Ok(statements),
                None => split_statements(sql, first_line),
            }
        })
    }

    /// True when the section holds no statement (Alembic's `pass`); a
    /// section that does not lex is not empty.
    pub fn is_empty(&self) -> bool {
        matches!(self.split(), Ok(v) if v.is_empty())
    }
}

impl Revision {
    /// Parses a revision file's bytes. `path` is used in messages only.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Revision, ParseError> {
        Self::parse_owned(path.to_owned(), bytes)
    }

    /// [`Revision::parse`] taking the path by value, saving a copy per file.
    pub(crate) fn parse_owned(path: PathBuf, bytes: &[u8]) -> Result<Revision, ParseError> {
        let text = match std::str::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => {
                let offset = e.valid_up_to();
                let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
                let lossy = String::from_utf8_lossy(bytes).into_owned();
                let mut err =
                    Parser::error_in(&path, &lossy, line, ParseErrorKind::NotUtf8 { offset });
                err.span = Some(SourceSpan::from((offset.min(lossy.len()), 1)));
                err.label = "not UTF-8".into();
                err.help = Some("save the file as UTF-8".into());
                return Err(err);
            }
        };
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let source: Arc<str> = if text.contains('\r') {
            Arc::from(text.replace("\r\n", "\n").replace('\r', "\n"))
        } else {
            Arc::from(text)
        };
        Parser { path, source }.parse()
    }

    /// The statements of a section of this revision, split with psql's
    /// rules; an unterminated string, comment or dollar quote is an error
    /// naming its line.
    pub fn statements<'a>(&self, section: &'a Section) -> Result<&'a [Statement], ParseError> {
        match section.split() {
            Ok(v) => Ok(v),
            Err(e) => {
                let at = section.range.start + e.offset;
                let len = match &e.kind {
                    SplitErrorKind::UnterminatedDollar(tag) => tag.len(),
                    SplitErrorKind::Unterminated(_) => 1,
                };
                let mut err = Parser::error_in(
                    &self.path,
                    &self.source,
                    e.line,
                    ParseErrorKind::Statement(e.kind.clone()),
                );
                err.span = Some(SourceSpan::from((at, len)));
                err.label = "starts here, never closed".into();
                Err(err)
            }
        }
    }

    /// The upgrade statements.
    pub fn upgrade_statements(&self) -> Result<&[Statement], ParseError> {
        self.statements(&self.upgrade)
    }

    /// The downgrade statements (`None`: irreversible).
    pub fn downgrade_statements(&self) -> Result<Option<&[Statement]>, ParseError> {
        self.downgrade
            .as_ref()
            .map(|d| self.statements(d))
            .transpose()
    }

    /// Splits every section, so that a lexing error surfaces now.
    pub fn lex(&self) -> Result<(), ParseError> {
        self.upgrade_statements()?;
        self.downgrade_statements()?;
        Ok(())
    }

    /// A base has no parent.
    pub fn is_base(&self) -> bool {
        self.down_revisions.is_empty()
    }

    /// A merge point has several parents.
    pub fn is_merge_point(&self) -> bool {
        self.down_revisions.len() > 1
    }

    /// `path:line` of a header key, for graph errors.
    pub fn locate(&self, line: usize) -> String {
        if line == 0 {
            self.path.display().to_string()
        } else {
            format!("{}:{}", self.path.display(), line)
        }
    }

    /// Renders a header in the canonical form written by `revision`.
    pub fn render_header(h: &HeaderFields<'_>) -> String {
        let list = |v: &[String]| {
            if v.is_empty() {
                "None".to_owned()
            } else {
                v.join(", ")
            }
        };
        let mut out = String::new();
        out.push_str(&format!(
            "-- {}\n--\n",
            h.message.lines().next().unwrap_or("").trim()
        ));
        out.push_str(&format!("-- revision: {}\n", h.id));
        out.push_str(&format!("-- down_revision: {}\n", list(h.down_revisions)));
        out.push_str(&format!("-- branch_labels: {}\n", list(h.branch_labels)));
        out.push_str(&format!("-- depends_on: {}\n", list(h.depends_on)));
        out.push_str(&format!("-- create_date: {}\n", h.create_date));
        if !h.transactional {
            out.push_str("-- transactional: false\n");
        }
        if !h.replaces.is_empty() {
            out.push_str(&format!("-- replaces: {}\n", list(h.replaces)));
        }
        out
    }
}

/// The fields of a header to render, see [`Revision::render_header`].
pub struct HeaderFields<'a> {
    /// The message (first line used).
    pub message: &'a str,
    /// The id.
    pub id: &'a str,
    /// Parents.
    pub down_revisions: &'a [String],
    /// Labels.
    pub branch_labels: &'a [String],
    /// Dependencies.
    pub depends_on: &'a [String],
    /// Creation date text.
    pub create_date: &'a str,
    /// Transactional flag.
    pub transactional: bool,
    /// What a squash replaces (empty otherwise).
    pub replaces: &'a [String],
}

/// Checks an id or label: letters, digits, `_`, `-`, at most 32 characters.
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("an id cannot be empty".into());
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Err(format!(
            "`{id}` contains {c:?}; ids use letters, digits, `_` and `-`"
        ));
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!(
            "`{id}` is {} characters long; alembic_version.version_num holds at most {MAX_ID_LEN}",
            id.len()
        ));
    }
    Ok(())
}

/// The common case of a (trimmed) list value, one bare id: no splitting,
/// no quotes. `None` when it is not one: empty, `None`, or written the
/// Python way.
fn bare_id(v: &str) -> Option<Result<String, String>> {
    let bare = !v.is_empty()
        && v != "None"
        && !v
            .bytes()
            .any(|b| matches!(b, b',' | b'(' | b'[' | b'\'' | b'"'));
    bare.then(|| validate_id(v).map(|()| v.to_owned()))
}

/// Parses a list value written bare (`a, b`) or the Python way (`'a'`,
/// `('a', 'b')`, `['a']`, `None`).
pub fn parse_list(raw: &str) -> Result<Vec<String>, String> {
    let v = raw.trim_ascii();
    if v.is_empty() || v == "None" {
        return Ok(Vec::new());
    }
    if let Some(id) = bare_id(v) {
        return Ok(vec![id?]);
    }
    let inner = match (v.chars().next(), v.chars().last()) {
        (Some('('), Some(')')) | (Some('['), Some(']')) => &v[1..v.len() - 1],
        (Some('(' | '['), _) => return Err(format!("`{v}` opens a bracket that is not closed")),
        _ => v,
    };
    let mut out = Vec::new();
    for item in inner.split(',') {
        let item = item.trim_ascii();
        if item.is_empty() {
            continue; // a trailing comma, as in the Python tuple `('a',)`
        }
        let unquoted = match (item.chars().next(), item.chars().last()) {
            (Some(q @ ('\'' | '"')), Some(end)) if item.len() >= 2 && q == end => {
                &item[1..item.len() - 1]
            }
            (Some('\'' | '"'), _) | (_, Some('\'' | '"')) => {
                return Err(format!("unbalanced quotes in `{item}`"))
            }
            _ => item,
        };
        if unquoted == "None" {
            return Err("`None` cannot be one item of a list".into());
        }
        validate_id(unquoted)?;
        out.push(unquoted.to_owned());
    }
    Ok(out)
}

struct Parser {
    path: PathBuf,
    source: Arc<str>,
}

/// A marker line `-- alembic:<name>`.
fn marker(line: &str) -> Option<&str> {
    // Fast path: most lines of a section are SQL, not comments.
    let rest = line.trim_ascii().strip_prefix("--")?.trim_ascii_start();
    let name = rest.strip_prefix("alembic:")?;
    Some(name.trim_ascii())
}

/// A header line `-- key: value` whose key is a lowercase identifier.
fn key_value(comment: &str) -> Option<(&str, &str)> {
    let (key, value) = comment.split_once(':')?;
    let key = key.trim_end();
    let ident = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !key.as_bytes()[0].is_ascii_digit();
    ident.then_some((key, value.trim_ascii()))
}

struct Lines<'s> {
    text: &'s str,
    offset: usize,
    number: usize,
}

impl<'s> Iterator for Lines<'s> {
    /// (1-based number, byte offset of the line start, the line without `\n`)
    type Item = (usize, usize, &'s str);
    fn next(&mut self) -> Option<Self::Item> {
        if self.offset > self.text.len() || (self.offset == self.text.len() && self.number > 0) {
            return None;
        }
        let rest = &self.text[self.offset..];
        let len = rest.bytes().position(|b| b == b'\n').unwrap_or(rest.len());
        let item = (self.number + 1, self.offset, &rest[..len]);
        self.offset += len + 1;
        self.number += 1;
        Some(item)
    }
}

/// Header values by key, as (key, line, value, byte offset of the value),
/// in a fixed array: no allocation per file.
#[derive(Default)]
struct RawHeader<'s> {
    values: [Option<(&'static str, usize, &'s str, usize)>; HEADER_KEYS.len()],
    message: Option<&'s str>,
    /// A header key was read (comments after it are not the message).
    seen_key: bool,
}

impl<'s> RawHeader<'s> {
    fn get(&self, key: &str) -> Option<&(&'static str, usize, &'s str, usize)> {
        let slot = HEADER_KEYS.iter().position(|k| *k == key)?;
        self.values[slot].as_ref()
    }
}

/// Where the (at most two) section markers are: (name, marker line, marker
/// start offset, body start offset).
#[derive(Default)]
struct Markers {
    found: [(&'static str, usize, usize, usize); 2],
    len: usize,
}

impl Markers {
    fn get(&self) -> &[(&'static str, usize, usize, usize)] {
        &self.found[..self.len]
    }

    fn push(&mut self, marker: (&'static str, usize, usize, usize)) {
        // A third marker is always a duplicate, reported before this.
        if self.len < self.found.len() {
            self.found[self.len] = marker;
            self.len += 1;
        }
    }
}

/// A `transactional:` value: `true`, `false` (any case, quoted or not),
/// or empty for `true`.
fn transactional(value: &str) -> Option<bool> {
    match value
        .trim_matches(|c| c == '\'' || c == '"')
        .to_ascii_lowercase()
        .as_str()
    {
        "true" | "" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

impl Parser {
    fn error_in(path: &Path, source: &str, line: usize, kind: ParseErrorKind) -> ParseError {
        ParseError {
            path: path.to_owned(),
            line,
            kind,
            source_code: NamedSource::new(path.display().to_string(), source.to_owned()),
            span: None,
            label: String::new(),
            help: None,
        }
    }

    /// An error pointing at `len` bytes from byte `at` on `line`.
    fn error(
        &self,
        line: usize,
        at: usize,
        len: usize,
        label: &str,
        kind: ParseErrorKind,
    ) -> ParseError {
        let mut e = Self::error_in(&self.path, &self.source, line, kind);
        e.span = Some(SourceSpan::from((at, len)));
        e.label = label.to_owned();
        e
    }

    fn parse(mut self) -> Result<Revision, ParseError> {
        let source = Arc::clone(&self.source);
        let text: &str = &source;
        let mut header = RawHeader::default();
        let mut markers = Markers::default();
        for (number, start, line) in (Lines {
            text,
            offset: 0,
            number: 0,
        }) {
            if let Some(name) = marker(line) {
                self.marker_line(name, number, start, line, text.len(), &mut markers)?;
            } else if markers.len == 0 {
                // Section text is read by range in `build`.
                self.header_line(number, start, line, &mut header)?;
            }
        }
        self.build(header, markers)
    }

    /// A `-- alembic:<name>` line: an upgrade or downgrade marker, each at
    /// most once.
    fn marker_line(
        &self,
        name: &str,
        number: usize,
        start: usize,
        line: &str,
        text_len: usize,
        markers: &mut Markers,
    ) -> Result<(), ParseError> {
        let known = match name {
            "upgrade" => "upgrade",
            "downgrade" => "downgrade",
            other => {
                let at = start + line.find("alembic:").unwrap_or(0);
                let mut e = self.error(
                    number,
                    at,
                    line.len() - (at - start),
                    "unknown marker",
                    ParseErrorKind::UnknownSection(other.to_owned()),
                );
                e.help =
                    Some("sections are `-- alembic:upgrade` and `-- alembic:downgrade`".into());
                return Err(e);
            }
        };
        if let Some(first) = markers.get().iter().find(|m| m.0 == known) {
            return Err(self.error(
                number,
                start,
                line.len(),
                "second marker",
                ParseErrorKind::DuplicateSection {
                    name: known,
                    first_line: first.1,
                },
            ));
        }
        markers.push((known, number, start, (start + line.len() + 1).min(text_len)));
        Ok(())
    }

    /// A line before the first marker: blank, a header key, or the message
    /// (a comment before the first key); SQL here is an error.
    fn header_line<'s>(
        &self,
        number: usize,
        start: usize,
        line: &'s str,
        header: &mut RawHeader<'s>,
    ) -> Result<(), ParseError> {
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            return Ok(());
        }
        let Some(comment) = trimmed.strip_prefix("--") else {
            let mut e = self.error(
                number,
                start + (line.len() - line.trim_start().len()),
                trimmed.len(),
                "outside any section",
                ParseErrorKind::SqlOutsideSection,
            );
            e.help =
                Some("put SQL after a `-- alembic:upgrade` or `-- alembic:downgrade` line".into());
            return Err(e);
        };
        let comment = comment.trim_ascii();
        if comment.is_empty() {
            return Ok(());
        }
        match key_value(comment) {
            Some((key, value)) if HEADER_KEYS.contains(&key) => {
                let slot = HEADER_KEYS.iter().position(|k| *k == key).unwrap_or(0);
                let key = HEADER_KEYS[slot];
                if let Some(first) = header.get(key) {
                    return Err(self.error(
                        number,
                        start,
                        line.len(),
                        "repeated here",
                        ParseErrorKind::DuplicateKey {
                            key: key.to_owned(),
                            first_line: first.1,
                        },
                    ));
                }
                // `value` is a slice of `line`: its offset is pointer arithmetic.
                let column = start + (value.as_ptr() as usize - line.as_ptr() as usize);
                header.values[slot] = Some((key, number, value, column));
                header.seen_key = true;
            }
            Some((key, _)) if header.seen_key => {
                let at = start + line.find(key).unwrap_or(0);
                let mut e = self.error(
                    number,
                    at,
                    key.len(),
                    "unknown key",
                    ParseErrorKind::UnknownKey {
                        key: key.to_owned(),
                        allowed: HEADER_KEYS.join(", "),
                    },
                );
                e.help = Some(
                    "a comment line after the header keys must not look like `key: value`".into(),
                );
                return Err(e);
            }
            _ => {
                if header.message.is_none() && !header.seen_key {
                    header.message = Some(comment);
                }
            }
        }
        Ok(())
    }

    fn build(&mut self, header: RawHeader<'_>, markers: Markers) -> Result<Revision, ParseError> {
        let missing = |key| self.missing_key(key);
        let bad =
            |entry: &(&'static str, usize, &str, usize), reason| self.bad_value(entry, reason);
        let rev_entry = header.get("revision").ok_or_else(|| missing("revision"))?;
        let value = rev_entry.2.trim_ascii();
        let id = match bare_id(value) {
            // One id, as nearly every file has it: no list to make.
            Some(id) => id.map_err(|r| bad(rev_entry, r))?,
            None => {
                let mut ids = parse_list(value).map_err(|r| bad(rev_entry, r))?;
                match ids.len() {
                    1 => ids.pop().unwrap_or_default(),
                    0 => return Err(bad(rev_entry, "a revision needs an id".into())),
                    _ => return Err(bad(rev_entry, "a revision has exactly one id".into())),
                }
            }
        };
        let down_entry = header
            .get("down_revision")
            .ok_or_else(|| missing("down_revision"))?;
        let down_revisions = parse_list(down_entry.2).map_err(|r| bad(down_entry, r))?;
        if let Some(dup) = down_revisions
            .iter()
            .enumerate()
            .find(|(i, d)| down_revisions[..*i].contains(d))
        {
            return Err(bad(down_entry, format!("`{}` is listed twice", dup.1)));
        }
        let list_of = |key: &str| -> Result<(Vec<String>, usize), ParseError> {
            match header.get(key) {
                Some(entry) => Ok((parse_list(entry.2).map_err(|r| bad(entry, r))?, entry.1)),
                None => Ok((Vec::new(), 0)),
            }
        };
        let (branch_labels, labels_line) = list_of("branch_labels")?;
        let (depends_on, depends_line) = list_of("depends_on")?;
        let transactional = match header.get("transactional") {
            None => true,
            Some(entry) => transactional(entry.2).ok_or_else(|| {
                bad(
                    entry,
                    format!("`{}` is neither `true` nor `false`", entry.2),
                )
            })?,
        };
        let (allow, _) = list_of("allow")?;
        let (replaces, _) = list_of("replaces")?;
        if replaces.contains(&id) {
            let entry = header.get("replaces").ok_or_else(|| missing("replaces"))?;
            return Err(bad(
                entry,
                format!("a squash cannot replace itself (`{id}`)"),
            ));
        }
        let create_date = header
            .get("create_date")
            .map(|e| e.2.to_owned())
            .filter(|d| !d.is_empty());

        let upgrade = self
            .section(&markers, "upgrade")
            .ok_or_else(|| self.no_upgrade(&markers))?;
        let downgrade = self.section(&markers, "downgrade");
        Ok(Revision {
            id,
            down_revisions,
            branch_labels,
            depends_on,
            create_date,
            transactional,
            allow,
            replaces,
            message: header.message.map(str::to_owned),
            path: std::mem::take(&mut self.path),
            key_lines: KeyLines {
                revision: rev_entry.1,
                down_revision: down_entry.1,
                branch_labels: labels_line,
                depends_on: depends_line,
            },
            upgrade,
            downgrade,
            source: Arc::clone(&self.source),
        })
    }

    /// A required header key is missing.
    fn missing_key(&self, key: &'static str) -> ParseError {
        let mut e = Self::error_in(&self.path, &self.source, 1, ParseErrorKind::MissingKey(key));
        e.span = Some(SourceSpan::from((0, 0)));
        e.label = "header starts here".into();
        let example = if key == "revision" {
            "1975ea83b712"
        } else {
            "None"
        };
        e.help = Some(format!(
            "add a `-- {key}: ...` line to the header, e.g. `-- {key}: {example}`"
        ));
        e
    }

    /// A header value that does not parse, pointed at.
    fn bad_value(&self, entry: &(&'static str, usize, &str, usize), reason: String) -> ParseError {
        self.error(
            entry.1,
            entry.3,
            entry.2.len().max(1),
            "this value",
            ParseErrorKind::BadValue {
                key: entry.0,
                reason,
            },
        )
    }

    /// The section after marker `name`, up to the next marker or the end.
    fn section(&self, markers: &Markers, name: &str) -> Option<Section> {
        let found = markers.get();
        let pos = found.iter().position(|m| m.0 == name)?;
        let (_, marker_line, _, body_start) = found[pos];
        let end = found.get(pos + 1).map_or(self.source.len(), |m| m.2);
        Some(Section {
            marker_line,
            range: body_start.min(end)..end,
            source: Text::Shared(Arc::clone(&self.source)),
            checksum: OnceLock::new(),
            statements: OnceLock::new(),
            embedded: None,
        })
    }

    /// No upgrade section: point at the downgrade marker if there is one,
    /// else at the last line.
    fn no_upgrade(&self, markers: &Markers) -> ParseError {
        let text: &str = &self.source;
        let (line, at, len, label) = match markers.get().first() {
            Some(&(_, line, start, body)) => (
                line,
                start,
                body - start - 1,
                "a downgrade without an upgrade",
            ),
            None => {
                let last = text.trim_end_matches('\n');
                let start = last.rfind('\n').map_or(0, |p| p + 1);
                (
                    last.lines().count().max(1),
                    start,
                    last.len() - start,
                    "end of the file",
                )
            }
        };
        let mut e = Self::error_in(&self.path, text, line, ParseErrorKind::NoUpgradeSection);
        e.span = Some(SourceSpan::from((at, len)));
        e.label = label.into();
        e.help = Some("add a line `-- alembic:upgrade` followed by the revision's SQL".into());
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Revision, ParseError> {
        Revision::parse(Path::new("versions/x.sql"), text.as_bytes())
    }

    const CONTRACT_EXAMPLE: &str = "-- create users table
--
-- revision: 1975ea83b712
-- down_revision: None
-- branch_labels: None
-- depends_on: None
-- create_date: 2026-11-21 10:42:07.123456

-- alembic:upgrade
CREATE TABLE users (
    id bigint PRIMARY KEY,
    email text NOT NULL UNIQUE
);

-- alembic:downgrade
DROP TABLE users;
";

    #[test]
    fn contract_example() {
        let r = parse(CONTRACT_EXAMPLE).unwrap();
        assert_eq!(r.id, "1975ea83b712");
        assert!(
            r.down_revisions.is_empty() && r.branch_labels.is_empty() && r.depends_on.is_empty()
        );
        assert_eq!(r.message.as_deref(), Some("create users table"));
        assert_eq!(r.create_date.as_deref(), Some("2026-11-21 10:42:07.123456"));
        assert!(r.transactional);
        assert_eq!(r.upgrade.marker_line, 9);
        assert_eq!(r.upgrade_statements().unwrap().len(), 1);
        assert_eq!(r.upgrade_statements().unwrap()[0].line, 10);
        let down = r.downgrade.as_ref().unwrap();
        assert_eq!(r.statements(down).unwrap()[0].sql, "DROP TABLE users");
        assert_eq!(r.statements(down).unwrap()[0].line, 16);
        assert_eq!(r.key_lines.down_revision, 4);
        assert_eq!(*r.upgrade.checksum(), Checksum::of_section("CREATE TABLE users (\n    id bigint PRIMARY KEY,\n    email text NOT NULL UNIQUE\n);"));
    }

    #[test]
    fn crlf_and_bom_give_the_same_revision() {
        let crlf = format!("\u{feff}{}", CONTRACT_EXAMPLE.replace('\n', "\r\n"));
        let a = parse(CONTRACT_EXAMPLE).unwrap();
        let b = parse(&crlf).unwrap();
        assert_eq!(a.upgrade.checksum(), b.upgrade.checksum());
        assert_eq!(
            a.downgrade.as_ref().unwrap().checksum(),
            b.downgrade.as_ref().unwrap().checksum()
        );
        assert_eq!(
            a.upgrade_statements().unwrap(),
            b.upgrade_statements().unwrap()
        );
        assert_eq!(b.message.as_deref(), Some("create users table"));
    }

    #[test]
    fn python_style_values() {
        let table: &[(&str, &[&str])] = &[
            ("None", &[]),
            ("", &[]),
            ("abc", &["abc"]),
            ("'abc'", &["abc"]),
            ("\"abc\"", &["abc"]),
            ("('a1', 'b2')", &["a1", "b2"]),
            ("('a1',)", &["a1"]),
            ("['a1', \"b2\"]", &["a1", "b2"]),
            ("a1, b2", &["a1", "b2"]),
            (
                "table-name-and-modification",
                &["table-name-and-modification"],
            ),
        ];
        for (raw, expect) in table {
            assert_eq!(parse_list(raw).unwrap(), *expect, "{raw}");
        }
        for bad in [
            "('a', None)",
            "'abc",
            "(a, b",
            "a b",
            "x".repeat(33).as_str(),
            "a@b",
        ] {
            assert!(parse_list(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn merge_labels_depends_and_transactional() {
        let r = parse(
            "-- merge\n-- revision: m1\n-- down_revision: ('a1', 'b1')\n-- branch_labels: ('x', 'y')\n-- depends_on: c1\n-- transactional: false\n-- alembic:upgrade\nVACUUM;\n",
        )
        .unwrap();
        assert_eq!(r.down_revisions, ["a1", "b1"]);
        assert_eq!(r.branch_labels, ["x", "y"]);
        assert_eq!(r.depends_on, ["c1"]);
        assert!(!r.transactional);
        assert!(r.downgrade.is_none(), "no downgrade section: irreversible");
        assert!(r.is_merge_point());
    }

    /// The revision's own id written bare, as a Python string or as a
    /// one-item tuple is the same id.
    #[test]
    fn a_revision_id_in_any_list_form() {
        for value in ["a1", " a1 ", "'a1'", "\"a1\"", "('a1',)", "['a1']"] {
            let r = parse(&format!(
                "-- revision: {value}\n-- down_revision: None\n-- alembic:upgrade\n"
            ))
            .unwrap();
            assert_eq!(r.id, "a1", "{value}");
        }
    }

    #[test]
    fn empty_downgrade_is_a_no_op_not_irreversible() {
        let r = parse("-- revision: a\n-- down_revision: None\n-- alembic:upgrade\nSELECT 1;\n-- alembic:downgrade\n").unwrap();
        assert!(r.downgrade.as_ref().is_some_and(Section::is_empty));
    }

    #[test]
    fn message_may_contain_a_colon() {
        let r = parse(
            "-- Fix: users email\n-- revision: a\n-- down_revision: None\n-- alembic:upgrade\n",
        )
        .unwrap();
        assert_eq!(r.message.as_deref(), Some("Fix: users email"));
        let r = parse(
            "-- fix: users email\n-- revision: a\n-- down_revision: None\n-- alembic:upgrade\n",
        )
        .unwrap();
        assert_eq!(r.message.as_deref(), Some("fix: users email"));
    }

    /// Each bad input: (text, line, message).
    #[test]
    fn bad_input_names_the_line() {
        let cases: &[(&str, usize, &str)] = &[
            ("-- down_revision: None\n-- alembic:upgrade\n", 1, "missing required header key `revision`"),
            ("-- revision: a\n-- alembic:upgrade\n", 1, "missing required header key `down_revision`"),
            ("-- revision: a\n-- down_revision: None\n-- revision: b\n-- alembic:upgrade\n", 3, "header key `revision` is given twice (first on line 1)"),
            (
                "-- revision: a\n-- down_revision: None\n-- owner: me\n-- alembic:upgrade\n",
                3,
                "unknown header key `owner` (allowed: revision, down_revision, branch_labels, depends_on, create_date, transactional, allow, replaces)",
            ),
            (
                "-- revision: a\n-- down_revision: None\n-- replaces: b, a\n-- alembic:upgrade\n",
                3,
                "bad value for `replaces`: a squash cannot replace itself (`a`)",
            ),
            (
                "-- revision: a\n-- down_revision: None\n-- alembic:upgrade\nSELECT 1;\n-- alembic:upgrade\nSELECT 2;\n",
                5,
                "second `-- alembic:upgrade` section (the first is on line 3)",
            ),
            ("-- revision: a\n-- down_revision: None\n-- alembic:downgrade\nSELECT 1;\n", 3, "no `-- alembic:upgrade` section"),
            ("-- revision: a\n-- down_revision: None\n", 2, "no `-- alembic:upgrade` section"),
            ("-- revision: a\n-- down_revision: None\nSELECT 1;\n-- alembic:upgrade\n", 3, "SQL before the `-- alembic:upgrade` marker"),
            ("-- revision: a\n-- down_revision: None\n-- alembic:upgrades\n", 3, "unknown section marker `-- alembic:upgrades` (allowed: `-- alembic:upgrade`, `-- alembic:downgrade`)"),
            ("-- revision: a b\n-- down_revision: None\n-- alembic:upgrade\n", 1, "bad value for `revision`: `a b` contains ' '; ids use letters, digits, `_` and `-`"),
            ("-- revision: None\n-- down_revision: None\n-- alembic:upgrade\n", 1, "bad value for `revision`: a revision needs an id"),
            ("-- revision:\n-- down_revision: None\n-- alembic:upgrade\n", 1, "bad value for `revision`: a revision needs an id"),
            ("-- revision: ()\n-- down_revision: None\n-- alembic:upgrade\n", 1, "bad value for `revision`: a revision needs an id"),
            ("-- revision: a, b\n-- down_revision: None\n-- alembic:upgrade\n", 1, "bad value for `revision`: a revision has exactly one id"),
            ("-- revision: ('a', 'b')\n-- down_revision: None\n-- alembic:upgrade\n", 1, "bad value for `revision`: a revision has exactly one id"),
            ("-- revision: a$\n-- down_revision: None\n-- alembic:upgrade\n", 1, "bad value for `revision`: `a$` contains '$'; ids use letters, digits, `_` and `-`"),
            ("-- revision: a\n-- down_revision: b, b\n-- alembic:upgrade\n", 2, "bad value for `down_revision`: `b` is listed twice"),
            ("-- revision: a\n-- down_revision: None\n-- transactional: maybe\n-- alembic:upgrade\n", 3, "bad value for `transactional`: `maybe` is neither `true` nor `false`"),
            ("-- revision: a\n-- down_revision: None\n-- alembic:upgrade\nSELECT 1;\nSELECT $x$ oops;\n", 5, "unterminated dollar-quoted body: no closing `$x$`"),
            (
                "-- revision: 0123456789abcdef0123456789abcdef0\n-- down_revision: None\n-- alembic:upgrade\n",
                1,
                "bad value for `revision`: `0123456789abcdef0123456789abcdef0` is 33 characters long; alembic_version.version_num holds at most 32",
            ),
        ];
        for (text, line, message) in cases {
            let err = parse(text)
                .and_then(|r| r.lex().map(|()| r))
                .expect_err(text);
            assert_eq!(
                (err.line, err.to_string().as_str()),
                (*line, *message),
                "{text}"
            );
            assert!(err
                .located()
                .starts_with(&format!("versions/x.sql:{line}: ")));
        }
    }

    #[test]
    fn not_utf8_names_the_line() {
        let err = Revision::parse(
            Path::new("v/x.sql"),
            b"-- revision: a\n-- down_revision: None\n-- \xff\xfe\n",
        )
        .unwrap_err();
        assert_eq!(err.line, 3);
        assert_eq!(
            err.to_string(),
            "file is not valid UTF-8 (first bad byte at offset 41)"
        );
    }
}
