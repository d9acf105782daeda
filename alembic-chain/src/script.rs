//! Loading a versions folder: every `*.sql` file under it, recursively, in
//! sorted order, parsed and validated into a [`RevisionMap`].

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Mutex;

use crate::errors::LoadError;
use crate::graph::RevisionMap;
use crate::revision::Revision;

/// How many paths the lister hands to a worker at once.
const BATCH: usize = 64;

/// Walks `versions` recursively, handing `.sql` paths to `found` in
/// batches as they are listed. Hidden files and folders are skipped;
/// symlinked folders are followed (a versions folder may link shared
/// revisions).
fn walk(
    versions: &Path,
    mut found: impl FnMut(Vec<PathBuf>),
    mut entered: impl FnMut(&Path),
) -> Result<(), LoadError> {
    if !versions.is_dir() {
        return Err(LoadError::NoVersions(versions.to_owned()));
    }
    let mut stack = vec![versions.to_owned()];
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(dir) = stack.pop() {
        entered(&dir);
        let io = |source| LoadError::Io {
            path: dir.clone(),
            reason: source,
        };
        for entry in std::fs::read_dir(&dir).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name();
            let bytes = name.as_encoded_bytes();
            if bytes.first() == Some(&b'.') {
                continue;
            }
            let kind = entry.file_type().map_err(io)?;
            if kind.is_dir() || (kind.is_symlink() && entry.path().is_dir()) {
                stack.push(entry.path());
            } else if bytes.ends_with(b".sql") {
                batch.push(entry.path());
                if batch.len() == BATCH {
                    found(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
                }
            }
        }
    }
    if !batch.is_empty() {
        found(batch);
    }
    Ok(())
}

/// Byte order of the whole path: deterministic (`read_dir` order is not),
/// and much cheaper than comparing `Path`s component by component.
fn path_order(a: &Path, b: &Path) -> std::cmp::Ordering {
    a.as_os_str()
        .as_encoded_bytes()
        .cmp(b.as_os_str().as_encoded_bytes())
}

/// Lists the revision files under `versions`, recursively and sorted.
pub fn revision_files(versions: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    walk(versions, |batch| out.extend(batch), |_| {})?;
    out.sort_unstable_by(|a, b| path_order(a, b));
    Ok(out)
}

/// Lists `versions` and every folder under it that may hold revision files,
/// sorted: what a build script watches so that an added file rebuilds.
pub fn version_folders(versions: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let mut out = Vec::new();
    walk(versions, |_| {}, |dir| out.push(dir.to_owned()))?;
    out.sort_unstable_by(|a, b| path_order(a, b));
    Ok(out)
}

/// Reads, parses and validates every revision under `versions`.
///
/// Listing, reading and parsing overlap: the current thread lists the
/// folder and hands batches of paths to workers (one per core), then
/// parses alongside them; revisions are put back in path order after.
/// All parse errors are reported together; the graph is validated only
/// when every file parses, so that one broken file does not also show up
/// as a missing parent.
pub fn load_versions(versions: &Path) -> Result<RevisionMap, LoadError> {
    load_versions_beside(versions, 0)
}

