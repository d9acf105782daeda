//! The chain as `embed_migrations!` compiles it: every string in one text,
//! and every number (where each string is, counts, lines) in one byte
//! string of LEB128 varints.
//!
//! A static of structs with `&'static str` fields costs a position-independent
//! binary a relocation per pointer (24 bytes in `.rela.dyn`, applied at every
//! start) besides the pointer itself: about 13 per revision, 0.45 MiB for a
//! thousand. Two slices cost two.
//!
//! The layout, in order: the head revisions' ids (a list, as the macro's
//! graph found them); what a check of an up-to-date database reads (the
//! count of the graph's revisions, then, in the graph's order, each one's
//! id, upgrade checksum and optional downgrade checksum); the revision count, then for each revision
//! (the graph's, then the files squashes replaced) its id,
//! `down_revision`, `branch_labels`, `depends_on` and `replaces` lists,
//! `transactional`, message, `create_date`, path, the upgrade section and
//! the downgrade section (a flag, then the section). A string is its start
//! in the text and its length; a list is its length and its strings; an
//! optional string is a flag and the string. A section is its marker line,
//! its text, its checksum and its statements: their count plus one (zero:
//! split again at run time), then each one's start and length in the
//! section's text and its line in the file.

use std::path::PathBuf;
use std::sync::Arc;

use crate::embed::{EmbeddedRevision, EmbeddedSection};
pub use crate::recorded::LedgerEntry;
use crate::revision::{KeyLines, Revision, Section};
#[cfg(feature = "tooling")]
use crate::split::Statement;
#[cfg(feature = "tooling")]
use crate::RevisionMap;

/// A packed chain, as the macro writes it.
#[derive(Debug)]
pub struct PackedChain {
    /// Every string of the chain, one after the other.
    pub text: &'static str,
    /// The numbers, as LEB128 varints.
    pub table: &'static [u8],
}

/// An entry of the packed checks: a revision of the graph, its upgrade
/// checksum and its downgrade checksum.
type CheckEntry = (&'static str, &'static str, Option<&'static str>);

/// What went wrong reading packed data (only data written by hand can be
/// wrong).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the embedded chain's data is malformed: {}", self.0)
    }
}

/// Reads numbers and strings off a packed chain.
#[derive(Clone, Copy)]
struct Cursor {
    text: &'static str,
    table: &'static [u8],
    at: usize,
}

impl Cursor {
    fn num(&mut self) -> Result<u64, Malformed> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self
                .table
                .get(self.at)
                .ok_or_else(|| Malformed(format!("the table ends at byte {}", self.at)))?;
            self.at += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Malformed(format!("a number too long at byte {}", self.at)))
    }

    fn usize(&mut self) -> Result<usize, Malformed> {
        let n = self.num()?;
        usize::try_from(n).map_err(|_| Malformed(format!("{n} is out of range")))
    }

    fn str(&mut self) -> Result<&'static str, Malformed> {
        let (start, len) = (self.usize()?, self.usize()?);
        start
            .checked_add(len)
            .and_then(|end| self.text.get(start..end))
            .ok_or_else(|| Malformed(format!("no string at {start}+{len} of the text")))
    }

    fn opt(&mut self) -> Result<Option<&'static str>, Malformed> {
        match self.num()? {
            0 => Ok(None),
            _ => self.str().map(Some),
        }
    }

    /// A list: read through (so that it is checked), kept as its place.
    fn list(&mut self) -> Result<StrList, Malformed> {
        let count = self.usize()?;
        let from = *self;
        for _ in 0..count {
            self.str()?;
        }
        Ok(StrList { from, count })
    }

    fn section(&mut self) -> Result<RawSection, Malformed> {
        let marker_line = self.usize()?;
        let sql = self.str()?;
        let checksum = self.str()?;
        let statements = match self.usize()? {
            0 => None,
            n => {
                let start = self.at;
                let numbers = (n - 1)
                    .checked_mul(3)
                    .ok_or_else(|| Malformed(format!("{n} statements")))?;
                for _ in 0..numbers {
                    self.num()?;
                }
                Some(&self.table[start..self.at])
            }
        };
        Ok(RawSection {
            marker_line,
            sql,
            checksum,
            statements,
        })
    }

    /// An entry of the checks.
    fn check(&mut self) -> Result<CheckEntry, Malformed> {
        Ok((self.str()?, self.str()?, self.opt()?))
    }

    fn revision(&mut self) -> Result<RawRevision, Malformed> {
        Ok(RawRevision {
            id: self.str()?,
            down_revisions: self.list()?,
            branch_labels: self.list()?,
            depends_on: self.list()?,
            replaces: self.list()?,
            transactional: self.num()? != 0,
            message: self.opt()?,
            create_date: self.opt()?,
            path: self.str()?,
            upgrade: self.section()?,
            downgrade: match self.num()? {
                0 => None,
                _ => Some(self.section()?),
            },
        })
    }
}

