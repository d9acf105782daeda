//! Loading a versions folder: every `*.sql` file under it, recursively, in
//! sorted order, parsed and validated into a [`RevisionMap`].

use std::path::{Path, PathBuf};

use crate::errors::LoadError;
use crate::graph::RevisionMap;
use crate::revision::Revision;

/// Lists the revision files under `versions`, recursively and sorted
/// (`read_dir` order is unspecified). Hidden files and folders are skipped.
pub fn revision_files(versions: &Path) -> Result<Vec<PathBuf>, LoadError> {
    if !versions.is_dir() {
        return Err(LoadError::NoVersions(versions.to_owned()));
    }
    let mut out = Vec::new();
    let mut stack = vec![versions.to_owned()];
    while let Some(dir) = stack.pop() {
        let io = |source| LoadError::Io { path: dir.clone(), source };
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let kind = entry.file_type().map_err(io)?;
            // Follow symlinks: a versions folder may link shared revisions.
            let is_dir = kind.is_dir() || (kind.is_symlink() && path.is_dir());
            if is_dir {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "sql") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Reads, parses and validates every revision under `versions`.
///
/// All parse errors are reported together; the graph is validated only
/// when every file parses, so that one broken file does not also show up
/// as a missing parent.
pub fn load_versions(versions: &Path) -> Result<RevisionMap, LoadError> {
    let files = revision_files(versions)?;
    let mut revs = Vec::with_capacity(files.len());
    let mut problems = Vec::new();
    for path in files {
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(source) => {
                problems.push(LoadError::Io { path, source });
                continue;
            }
        };
        match Revision::parse(&path, &bytes) {
            Ok(r) => revs.push(r),
            Err(e) => problems.push(e.into()),
        }
    }
    if let Some(err) = LoadError::from_many(problems) {
        return Err(err);
    }
    RevisionMap::new(revs)
}
