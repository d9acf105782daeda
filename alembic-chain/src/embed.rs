//! The chain as `embed_migrations!` compiles it into a binary: the
//! `'static` data the macro writes (a [`PackedChain`]), which the runtime
//! turns back into revisions for a [`RevisionMap`] without reading a file;
//! the [`EmbeddedRevision`] form a service can list; and (with the
//! `tooling` feature) what the macro checks at compile time, `prepare`.
//!
//! The macro crate only parses its arguments and turns a `Prepared` chain
//! into tokens; everything that can fail happens in `prepare`, with the
//! same loader, checksum and graph as the CLI.

use std::path::PathBuf;
use std::sync::Arc;

use crate::errors::LoadError;
use crate::graph::RevisionMap;
use crate::revision::{KeyLines, Revision, Section};

#[cfg(feature = "tooling")]
pub use crate::packed::Packer;
pub use crate::packed::{LedgerEntry, Malformed, PackedChain};
#[cfg(feature = "tooling")]
pub use crate::prepare::{prepare, Prepared, Request};

/// A revision compiled into a binary.
#[derive(Debug)]
pub struct EmbeddedRevision {
    /// The revision id.
    pub id: &'static str,
    /// Parent ids.
    pub down_revisions: &'static [&'static str],
    /// Branch labels declared here.
    pub branch_labels: &'static [&'static str],
    /// Ordering dependencies.
    pub depends_on: &'static [&'static str],
    /// `false` runs the revision outside a transaction.
    pub transactional: bool,
    /// The revisions a squash replaces (`replaces:`).
    pub replaces: &'static [&'static str],
    /// The message line.
    pub message: Option<&'static str>,
    /// `create_date`.
    pub create_date: Option<&'static str>,
    /// The file it came from, relative to the package (for messages).
    pub path: &'static str,
    /// The upgrade section.
    pub upgrade: EmbeddedSection,
    /// The downgrade section (`None`: irreversible).
    pub downgrade: Option<EmbeddedSection>,
}

/// A section of an embedded revision.
#[derive(Debug)]
pub struct EmbeddedSection {
    /// 1-based line of the `-- alembic:...` marker.
    pub marker_line: usize,
    /// The section's text, line endings made LF.
    pub sql: &'static str,
    /// Its checksum (CONTRACT section 2), computed at compile time.
    pub checksum: &'static str,
    /// Its statements, split at compile time, as [`PackedChain`] packs
    /// them: each one's start and length in `sql` and its 1-based line in
    /// the file, as LEB128 varints (empty: split at run time).
    pub statements: &'static [u8],
}

/// The settings `embed_migrations!` read from Cargo metadata and bakes in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedSettings {
    /// `version_table`.
    pub version_table: &'static str,
    /// `version_table_schema`.
    pub version_table_schema: Option<&'static str>,
    /// `transaction_per_migration`.
    pub transaction_per_migration: bool,
    /// The embedding package and its version (`billing 4.2.0`), for the
    /// ledger's `tool` column.
    pub package: &'static str,
}

impl EmbeddedSection {
    fn section(&'static self) -> Section {
        Section::compiled_in(
            self.marker_line,
            self.sql,
            self.checksum,
            (!self.statements.is_empty()).then_some(self.statements),
        )
    }
}

impl Revision {
    /// A revision compiled in by `embed_migrations!`: nothing is parsed,
    /// split or hashed again.
    pub fn from_embedded(e: &'static EmbeddedRevision) -> Revision {
        let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        Revision {
            id: e.id.to_owned(),
            down_revisions: strings(e.down_revisions),
            branch_labels: strings(e.branch_labels),
            depends_on: strings(e.depends_on),
            create_date: e.create_date.map(str::to_owned),
            transactional: e.transactional,
            allow: Vec::new(),
            replaces: strings(e.replaces),
            message: e.message.map(str::to_owned),
            path: PathBuf::from(e.path),
            key_lines: KeyLines::default(),
            upgrade: e.upgrade.section(),
            downgrade: e.downgrade.as_ref().map(EmbeddedSection::section),
            source: Arc::from(""),
        }
    }
}

impl RevisionMap {
    /// The graph of an embedded chain. The macro validated it; the error
    /// path exists for data written by hand.
    pub fn from_embedded(revisions: &'static [EmbeddedRevision]) -> Result<RevisionMap, LoadError> {
        RevisionMap::new(revisions.iter().map(Revision::from_embedded).collect())
    }
}