/// A list of strings in the packed data, already checked.
#[derive(Clone, Copy)]
struct StrList {
    from: Cursor,
    count: usize,
}

impl StrList {
    fn iter(self) -> impl Iterator<Item = &'static str> {
        let mut cursor = self.from;
        (0..self.count).filter_map(move |_| cursor.str().ok())
    }

    fn strings(self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }

    fn leaked(self) -> &'static [&'static str] {
        if self.count == 0 {
            return &[];
        }
        Box::leak(self.iter().collect::<Vec<_>>().into_boxed_slice())
    }
}

struct RawSection {
    marker_line: usize,
    sql: &'static str,
    checksum: &'static str,
    statements: Option<&'static [u8]>,
}

struct RawRevision {
    id: &'static str,
    down_revisions: StrList,
    branch_labels: StrList,
    depends_on: StrList,
    replaces: StrList,
    transactional: bool,
    message: Option<&'static str>,
    create_date: Option<&'static str>,
    path: &'static str,
    upgrade: RawSection,
    downgrade: Option<RawSection>,
}

impl RawSection {
    fn section(&self) -> Section {
        Section::compiled_in(self.marker_line, self.sql, self.checksum, self.statements)
    }

    fn embedded(&self) -> EmbeddedSection {
        EmbeddedSection {
            marker_line: self.marker_line,
            sql: self.sql,
            checksum: self.checksum,
            statements: self.statements.unwrap_or_default(),
        }
    }
}

impl PackedChain {
    fn cursor(&self) -> Cursor {
        Cursor {
            text: self.text,
            table: self.table,
            at: 0,
        }
    }

    fn read(&self) -> Result<Vec<RawRevision>, Malformed> {
        let mut cursor = self.cursor();
        cursor.list()?;
        for _ in 0..cursor.usize()? {
            cursor.check()?;
        }
        let count = cursor.usize()?;
        let mut revisions = Vec::with_capacity(count.min(self.table.len()));
        for _ in 0..count {
            revisions.push(cursor.revision()?);
        }
        if cursor.at != self.table.len() {
            return Err(Malformed(format!(
                "{} bytes after the last revision",
                self.table.len() - cursor.at
            )));
        }
        Ok(revisions)
    }