/// [`load_versions`] while the caller keeps `busy` cores busy: one worker
/// fewer per busy core, and at least the calling thread.
///
/// A command that connects while it loads has a second thread opening the
/// connection and, on a local database, a server process starting a
/// backend for it. Loading on every core as well then slows the
/// connection, which is the longer side of a no-op `upgrade`: leaving it a
/// core was 0.96 to 0.98× paired on two cores (BENCHMARKS.md). The chain
/// is the same whatever the number of workers.
pub fn load_versions_beside(versions: &Path, busy: usize) -> Result<RevisionMap, LoadError> {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(busy)
        .clamp(1, 8);
    let (tx, rx) = channel::<Vec<PathBuf>>();
    let rx = Mutex::new(rx);
    let (listed, batches) = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..workers)
            .map(|_| scope.spawn(|| parse_batches(&rx)))
            .collect();
        let listed = {
            let tx = tx;
            walk(
                versions,
                |batch| {
                    // A worker only stops once the sender is gone: send cannot fail.
                    let _ = tx.send(batch);
                },
                |_| {},
            )
        };
        let mut all = parse_batches(&rx);
        for h in handles {
            all.extend(
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        (listed, all)
    });
    listed?;
    // Put the results in path order by sorting indexes, then moving each
    // revision once: a revision is hundreds of bytes, and the folder was
    // listed in hash order. Every path starts with `versions`: compare what
    // follows.
    let mut slots: Vec<Option<Result<Revision, LoadError>>> =
        Vec::with_capacity(batches.iter().map(Vec::len).sum());
    for batch in batches {
        slots.extend(batch.into_iter().map(Some));
    }
    let skip = versions.as_os_str().len();
    let mut order: Vec<usize> = (0..slots.len()).collect();
    order.sort_unstable_by(|&a, &b| sort_key(&slots[a], skip).cmp(sort_key(&slots[b], skip)));
    let mut revs = Vec::with_capacity(slots.len());
    let mut problems = Vec::new();
    for result in order.into_iter().filter_map(|i| slots[i].take()) {
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

/// The bytes of a result's path after the first `skip` (the versions folder).
fn sort_key(slot: &Option<Result<Revision, LoadError>>, skip: usize) -> &[u8] {
    let path = slot
        .as_ref()
        .map_or(Path::new(""), result_path)
        .as_os_str()
        .as_encoded_bytes();
    path.get(skip..).unwrap_or(path)
}

fn result_path(r: &Result<Revision, LoadError>) -> &Path {
    match r {
        Ok(rev) => &rev.path,
        Err(LoadError::Parse(e)) => &e.path,
        Err(LoadError::Io { path, .. }) => path,
        Err(_) => Path::new(""),
    }
}

/// Takes batches of paths until the lister is done, reading each file into
/// one reused buffer.
///
/// `fs::read` and `File::read_to_end` ask for the file's size first
/// (`statx`, `lseek`): on a 10,000-file chain that is a third of all system
/// calls. Reading into a reused buffer until end of file needs only `open`,
/// `read`, `read`, `close`.
fn parse_batches(rx: &Mutex<Receiver<Vec<PathBuf>>>) -> Vec<Vec<Result<Revision, LoadError>>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // A poisoned lock means another worker panicked; the scope re-raises it.
        let batch = match rx.lock().map(|r| r.recv()) {
            Ok(Ok(batch)) => batch,
            _ => break,
        };
        out.push(
            batch
                .into_iter()
                .map(|path| read_one(path, &mut buf))
                .collect(),
        );
    }
    out
}

