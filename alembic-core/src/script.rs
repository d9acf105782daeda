//! Loading a versions folder: every `*.sql` file under it, recursively, in
//! sorted order, parsed and validated into a [`RevisionMap`].

use std::io::Read;
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
        let io = |source| LoadError::Io {
            path: dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            if name.as_encoded_bytes().first() == Some(&b'.') {
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
    // Byte order of the whole path: deterministic, and much cheaper than
    // comparing `Path`s component by component on large chains.
    out.sort_unstable_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
    Ok(out)
}

/// Reads, parses and validates every revision under `versions`.
///
/// All parse errors are reported together; the graph is validated only
/// when every file parses, so that one broken file does not also show up
/// as a missing parent.
pub fn load_versions(versions: &Path) -> Result<RevisionMap, LoadError> {
    let mut files = revision_files(versions)?;
    let total = files.len();
    // Reading and parsing is most of the work on large chains: spread it
    // over the cores, keeping the sorted order.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = total.div_ceil(workers).max(256);
    let mut parts = Vec::new();
    while files.len() > chunk {
        let rest = files.split_off(chunk);
        parts.push(std::mem::replace(&mut files, rest));
    }
    parts.push(files);
    let results: Vec<Vec<Result<Revision, LoadError>>> = if parts.len() == 1 {
        parts.into_iter().map(read_all).collect()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .into_iter()
                .map(|part| scope.spawn(move || read_all(part)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        })
    };
    let mut revs = Vec::with_capacity(total);
    let mut problems = Vec::new();
    for result in results.into_iter().flatten() {
        match result {
            Ok(r) => revs.push(r),
            Err(e) => problems.push(e),
        }
    }
    if let Some(err) = LoadError::from_many(problems) {
        return Err(err);
    }
    RevisionMap::new(revs)
}

/// Reads and parses files with one reused buffer.
///
/// `fs::read` and `File::read_to_end` ask for the file's size first
/// (`statx`, `lseek`): on a 10,000-file chain that is a third of all system
/// calls. Reading into a reused buffer until end of file needs only `open`,
/// `read`, `read`, `close`.
fn read_all(paths: Vec<PathBuf>) -> Vec<Result<Revision, LoadError>> {
    let mut buf = vec![0u8; 64 * 1024];
    paths
        .into_iter()
        .map(|path| {
            let io = |source| LoadError::Io {
                path: path.clone(),
                source,
            };
            let mut file = std::fs::File::open(&path).map_err(io)?;
            let mut len = 0;
            loop {
                if len == buf.len() {
                    buf.resize(buf.len() * 2, 0);
                }
                match file.read(&mut buf[len..]) {
                    Ok(0) => break,
                    Ok(n) => len += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(io(e)),
                }
            }
            Ok(Revision::parse_owned(path, &buf[..len])?)
        })
        .collect()
}