    /// The head revisions' ids, as the graph built at compile time found
    /// them (read off the start of the data: nothing else is unpacked).
    pub fn heads(&self) -> Result<Vec<&'static str>, Malformed> {
        Ok(self.cursor().list()?.iter().collect())
    }

    /// Whether a database is at this chain's heads with every revision
    /// recorded as it is now, read straight off the packed data (no graph
    /// is built): `rows` are the version table's rows, sorted; `ledger` the
    /// ledger's revisions with their upgrade and downgrade checksums, in
    /// any order (in the order they were applied, the usual one, they are
    /// compared as they come; else looked up). Then every revision of the
    /// graph is applied (each is below a head), verified, and an upgrade to
    /// the heads has nothing to do (the files squashes replaced are not in
    /// the graph, and no row is one of them). `false` when anything
    /// differs: the caller then checks the long way.
    pub fn all_applied(&self, rows: &[String], ledger: &[LedgerEntry<'_>]) -> bool {
        let Ok(heads) = self.heads() else {
            return false;
        };
        crate::recorded::all_recorded(heads, rows, ledger, |f| self.each_check(&mut *f))
    }

    /// Whether `f` holds for every entry of the checks (`false` for data
    /// that does not read).
    fn each_check(&self, mut f: impl FnMut(CheckEntry) -> bool) -> bool {
        let mut cursor = self.cursor();
        let Ok(count) = cursor.list().and_then(|_| cursor.usize()) else {
            return false;
        };
        (0..count).all(|_| cursor.check().is_ok_and(&mut f))
    }

    /// The revisions, ready for [`RevisionMap::new`](crate::RevisionMap::new):
    /// nothing is parsed, split or hashed again, and no text is copied.
    pub fn revisions(&self) -> Result<Vec<Revision>, Malformed> {
        Ok(self
            .read()?
            .into_iter()
            .map(|r| Revision {
                id: r.id.to_owned(),
                down_revisions: r.down_revisions.strings(),
                branch_labels: r.branch_labels.strings(),
                depends_on: r.depends_on.strings(),
                create_date: r.create_date.map(str::to_owned),
                transactional: r.transactional,
                allow: Vec::new(),
                replaces: r.replaces.strings(),
                message: r.message.map(str::to_owned),
                path: PathBuf::from(r.path),
                key_lines: KeyLines::default(),
                upgrade: r.upgrade.section(),
                downgrade: r.downgrade.as_ref().map(RawSection::section),
                source: Arc::from(""),
            })
            .collect())
    }

    /// The revisions as [`EmbeddedRevision`]s, for the public API that
    /// hands them out. Their lists are allocated once and live as long as
    /// the program (call it once, and keep the result).
    pub fn embedded_revisions(&self) -> Result<Vec<EmbeddedRevision>, Malformed> {
        Ok(self
            .read()?
            .into_iter()
            .map(|r| EmbeddedRevision {
                id: r.id,
                down_revisions: r.down_revisions.leaked(),
                branch_labels: r.branch_labels.leaked(),
                depends_on: r.depends_on.leaked(),
                transactional: r.transactional,
                replaces: r.replaces.leaked(),
                message: r.message,
                create_date: r.create_date,
                path: r.path,
                upgrade: r.upgrade.embedded(),
                downgrade: r.downgrade.as_ref().map(RawSection::embedded),
            })
            .collect())
    }
}

/// The statements of a packed section, from its text and the statements'
/// numbers (start, length, line, repeated); `None` if they do not fit.
pub(crate) fn statements(sql: &str, packed: &'static [u8]) -> Option<Vec<crate::Statement>> {
    let mut cursor = Cursor {
        text: "",
        table: packed,
        at: 0,
    };
    let mut out = Vec::new();
    while cursor.at < packed.len() {
        let (start, len, line) = (
            cursor.usize().ok()?,
            cursor.usize().ok()?,
            cursor.usize().ok()?,
        );
        let text = sql.get(start..start.checked_add(len)?)?;
        out.push(crate::Statement {
            sql: text.to_owned(),
            line,
        });
    }
    Some(out)
}

/// Writes a chain packed: the text and the table the macro emits.
#[cfg(feature = "tooling")]
#[derive(Debug, Default)]
pub struct Packer {
    /// Every string, one after the other.
    pub text: String,
    /// The numbers, as LEB128 varints.
    pub table: Vec<u8>,
    /// Where each string already written starts.
    seen: std::collections::HashMap<String, usize>,
}

