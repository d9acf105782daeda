//! The chain as `embed_migrations!` compiles it into a binary: what the
//! macro checks and writes at compile time ([`prepare`]), and the `'static`
//! data it writes, which the runtime turns back into a [`RevisionMap`]
//! ([`RevisionMap::from_embedded`]) without reading a file.
//!
//! The macro crate only parses its arguments and turns a [`Prepared`] chain
//! into tokens; everything that can fail happens here, with the same
//! loader, checksum and graph as the CLI.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::checksum::Checksum;
use crate::config::{Config, Overrides};
use crate::errors::{EmbedError, LoadError};
use crate::graph::RevisionMap;
use crate::revision::{KeyLines, Revision, Section};
use crate::script::load_versions;

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
    /// Its statements with their 1-based lines in the file, split at
    /// compile time.
    pub statements: &'static [(&'static str, usize)],
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
        Section {
            marker_line: self.marker_line,
            range: 0..self.sql.len(),
            source: Arc::from(self.sql),
            checksum: Checksum::parse(self.checksum).map_or_else(OnceLock::new, OnceLock::from),
            statements: OnceLock::new(),
            embedded: Some(self.statements),
        }
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

/// What `embed_migrations!` was asked for.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// The package's folder (`CARGO_MANIFEST_DIR`).
    pub manifest_dir: PathBuf,
    /// The literal path, relative to `manifest_dir`; `None` resolves the
    /// script location as the CLI does.
    pub path: Option<String>,
    /// Accept a chain with several heads.
    pub allow_multiple_heads: bool,
}

/// A chain checked for embedding.
#[derive(Debug)]
pub struct Prepared {
    /// The chain, every revision parsed, split and checksummed.
    pub map: RevisionMap,
    /// The script location, absolute.
    pub script_location: PathBuf,
    /// Each revision's file, absolute, in the order of `map`.
    pub files: Vec<PathBuf>,
    /// The settings from Cargo metadata.
    pub version_table: String,
    /// The version table's schema.
    pub version_table_schema: Option<String>,
    /// Whether each revision commits on its own.
    pub transaction_per_migration: bool,
    manifest_dir: PathBuf,
    workspace_root: Option<PathBuf>,
}

impl Prepared {
    /// A file's path for messages: relative to the package, else to the
    /// workspace root, else as it is.
    pub fn display_path(&self, path: &Path) -> String {
        display_under(path, &self.manifest_dir, self.workspace_root.as_deref())
    }
}

fn display_under(path: &Path, manifest_dir: &Path, workspace_root: Option<&Path>) -> String {
    path.strip_prefix(manifest_dir)
        .ok()
        .or_else(|| workspace_root.and_then(|w| path.strip_prefix(w).ok()))
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Where `embed_migrations!` finds a chain, and so what the build-script
/// helper watches: the configuration and the versions folder (absolute).
/// `path` is the macro's literal, relative to `manifest_dir`.
pub(crate) fn locate(
    manifest_dir: &Path,
    path: Option<&str>,
) -> Result<(Config, PathBuf), EmbedError> {
    let mut overrides = Overrides {
        without_database_url: true,
        ..Overrides::default()
    };
    if let Some(path) = path {
        if Path::new(path).is_absolute() || path.starts_with('/') || path.starts_with('\\') {
            return Err(EmbedError::AbsolutePath(path.to_owned()));
        }
        overrides.script_location = Some(manifest_dir.join(path));
    }
    let config = Config::resolve(&overrides, manifest_dir).map_err(EmbedError::Config)?;
    let versions = manifest_dir.join(config.versions_dir());
    Ok((config, versions))
}

/// Finds, parses, validates and checksums the chain for `embed_migrations!`:
/// everything the CLI's `check` would refuse is an error here.
pub fn prepare(request: &Request) -> Result<Prepared, EmbedError> {
    let manifest_dir = &request.manifest_dir;
    let (config, versions) = locate(manifest_dir, request.path.as_deref())?;
    let workspace_root = config.workspace_root.clone();
    let relative = |e: &LoadError| -> String {
        let mut text = e.located();
        for root in std::iter::once(manifest_dir).chain(workspace_root.as_ref()) {
            let prefix = format!("{}{}", root.display(), std::path::MAIN_SEPARATOR);
            text = text.replace(&prefix, "");
        }
        text
    };
    let problems =
        |e: LoadError| EmbedError::Chain(e.problems().into_iter().map(relative).collect());
    let map = load_versions(&versions).map_err(problems)?;
    map.lex_all().map_err(problems)?;
    if map.heads().len() > 1 && !(request.allow_multiple_heads || config.allow_multiple_heads) {
        let heads = map.heads().iter().map(|&i| map.rev(i).id.clone()).collect();
        return Err(EmbedError::MultipleHeads { heads });
    }
    let files = map.revisions().iter().map(|r| r.path.clone()).collect();
    Ok(Prepared {
        map,
        script_location: manifest_dir.join(config.script_location),
        files,
        version_table: config.version_table,
        version_table_schema: config.version_table_schema,
        transaction_per_migration: config.transaction_per_migration,
        manifest_dir: manifest_dir.clone(),
        workspace_root,
    })
}