fn read_one(path: PathBuf, buf: &mut Vec<u8>) -> Result<Revision, LoadError> {
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(reason) => return Err(LoadError::Io { path, reason }),
    };
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(reason) => return Err(LoadError::Io { path, reason }),
        }
    }
    Ok(Revision::parse_owned(path, &buf[..len])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(id: &str, down: &str) -> String {
        format!(
            "-- r\n-- revision: {id}\n-- down_revision: {down}\n-- alembic:upgrade\nSELECT 1;\n"
        )
    }

    #[test]
    fn loads_nested_folders_in_path_order_and_skips_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("versions");
        std::fs::create_dir_all(v.join("b_sub")).unwrap();
        std::fs::create_dir_all(v.join(".hidden")).unwrap();
        std::fs::write(v.join("a.sql"), rev("r1", "None")).unwrap();
        std::fs::write(v.join("b_sub/c.sql"), rev("r2", "r1")).unwrap();
        std::fs::write(v.join("z.sql"), rev("r3", "r2")).unwrap();
        std::fs::write(v.join(".hidden/x.sql"), "not a revision").unwrap();
        std::fs::write(v.join(".#a.sql"), "an editor's lock file").unwrap();
        std::fs::write(v.join("notes.txt"), "ignored").unwrap();
        // More files than one batch, so that several workers take part.
        for i in 0..300usize {
            let down = if i == 0 {
                "r3".to_owned()
            } else {
                format!("m{:03}", i - 1)
            };
            std::fs::write(
                v.join(format!("m{i:03}.sql")),
                rev(&format!("m{i:03}"), &down),
            )
            .unwrap();
        }
        let files = revision_files(&v).unwrap();
        let names: Vec<String> = files
            .iter()
            .take(3)
            .map(|p| p.strip_prefix(&v).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.sql", "b_sub/c.sql", "m000.sql"]);
        assert_eq!(files.len(), 303);
        let map = load_versions(&v).unwrap();
        assert_eq!(map.len(), 303);
        let paths: Vec<&Path> = map.revisions().iter().map(|r| r.path.as_path()).collect();
        let mut sorted = paths.clone();
        sorted.sort_by(|a, b| path_order(a, b));
        assert_eq!(paths, sorted, "revisions come back in path order");
        assert_eq!(map.rev(map.heads()[0]).id, "m299");
        // Fewer workers (down to the calling thread alone, whatever the
        // machine's cores) load the same chain in the same order.
        for busy in [1, 2, usize::MAX] {
            let beside = load_versions_beside(&v, busy).unwrap();
            let ids = |m: &RevisionMap| -> Vec<String> {
                m.revisions().iter().map(|r| r.id.to_string()).collect()
            };
            assert_eq!(ids(&beside), ids(&map), "busy = {busy}");
            let paths_beside: Vec<&Path> = beside
                .revisions()
                .iter()
                .map(|r| r.path.as_path())
                .collect();
            assert_eq!(paths_beside, paths, "busy = {busy}");
        }
    }

    #[test]
    fn a_chain_loaded_beside_a_connection_reports_every_broken_file() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("versions");
        std::fs::create_dir_all(&v).unwrap();
        for i in 0..200usize {
            let text = if i % 50 == 7 {
                "not a revision\n".to_owned()
            } else {
                rev(&format!("m{i:03}"), "None")
            };
            std::fs::write(v.join(format!("m{i:03}.sql")), text).unwrap();
        }
        // Every broken file, in path order, whatever the number of workers.
        let broken = |busy: usize| -> Vec<PathBuf> {
            match load_versions_beside(&v, busy).unwrap_err() {
                LoadError::Many(problems) => problems
                    .into_iter()
                    .map(|p| result_path(&Err(p)).to_owned())
                    .collect(),
                other => panic!("{other}"),
            }
        };
        let expected: Vec<PathBuf> = [7, 57, 107, 157]
            .iter()
            .map(|i| v.join(format!("m{i:03}.sql")))
            .collect();
        for busy in [0, 1, usize::MAX] {
            assert_eq!(broken(busy), expected, "busy = {busy}");
        }
    }

    /// Symbolic links to folders and files are followed (a versions folder
    /// may link shared revisions); a link to nothing is an error naming
    /// the file as listed.
    #[cfg(unix)]
    #[test]
    fn linked_folders_and_files_load_and_a_dangling_link_is_named() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("versions");
        std::fs::create_dir_all(&v).unwrap();
        std::fs::create_dir_all(dir.path().join("shared")).unwrap();
        std::fs::write(v.join("a.sql"), rev("r1", "None")).unwrap();
        std::fs::write(dir.path().join("shared/b.sql"), rev("r2", "r1")).unwrap();
        symlink(dir.path().join("shared"), v.join("linked")).unwrap();
        std::fs::write(dir.path().join("c_real.sql"), rev("r3", "r2")).unwrap();
        symlink(dir.path().join("c_real.sql"), v.join("c.sql")).unwrap();
        let map = load_versions(&v).unwrap();
        let found: Vec<(String, PathBuf)> = map
            .revisions()
            .iter()
            .map(|r| (r.id.to_string(), r.path.clone()))
            .collect();
        assert_eq!(
            found,
            [
                ("r1".to_owned(), v.join("a.sql")),
                ("r3".to_owned(), v.join("c.sql")),
                ("r2".to_owned(), v.join("linked/b.sql")),
            ]
        );

        symlink(dir.path().join("gone.sql"), v.join("d.sql")).unwrap();
        match load_versions(&v).unwrap_err() {
            LoadError::Io { path, reason } => {
                assert_eq!(path, v.join("d.sql"));
                assert_eq!(reason.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("{other}"),
        }
    }

    #[test]
    fn missing_versions_folder() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_versions(&dir.path().join("versions")).unwrap_err();
        assert!(matches!(err, LoadError::NoVersions(_)), "{err}");
    }
}