#[cfg(feature = "tooling")]
impl Packer {
    /// Packs a chain: its graph's heads and checksums, and every revision
    /// (already split and checksummed), the files squashes replaced
    /// included; `path` gives each one's path as messages show it.
    pub fn pack(map: &RevisionMap, path: impl Fn(&Revision) -> String) -> Packer {
        let mut p = Packer::default();
        p.num(map.heads().len());
        for &head in map.heads() {
            p.str(&map.rev(head).id);
        }
        // In the graph's order, parents first: the order a database was
        // migrated in, which is the ledger's usual order.
        p.num(map.order().len());
        for rev in map.order().iter().map(|&i| map.rev(i)) {
            p.str(&rev.id);
            p.str(rev.upgrade.checksum().as_str());
            p.opt(rev.downgrade.as_ref().map(|d| d.checksum().as_str()));
        }
        let revisions: Vec<&Revision> = map.all_revisions().collect();
        p.num(revisions.len());
        for rev in revisions {
            p.str(&rev.id);
            for list in [
                &rev.down_revisions,
                &rev.branch_labels,
                &rev.depends_on,
                &rev.replaces,
            ] {
                p.num(list.len());
                for s in list {
                    p.str(s);
                }
            }
            p.num(usize::from(rev.transactional));
            p.opt(rev.message.as_deref());
            p.opt(rev.create_date.as_deref());
            p.str(&path(rev));
            p.section(&rev.upgrade, rev.statements(&rev.upgrade).ok());
            match &rev.downgrade {
                Some(d) => {
                    p.num(1);
                    p.section(d, rev.statements(d).ok());
                }
                None => p.num(0),
            }
        }
        p
    }

    fn num(&mut self, n: usize) {
        let mut n = n as u64;
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.table.push(byte);
                return;
            }
            self.table.push(byte | 0x80);
        }
    }

    fn str(&mut self, s: &str) {
        // The same text again (a parent's id) is not repeated.
        let start = match self.seen.get(s) {
            Some(&start) => start,
            None => {
                let start = self.text.len();
                self.text.push_str(s);
                self.seen.insert(s.to_owned(), start);
                start
            }
        };
        self.num(start);
        self.num(s.len());
    }

    fn opt(&mut self, s: Option<&str>) {
        match s {
            Some(s) => {
                self.num(1);
                self.str(s);
            }
            None => self.num(0),
        }
    }

    /// A section; its statements as places in its text (each statement is
    /// a substring of it: wherever its bytes occur gives it back), or none
    /// (split again at run time) if one is not found. Statements come in
    /// text order: each is looked for after the one before, so a section of
    /// thousands of statements is not searched from its start each time.
    fn section(&mut self, section: &Section, statements: Option<&[Statement]>) {
        let sql = section.sql();
        self.num(section.marker_line);
        self.str(sql);
        self.str(section.checksum().as_str());
        let mut from = 0;
        let places: Option<Vec<(usize, usize, usize)>> = statements.and_then(|statements| {
            statements
                .iter()
                .map(|st| {
                    let text = st.sql.as_str();
                    let start = match sql.get(from..).and_then(|rest| rest.find(text)) {
                        Some(at) => from + at,
                        None => sql.find(text)?,
                    };
                    from = start + text.len();
                    Some((start, text.len(), st.line))
                })
                .collect()
        });
        match places {
            Some(places) => {
                self.num(places.len() + 1);
                for (start, len, line) in places {
                    self.num(start);
                    self.num(len);
                    self.num(line);
                }
            }
            None => self.num(0),
        }
    }
}

#[cfg(all(test, feature = "tooling"))]
mod tests {
    use std::path::Path;

    use super::*;

    fn revision(text: &str) -> Revision {
        Revision::parse(Path::new("versions/r.sql"), text.as_bytes()).unwrap()
    }

    fn leak(p: Packer) -> PackedChain {
        PackedChain {
            text: Box::leak(p.text.into_boxed_str()),
            table: Box::leak(p.table.into_boxed_slice()),
        }
    }

    /// A chain packed as the macro packs it.
    fn pack(revisions: &[Revision]) -> PackedChain {
        let map = RevisionMap::new(revisions.to_vec()).unwrap();
        leak(Packer::pack(&map, |r| r.path.display().to_string()))
    }

