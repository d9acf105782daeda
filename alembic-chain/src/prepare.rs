//! What `embed_migrations!` checks at compile time: the chain found as the
//! CLI finds it, parsed, validated and checksummed (workspace tooling; the
//! runtime half is [`crate::embed`]).

use std::path::{Path, PathBuf};

use crate::config::{Config, Overrides};
use crate::errors::{EmbedError, LoadError};
use crate::graph::RevisionMap;
use crate::script::load_versions;

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
    // The files a squash keeps run for databases inside its range: they
    // are checked and split here too.
    map.expanded().map_err(problems)?;
    for r in map.replaced() {
        r.lex().map_err(|e| problems(e.into()))?;
    }
    if map.heads().len() > 1 && !(request.allow_multiple_heads || config.allow_multiple_heads) {
        let heads = map.heads().iter().map(|&i| map.rev(i).id.clone()).collect();
        return Err(EmbedError::MultipleHeads { heads });
    }
    let files = map.all_revisions().map(|r| r.path.clone()).collect();
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
