//! Loading a versions folder: every `*.sql` file under it, recursively, in
//! sorted order, parsed and validated into a [`RevisionMap`].

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex, PoisonError};

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
                // `entry.path()` copies the folder, then grows the copy for
                // the name: two allocations per file instead of one.
                let mut path = PathBuf::with_capacity(dir.as_os_str().len() + 1 + bytes.len());
                path.push(&dir);
                path.push(&name);
                batch.push(path);
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
/// connection: leaving it a core was 0.96 to 0.98× paired on two cores
/// (BENCHMARKS.md). The chain is the same whatever the number of workers.
pub fn load_versions_beside(versions: &Path, busy: usize) -> Result<RevisionMap, LoadError> {
    load(versions, busy, None)
}

/// A load that other threads may join ([`load_versions_helped`]): a thread
/// done with its own work (the connection a command opened while its chain
/// loads) calls [`LoadHelp::help`] and reads and parses files no thread
/// took yet, checksums included.
#[derive(Default)]
pub struct LoadHelp {
    /// The load in progress, while there is one.
    current: Mutex<Option<Arc<Shared>>>,
}

/// What the loading thread shares with its helpers.
struct Shared {
    /// Batches of paths, as listed.
    queue: Mutex<Receiver<Vec<PathBuf>>>,
    /// What each helper parsed.
    parsed: Mutex<Vec<Parsed>>,
    /// Helpers that may hold a batch: counted before they take one, so
    /// that none is in hand unseen when the count reads zero.
    helping: AtomicUsize,
}

impl LoadHelp {
    /// Reads and parses files of the load in progress until none is left;
    /// returns at once when no load is in progress.
    pub fn help(&self) {
        let current = self
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(shared) = current else {
            return;
        };
        // Counted from before it takes a batch until what it parsed is
        // handed over.
        let _counted = Helping::new(&shared.helping);
        let parsed = parse_batches(&shared.queue, true);
        shared
            .parsed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(parsed);
    }
}

/// A helper counted in [`Shared::helping`] until it is dropped, on every
/// path (the loading thread waits for the count to reach zero).
struct Helping<'a>(&'a AtomicUsize);

impl<'a> Helping<'a> {
    fn new(count: &'a AtomicUsize) -> Helping<'a> {
        count.fetch_add(1, Ordering::SeqCst);
        Helping(count)
    }
}

impl Drop for Helping<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// [`load_versions_beside`], which the threads calling `help`'s
/// [`LoadHelp::help`] meanwhile join; the files they read have their
/// sections' checksums computed too (the caller verifies them).
pub fn load_versions_helped(
    versions: &Path,
    busy: usize,
    help: &LoadHelp,
) -> Result<RevisionMap, LoadError> {
    load(versions, busy, Some(help))
}

/// Loads with `busy` cores left to the caller; with `help`, helpers may
/// join, and every thread computes the checksums of what it parses.
fn load(versions: &Path, busy: usize, help: Option<&LoadHelp>) -> Result<RevisionMap, LoadError> {
    let checksums = help.is_some();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .saturating_sub(busy)
        .clamp(1, 8);
    let (tx, rx) = channel::<Vec<PathBuf>>();
    let shared = Arc::new(Shared {
        queue: Mutex::new(rx),
        parsed: Mutex::new(Vec::new()),
        helping: AtomicUsize::new(0),
    });
    if let Some(help) = help {
        *help.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&shared));
    }
    let rx = &shared.queue;
    let (listed, mut parts) = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..workers)
            .map(|_| scope.spawn(|| parse_batches(rx, checksums)))
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
        let mut parts = vec![parse_batches(rx, checksums)];
        for h in handles {
            parts.push(
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        (listed, parts)
    });
    // No helper joins from here; one still parsing its last batch is
    // waited for awake (a batch takes a fraction of a millisecond, as long
    // as waking a sleeping thread).
    if let Some(help) = help {
        *help.current.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
    while shared.helping.load(Ordering::SeqCst) > 0 {
        std::thread::yield_now();
    }
    parts.append(&mut shared.parsed.lock().unwrap_or_else(PoisonError::into_inner));
    listed?;
    let mut problems = Vec::new();
    let mut revisions = Vec::with_capacity(parts.len());
    for part in parts {
        problems.extend(part.problems);
        revisions.push(part.revisions);
    }
    problems.sort_by(|a, b| path_order(error_path(a), error_path(b)));
    if let Some(err) = LoadError::from_many(problems) {
        return Err(err);
    }
    // Put the revisions in path order. A revision is hundreds of bytes:
    // sort indexes, then move each revision within one vector along the
    // permutation's cycles, so that no second copy of the chain is made
    // (a thousand revisions fill 140 pages, each a page fault when first
    // written: 0.96x paired on `heads` and a no-op `upgrade`, BENCHMARKS.md).
    // Every path starts with `versions`: compare what follows.
    let mut all = join_parts(revisions);
    let skip = versions.as_os_str().len();
    let mut order: Vec<usize> = (0..all.len()).collect();
    order.sort_unstable_by(|&a, &b| sort_key(&all[a], skip).cmp(sort_key(&all[b], skip)));
    permute(&mut all, order);
    RevisionMap::new(all)
}