    fn chain() -> Vec<Revision> {
        vec![
            revision(
                "-- first: é\n-- revision: a1\n-- down_revision: None\n-- branch_labels: core\n-- create_date: 2026-01-01 00:00:00\n\n\
                 -- alembic:upgrade\nCREATE TABLE t (s text DEFAULT ';');\n-- between\nCREATE INDEX ON t (s);\n\n\
                 -- alembic:downgrade\nDROP TABLE t;\n",
            ),
            revision(
                "-- second\n-- revision: b2\n-- down_revision: a1\n-- depends_on: a1\n-- transactional: false\n\n\
                 -- alembic:upgrade\n-- nothing but a comment\n",
            ),
        ]
    }

    #[test]
    fn a_packed_chain_unpacks_to_the_same_revisions() {
        let revisions = chain();
        let packed = pack(&revisions);
        let back = packed.revisions().unwrap();
        assert_eq!(back.len(), 2);
        for (a, b) in revisions.iter().zip(&back) {
            assert_eq!(a.id, b.id);
            assert_eq!(a.down_revisions, b.down_revisions);
            assert_eq!(a.branch_labels, b.branch_labels);
            assert_eq!(a.depends_on, b.depends_on);
            assert_eq!(a.replaces, b.replaces);
            assert_eq!(a.transactional, b.transactional);
            assert_eq!(a.message, b.message);
            assert_eq!(a.create_date, b.create_date);
            assert_eq!(a.path, b.path);
            assert_eq!(a.upgrade.sql(), b.upgrade.sql());
            assert_eq!(a.upgrade.checksum(), b.upgrade.checksum());
            assert_eq!(
                a.upgrade_statements().unwrap(),
                b.upgrade_statements().unwrap()
            );
            assert_eq!(
                a.downgrade.as_ref().map(|d| d.checksum().clone()),
                b.downgrade.as_ref().map(|d| d.checksum().clone())
            );
            assert_eq!(
                a.downgrade_statements().unwrap(),
                b.downgrade_statements().unwrap()
            );
        }
        assert_eq!(back[0].upgrade_statements().unwrap().len(), 2);
        assert!(back[1].upgrade.is_empty());
        // The parent's id is written once.
        assert_eq!(packed.text.matches("a1").count(), 1);
        let embedded = packed.embedded_revisions().unwrap();
        assert_eq!(embedded[1].down_revisions, ["a1"]);
        assert_eq!(embedded[0].branch_labels, ["core"]);
        let again =
            Revision::from_embedded(Box::leak(Box::new(embedded.into_iter().next().unwrap())));
        assert_eq!(
            again.upgrade_statements().unwrap(),
            back[0].upgrade_statements().unwrap()
        );
    }

    /// The check of an up-to-date database, off the packed data and off
    /// the graph (they always agree): true only at exactly the heads with
    /// every revision recorded as it is now, the ledger in the order
    /// applied or not.
    #[test]
    fn all_applied_holds_only_at_the_heads_with_every_checksum_as_recorded() {
        struct Both(PackedChain, RevisionMap);
        impl Both {
            fn all_applied(&self, rows: &[String], ledger: &[LedgerEntry<'_>]) -> bool {
                let packed = self.0.all_applied(rows, ledger);
                assert_eq!(
                    packed,
                    self.1.all_applied(rows, ledger),
                    "{rows:?} {ledger:?}"
                );
                packed
            }
        }
        let both = |revisions: &[Revision]| {
            Both(
                pack(revisions),
                RevisionMap::new(revisions.to_vec()).unwrap(),
            )
        };
        let revisions = chain();
        let packed = both(&revisions);
        assert_eq!(packed.0.heads().unwrap(), ["b2"]);
        let up = |i: usize| revisions[i].upgrade.checksum().as_str().to_owned();
        let (a1_up, b2_up) = (up(0), up(1));
        let a1_down = revisions[0].downgrade.as_ref().unwrap().checksum();
        let exact: Vec<LedgerEntry> =
            vec![("a1", &a1_up, Some(a1_down.as_str())), ("b2", &b2_up, None)];
        let rows = |r: &[&str]| r.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let b2 = rows(&["b2"]);
        assert!(packed.all_applied(&b2, &exact));
        let reversed: Vec<LedgerEntry> = exact.iter().rev().copied().collect();
        assert!(packed.all_applied(&b2, &reversed));
        // The checks follow the graph, parents first, whatever the files'
        // order: a ledger in the order applied is compared without a map.
        let files_reversed = both(&[revisions[1].clone(), revisions[0].clone()]);
        let mut checked = Vec::new();
        files_reversed.0.each_check(|(id, _, _)| {
            checked.push(id);
            true
        });
        assert_eq!(checked, ["a1", "b2"]);
        assert!(files_reversed.all_applied(&b2, &exact));
        assert!(files_reversed.all_applied(&b2, &reversed));
        let mut more = exact.clone();
        more.insert(1, ("zz", "sha256:00", None));
        assert!(
            packed.all_applied(&b2, &more),
            "a row the chain does not have"
        );
        for other in [&[][..], &["a1"], &["a1", "b2"], &["b2", "c3"]] {
            assert!(!packed.all_applied(&rows(other), &exact), "{other:?}");
        }
        // A revision without a row, an edited upgrade, a downgrade added
        // or gone: the long way.
        let changed = |k: usize, entry: LedgerEntry<'static>| {
            let mut v = exact.clone();
            v[k] = entry;
            v
        };
        assert!(!packed.all_applied(&b2, &exact[1..]));
        assert!(!packed.all_applied(&b2, &changed(0, ("a1", "sha256:00", None))));
        assert!(!packed.all_applied(&b2, &changed(1, ("b2", "x", Some("sha256:00")))));
        let mut no_down = exact.clone();
        no_down[0].2 = None;
        assert!(!packed.all_applied(&b2, &no_down));
        let mut down_added = exact.clone();
        down_added[1].2 = Some("sha256:00");
        assert!(!packed.all_applied(&b2, &down_added));
        // With a squash, the graph's revisions are checked: the squash's
        // row stands for the files it replaced.
        let mut squashed = chain();
        squashed.push(revision(
            "-- squash\n-- revision: s3\n-- down_revision: None\n-- replaces: a1, b2\n\n-- alembic:upgrade\nSELECT 1;\n",
        ));
        let s3_up = squashed[2].upgrade.checksum().as_str().to_owned();
        let packed = both(&squashed);
        let s3 = rows(&["s3"]);
        assert!(packed.all_applied(&s3, &[("s3", &s3_up, None)]));
        assert!(!packed.all_applied(&s3, &exact));
        assert_eq!(packed.0.revisions().unwrap().len(), 3);
    }

    #[test]
    fn malformed_packed_data_is_an_error_not_a_panic() {
        let packed = pack(&chain());
        for cut in 0..packed.table.len() {
            let short = PackedChain {
                text: packed.text,
                table: &packed.table[..cut],
            };
            assert!(short.revisions().is_err(), "cut at {cut}");
        }
        let longer = PackedChain {
            text: packed.text,
            table: Box::leak([packed.table, &[0]].concat().into_boxed_slice()),
        };
        assert!(longer.revisions().is_err());
        // A statement count that overflows.
        let mut huge = Packer::default();
        huge.num(0);
        huge.num(0);
        huge.num(1);
        huge.str("a");
        for _ in 0..4 {
            huge.num(0);
        }
        huge.num(1);
        huge.num(0);
        huge.num(0);
        huge.str("p");
        huge.num(1);
        huge.str("");
        huge.str("");
        huge.num(usize::MAX);
        assert!(leak(huge).revisions().is_err());
        let no_text = PackedChain {
            text: "",
            table: packed.table,
        };
        assert!(no_text
            .revisions()
            .unwrap_err()
            .to_string()
            .contains("no string at"));
        // Statement places that do not fit the text: split again.
        assert_eq!(
            statements("SELECT 1", Box::leak(vec![0, 99, 1].into_boxed_slice())),
            None
        );
    }
}