/// The threads' results as one vector: the largest grows (a large
/// allocation is remapped, not copied), and the others are moved in.
fn join_parts<T>(mut parts: Vec<Vec<T>>) -> Vec<T> {
    let Some(largest) = (0..parts.len()).max_by_key(|&i| parts[i].len()) else {
        return Vec::new();
    };
    let mut all = parts.swap_remove(largest);
    all.reserve(parts.iter().map(Vec::len).sum());
    for mut part in parts {
        all.append(&mut part);
    }
    all
}

/// Reorders `items` so that position `k` holds what was at `order[k]`
/// (`order` a permutation of the positions), moving items along the
/// permutation's cycles: no copy of `items` is made.
fn permute<T>(items: &mut [T], mut order: Vec<usize>) {
    for start in 0..items.len() {
        let mut at = start;
        // Each position is settled once: marked by pointing at itself.
        while order[at] != at {
            let from = order[at];
            order[at] = at;
            if from == start {
                break;
            }
            items.swap(at, from);
            at = from;
        }
    }
}

/// The bytes of a revision's path after the first `skip` (the versions folder).
fn sort_key(rev: &Revision, skip: usize) -> &[u8] {
    let path = rev.path.as_os_str().as_encoded_bytes();
    path.get(skip..).unwrap_or(path)
}

/// The file a loader's error is about.
fn error_path(e: &LoadError) -> &Path {
    match e {
        LoadError::Parse(e) => &e.path,
        LoadError::Io { path, .. } => path,
        _ => Path::new(""),
    }
}

/// Takes batches of paths until the lister is done, reading each file into
/// one reused buffer.
///
/// `fs::read` and `File::read_to_end` ask for the file's size first
/// (`statx`, `lseek`): on a 10,000-file chain that is a third of all system
/// calls. Reading into a reused buffer until end of file needs only `open`,
/// `read`, `read`, `close`.
fn parse_batches(rx: &Mutex<Receiver<Vec<PathBuf>>>, checksums: bool) -> Parsed {
    let mut out = Parsed {
        revisions: Vec::new(),
        problems: Vec::new(),
    };
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // A poisoned lock means another worker panicked; the scope re-raises it.
        let batch = match rx.lock().map(|r| r.recv()) {
            Ok(Ok(batch)) => batch,
            _ => break,
        };
        for path in batch {
            out.parse_file(path, &mut buf, checksums);
        }
    }
    out
}

/// What one thread read and parsed, in the order it took the files.
struct Parsed {
    revisions: Vec<Revision>,
    problems: Vec<LoadError>,
}

impl Parsed {
    /// Reads and parses a file into `revisions`, or its error into
    /// `problems`; with `checksums`, computes each section's checksum as
    /// well. A revision is 560 bytes: it is pushed where it is parsed, not
    /// handed back through `Result`s, each of which was a copy of it.
    fn parse_file(&mut self, path: PathBuf, buf: &mut Vec<u8>, checksums: bool) {
        let len = match read_to_end(&path, buf) {
            Ok(len) => len,
            Err(reason) => return self.problems.push(LoadError::Io { path, reason }),
        };
        match Revision::parse_owned(path, &buf[..len]) {
            Ok(rev) => self.revisions.push(rev),
            Err(e) => return self.problems.push(e.into()),
        }
        if !checksums {
            return;
        }
        // The checksums, of the revision in place once pushed.
        if let Some(rev) = self.revisions.last() {
            rev.upgrade.checksum();
            if let Some(d) = &rev.downgrade {
                d.checksum();
            }
        }
    }
}

/// Reads a whole file into `buf` (grown when the file is larger), and
/// returns its length.
fn read_to_end(path: &Path, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut file = std::fs::File::open(path)?;
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        match file.read(&mut buf[len..]) {
            Ok(0) => return Ok(len),
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(id: &str, down: &str) -> String {
        format!(
            "-- r\n-- revision: {id}\n-- down_revision: {down}\n-- alembic:upgrade\nSELECT 1;\n"
        )
    }

    /// Writes `m000` to `m<n-1>` into `v`, each on the one before, the
    /// first on `first_down`.
    fn linear(v: &Path, n: usize, first_down: &str) {
        for i in 0..n {
            let down = match i {
                0 => first_down.to_owned(),
                _ => format!("m{:03}", i - 1),
            };
            std::fs::write(
                v.join(format!("m{i:03}.sql")),
                rev(&format!("m{i:03}"), &down),
            )
            .unwrap();
        }
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
        linear(&v, 300, "r3");
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
        // Every broken file, in path order, whatever the number of workers,
        // and with a thread joining the load.
        let broken = |busy: usize, helped: bool| -> Vec<PathBuf> {
            let result = if helped {
                with_a_helper(|help| load_versions_helped(&v, busy, help))
            } else {
                load_versions_beside(&v, busy)
            };
            match result.unwrap_err() {
                LoadError::Many(problems) => problems
                    .into_iter()
                    .map(|p| error_path(&p).to_owned())
                    .collect(),
                other => panic!("{other}"),
            }
        };
        let expected: Vec<PathBuf> = [7, 57, 107, 157]
            .iter()
            .map(|i| v.join(format!("m{i:03}.sql")))
            .collect();
        for busy in [0, 1, usize::MAX] {
            for helped in [false, true] {
                assert_eq!(broken(busy, helped), expected, "busy = {busy}, {helped}");
            }
        }
    }

    /// Runs `load` while another thread keeps joining it through its
    /// [`LoadHelp`].
    fn with_a_helper<T>(load: impl FnOnce(&LoadHelp) -> T) -> T {
        let help = LoadHelp::default();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                while !done.load(Ordering::SeqCst) {
                    help.help();
                    std::thread::yield_now();
                }
            });
            let loaded = load(&help);
            done.store(true, Ordering::SeqCst);
            loaded
        })
    }

    /// A load that threads join gives the chain a load alone gives, in the
    /// same order, with every section's checksum computed.
    #[test]
    fn a_load_with_helpers_gives_the_same_chain_with_its_checksums() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("versions");
        std::fs::create_dir_all(&v).unwrap();
        linear(&v, 300, "None");
        let listed = |map: &RevisionMap| -> Vec<(String, PathBuf)> {
            map.revisions()
                .iter()
                .map(|r| (r.id.clone(), r.path.clone()))
                .collect()
        };
        let alone = load_versions_beside(&v, 1).unwrap();
        assert!(alone
            .revisions()
            .iter()
            .all(|r| r.upgrade.checksum.get().is_none()));
        for busy in [0, 1] {
            let helped = with_a_helper(|help| load_versions_helped(&v, busy, help)).unwrap();
            assert_eq!(listed(&helped), listed(&alone), "busy = {busy}");
            assert!(helped
                .revisions()
                .iter()
                .all(|r| r.upgrade.checksum.get().is_some()));
        }
    }

    /// A helper reads the batches no other thread took, with their
    /// checksums, and leaves no count behind; with no load in progress it
    /// returns at once.
    #[test]
    fn a_helper_reads_the_queued_batches_and_returns_when_none_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let v = dir.path().join("versions");
        std::fs::create_dir_all(&v).unwrap();
        for (name, down) in [("r1", "None"), ("r2", "r1"), ("r3", "r2")] {
            std::fs::write(v.join(format!("{name}.sql")), rev(name, down)).unwrap();
        }
        let help = LoadHelp::default();
        help.help();
        let (tx, rx) = channel();
        tx.send(vec![v.join("r1.sql"), v.join("r2.sql")]).unwrap();
        tx.send(vec![v.join("r3.sql")]).unwrap();
        drop(tx);
        let shared = Arc::new(Shared {
            queue: Mutex::new(rx),
            parsed: Mutex::new(Vec::new()),
            helping: AtomicUsize::new(0),
        });
        *help.current.lock().unwrap() = Some(Arc::clone(&shared));
        help.help();
        assert_eq!(shared.helping.load(Ordering::SeqCst), 0);
        let parsed = shared.parsed.lock().unwrap();
        assert!(parsed.iter().all(|p| p.problems.is_empty()));
        let revisions: Vec<&Revision> = parsed.iter().flat_map(|p| &p.revisions).collect();
        let ids: Vec<&str> = revisions.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["r1", "r2", "r3"]);
        assert!(revisions.iter().all(|r| r.upgrade.checksum.get().is_some()));
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

    proptest::proptest! {
        /// The threads' results, joined and put in order along the
        /// permutation's cycles, are what indexing a copy would give.
        #[test]
        fn joined_parts_put_in_order_in_place_are_what_a_copy_would_give(
            parts in proptest::collection::vec(proptest::collection::vec(0u32..1000, 0..40), 0..5),
            seed in proptest::prelude::any::<u64>(),
        ) {
            let flat: Vec<u32> = parts.iter().flatten().copied().collect();
            let mut all = join_parts(parts);
            let mut sorted_all = all.clone();
            sorted_all.sort_unstable();
            let mut sorted_flat = flat.clone();
            sorted_flat.sort_unstable();
            proptest::prop_assert_eq!(&sorted_all, &sorted_flat, "every item, once");
            // A shuffled permutation (a small LCG: no dependency).
            let mut order: Vec<usize> = (0..all.len()).collect();
            let mut x = seed | 1;
            for i in (1..order.len()).rev() {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                order.swap(i, (x >> 33) as usize % (i + 1));
            }
            let expected: Vec<u32> = order.iter().map(|&i| all[i]).collect();
            permute(&mut all, order);
            proptest::prop_assert_eq!(all, expected);
        }
    }
}
