//! A throwaway PostgreSQL: a server for a test run or a `verify`, and a
//! fresh database per test, all gone afterwards.
//!
//! Three providers behind one interface, picked by [`Choice`]:
//! 1. **an existing server** ([`Choice::Url`]): a uniquely named database
//!    is created on it and dropped afterwards;
//! 2. **local server binaries** ([`Choice::Local`]): `initdb` into a
//!    temporary folder (in memory, `/dev/shm`, when it has room and
//!    `TMPDIR` is not set), a private socket folder and a free port,
//!    `fsync=off`; as root it runs as the `postgres` user;
//! 3. **Docker** ([`Choice::Docker`], with the `docker` feature): a
//!    `postgres:17-alpine` container through testcontainers, used when a
//!    Docker daemon answers ([`docker_status`] probes it first).
//!
//! Cleanup does not depend on `Drop`: a local server runs under a small
//! supervisor that reads this process's pipe, and stops the server and
//! deletes its folder as soon as the pipe closes, which happens when this
//! process exits for any reason, SIGKILL included.
#![warn(missing_docs)]

use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What can go wrong starting a server or creating a database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No provider could be used; each reason is given.
    #[error("no PostgreSQL to use: {0}")]
    NoProvider(String),
    /// A server program failed.
    #[error("{program} failed: {detail}")]
    Program {
        /// The program (`initdb`, `postgres`, ...).
        program: String,
        /// Its output, or why it could not run.
        detail: String,
    },
    /// The server did not accept connections in time.
    #[error("PostgreSQL did not start within {0:?}: {1}")]
    Timeout(Duration, String),
    /// A SQL command on the server failed.
    #[error("{0}")]
    Sql(#[from] postgres::Error),
    /// A file operation failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A caller's [`Connector`] could not connect; its message.
    #[error("{0}")]
    Connect(String),
}

/// How to connect to an existing server's URL ([`Server::start_with`]):
/// the plain driver without TLS by default; a caller with its own URL
/// handling (libpq's TLS modes and `PG*` variables) passes its own.
pub type Connector = fn(&str) -> Result<postgres::Client, Error>;

/// The plain driver, without TLS: how the local and Docker servers are
/// reached.
pub fn plain(url: &str) -> Result<postgres::Client, Error> {
    Ok(postgres::Client::connect(url, postgres::NoTls)?)
}

/// Which provider to use. Its `Debug` form hides the URLs (they may hold a
/// password).
#[derive(Clone, PartialEq, Eq)]
pub enum Choice {
    /// The first that works: an existing server if a URL is given, local
    /// server binaries if found, Docker if a daemon answers.
    Auto(Option<String>),
    /// An existing server, reached with this URL (its user must be allowed
    /// to create databases).
    Url(String),
    /// Local server binaries.
    Local,
    /// Docker.
    Docker,
}

impl std::fmt::Debug for Choice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Choice::Auto(None) => f.write_str("Auto(None)"),
            Choice::Auto(Some(_)) => f.write_str("Auto(Some(<url hidden>))"),
            Choice::Url(_) => f.write_str("Url(<url hidden>)"),
            Choice::Local => f.write_str("Local"),
            Choice::Docker => f.write_str("Docker"),
        }
    }
}

/// A running server to create throwaway databases on.
pub struct Server {
    /// A URL of the server's maintenance database (`postgres`).
    admin_url: String,
    /// How its URLs are connected to.
    connect: Connector,
    /// Which provider, and why.
    description: String,
    local: Option<LocalServer>,
    /// The Docker container, removed when dropped.
    #[allow(dead_code)]
    container: Option<Box<dyn std::any::Any + Send + Sync>>,
}

/// The Postgres image the Docker provider runs.
pub const DOCKER_IMAGE: (&str, &str) = ("postgres", "17-alpine");

/// A database that is dropped when this value is.
pub struct Database {
    url: String,
    name: String,
    admin_url: String,
    connect: Connector,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Databases alive on existing servers: (admin URL, name, connector), for
/// cleanup on an interrupt (a local server cleans itself up).
type Live = (String, String, Connector);
static LIVE: std::sync::Mutex<Vec<Live>> = std::sync::Mutex::new(Vec::new());

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True once an interrupt is being handled: the process is about to exit
/// with 130 after the cleanup, so it should not finish on its own.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Makes Ctrl-C (and SIGTERM, SIGHUP) drop every throwaway database still
/// alive on an existing server, then exit with status 130. For programs
/// (the CLI's `verify`, `alembic-throwaway`), not libraries: it installs
/// the process's signal handler.
pub fn cleanup_on_interrupt() -> Result<(), Error> {
    ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::SeqCst);
        let live = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
        for (admin, name, connect) in live {
            drop_database(&admin, &name, connect);
        }
        std::process::exit(130);
    })
    .map_err(|e| Error::Program {
        program: "signal handler".into(),
        detail: e.to_string(),
    })
}

fn drop_database(admin_url: &str, name: &str, connect: Connector) {
    if let Ok(mut admin) = connect(admin_url) {
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}

impl Server {
    /// Starts (or reaches) a server with the chosen provider.
    pub fn start(choice: Choice) -> Result<Server, Error> {
        Server::start_with(choice, plain)
    }

    /// [`Server::start`], reaching an existing server (a URL) with
    /// `connect`.
    pub fn start_with(choice: Choice, connect: Connector) -> Result<Server, Error> {
        match choice {
            Choice::Url(url) => Server::existing(url, "the given server".to_owned(), connect),
            Choice::Local => Server::local(String::new()),
            Choice::Docker => match docker_status() {
                Ok(daemon) => Server::docker(daemon),
                Err(why) => Err(Error::NoProvider(why)),
            },
            Choice::Auto(Some(url)) => Server::existing(
                url,
                "the given server (a URL was given)".to_owned(),
                connect,
            ),
            Choice::Auto(None) => match (find_bindir(), docker_status()) {
                // Local binaries start fastest; Docker is the fallback.
                (Ok(_), _) => Server::local(
                    "; no URL was given; local binaries start faster than Docker".to_owned(),
                ),
                (Err(local), Ok(daemon)) => {
                    Server::docker(format!("{daemon}; no URL was given; {local}"))
                }
                (Err(local), Err(docker)) => Err(Error::NoProvider(format!(
                    "no URL was given (pass --database-url or set DATABASE_URL); {local}; {docker}"
                ))),
            },
        }
    }

    fn existing(url: String, why: String, connect: Connector) -> Result<Server, Error> {
        connect(&url)?.simple_query("SELECT 1")?;
        Ok(Server {
            admin_url: url,
            connect,
            description: format!("an existing server: {why}"),
            local: None,
            container: None,
        })
    }

    fn local(others: String) -> Result<Server, Error> {
        let bindir = find_bindir().map_err(Error::NoProvider)?;
        let started = Instant::now();
        let local = LocalServer::start(&bindir)?;
        let description = format!(
            "local server binaries from {} (started in {} ms, in {}{})",
            bindir.display(),
            started.elapsed().as_millis(),
            local.root().display(),
            others
        );
        Ok(Server {
            admin_url: local.url("postgres"),
            connect: plain,
            description,
            local: Some(local),
            container: None,
        })
    }

    #[cfg(feature = "docker")]
    fn docker(why: String) -> Result<Server, Error> {
        use testcontainers::core::{IntoContainerPort, WaitFor};
        use testcontainers::runners::SyncRunner;
        use testcontainers::{GenericImage, ImageExt};
        let started = Instant::now();
        let docker = |e: &dyn std::fmt::Display| Error::Program {
            program: "docker".into(),
            detail: e.to_string(),
        };
        // The image's entrypoint starts a server to initialise the cluster,
        // then the real one: each says it is ready.
        let ready = "database system is ready to accept connections";
        let container = GenericImage::new(DOCKER_IMAGE.0, DOCKER_IMAGE.1)
            .with_exposed_port(5432.tcp())
            .with_wait_for(WaitFor::message_on_stderr(ready))
            .with_wait_for(WaitFor::message_on_stdout(ready))
            .with_env_var("POSTGRES_USER", "postgres")
            .with_env_var("POSTGRES_PASSWORD", "postgres")
            .with_env_var("POSTGRES_DB", "postgres")
            .with_cmd(["-c", "fsync=off"])
            .start()
            .map_err(|e| docker(&e))?;
        let port = container.get_host_port_ipv4(5432).map_err(|e| docker(&e))?;
        let host = container.get_host().map_err(|e| docker(&e))?;
        // The URLs say there is no TLS, whatever PGSSLMODE says.
        let admin_url =
            format!("postgresql://postgres:postgres@{host}:{port}/postgres?sslmode=disable");
        // The container accepts connections a moment after it reports ready.
        let deadline = Instant::now() + Duration::from_secs(30);
        while postgres::Client::connect(&admin_url, postgres::NoTls).is_err() {
            if Instant::now() > deadline {
                return Err(Error::Timeout(
                    Duration::from_secs(30),
                    "the container's server does not answer".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let description = format!(
            "Docker: {}:{} via testcontainers (started in {} ms; {why})",
            DOCKER_IMAGE.0,
            DOCKER_IMAGE.1,
            started.elapsed().as_millis()
        );
        Ok(Server {
            admin_url,
            connect: plain,
            description,
            local: None,
            container: Some(Box::new(container)),
        })
    }

    #[cfg(not(feature = "docker"))]
    fn docker(why: String) -> Result<Server, Error> {
        Err(Error::NoProvider(format!(
            "{why}, but {NO_DOCKER_PROVIDER}"
        )))
    }

    /// Which provider is in use, and why the others were not.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// A URL of the server's maintenance database.
    pub fn admin_url(&self) -> &str {
        &self.admin_url
    }

    /// The server's data folder, for a local server.
    pub fn data_dir(&self) -> Option<&Path> {
        self.local.as_ref().map(|l| l.data.as_path())
    }

    /// Creates a fresh, uniquely named database.
    pub fn database(&self) -> Result<Database, Error> {
        let name = format!(
            "alembic_tmp_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            Instant::now().elapsed().subsec_nanos() % 100_000
        );
        let mut admin = (self.connect)(&self.admin_url)?;
        admin.batch_execute(&format!("CREATE DATABASE {name}"))?;
        if self.local.is_none() {
            if let Ok(mut live) = LIVE.lock() {
                live.push((self.admin_url.clone(), name.clone(), self.connect));
            }
        }
        Ok(Database {
            url: with_dbname(&self.admin_url, &name),
            name,
            admin_url: self.admin_url.clone(),
            connect: self.connect,
        })
    }
}

impl Database {
    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A new connection to the database.
    pub fn connect(&self) -> Result<postgres::Client, Error> {
        (self.connect)(&self.url)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        drop_database(&self.admin_url, &self.name, self.connect);
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|(_, n, _)| *n != self.name);
        }
    }
}

/// Replaces the database name in a URL (percent-encoded in its path) or a
/// key/value connection string (a later, quoted `dbname`: libpq takes the
/// last one).
pub fn with_dbname(url: &str, name: &str) -> String {
    let Some(rest) = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    else {
        return format!(
            "{url} dbname='{}'",
            name.replace('\\', "\\\\").replace('\'', "\\'")
        );
    };
    let scheme = &url[..url.len() - rest.len()];
    let (before_query, query) = rest
        .split_once('?')
        .map_or((rest, None), |(a, q)| (a, Some(q)));
    let authority = before_query
        .split_once('/')
        .map_or(before_query, |(a, _)| a);
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect();
    match query {
        Some(q) => format!("{scheme}{authority}/{encoded}?{q}"),
        None => format!("{scheme}{authority}/{encoded}"),
    }
}

/// Why Docker cannot be used by a build without the `docker` feature.
const NO_DOCKER_PROVIDER: &str =
    "this build has no Docker provider (it was built without the `docker` feature)";

/// What to do when no provider is available, for a command's help line:
/// Docker is named only when this build can use it.
pub fn how_to_get_a_server() -> &'static str {
    if cfg!(feature = "docker") {
        "install the PostgreSQL server (initdb, postgres), run Docker, or pass --database-url"
    } else {
        "install the PostgreSQL server (initdb, postgres) or pass --database-url; \
         Docker needs a build with the `docker` feature (`cargo install cargo-alembic` has it)"
    }
}

/// Whether a Docker daemon answers: `Ok(description)` or `Err(why not)`.
pub fn docker_status() -> Result<String, String> {
    if !cfg!(feature = "docker") {
        return Err(NO_DOCKER_PROVIDER.to_owned());
    }
    use std::io::Write;
    use std::os::unix::net::UnixStream;
    let socket = match std::env::var("DOCKER_HOST") {
        Ok(host) => match host.strip_prefix("unix://") {
            Some(path) => PathBuf::from(path),
            None => {
                return Err(format!(
                    "DOCKER_HOST={host} is not a unix socket, which is all this build probes"
                ))
            }
        },
        Err(_) => PathBuf::from("/var/run/docker.sock"),
    };
    let mut stream = UnixStream::connect(&socket)
        .map_err(|e| format!("no Docker daemon at {} ({e})", socket.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok();
    stream
        .write_all(b"GET /_ping HTTP/1.0\r\n\r\n")
        .map_err(|e| format!("Docker at {} did not answer ({e})", socket.display()))?;
    let mut reply = String::new();
    let _ = stream.read_to_string(&mut reply);
    if reply.ends_with("OK") {
        Ok(format!("a Docker daemon answers at {}", socket.display()))
    } else {
        Err(format!(
            "Docker at {} did not answer its ping",
            socket.display()
        ))
    }
}

/// Finds the server binaries: `pg_config --bindir`, then `PATH`, then
/// Debian's `/usr/lib/postgresql/<version>/bin` (newest first).
pub fn find_bindir() -> Result<PathBuf, String> {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_server(&dir) {
            return Ok(dir);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(dir) = std::env::split_paths(&path).find(|d| has_server(d)) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, d): &(u32, PathBuf)| has_server(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d).ok_or_else(|| {
        "no local PostgreSQL server binaries (initdb and postgres: not from pg_config --bindir, PATH or /usr/lib/postgresql/*/bin; \
         on Debian or Ubuntu: apt-get install postgresql)"
            .to_owned()
    })
}

/// A server started from local binaries.
struct LocalServer {
    data: PathBuf,
    socket_dir: PathBuf,
    port: u16,
    /// Closing this pipe makes the supervisor stop the server and clean up.
    stdin: Option<ChildStdin>,
    child: Child,
}

/// The supervisor: start the server, wait for our pipe to close, stop the
/// server, delete the folder.
const SUPERVISOR: &str = r#"
dir="$1"; shift
"$@" >"$dir/log" 2>&1 &
pid=$!
cat >/dev/null
kill -INT "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
rm -rf "$dir"
"#;

/// Where a local server's folder goes, and whether that is memory.
///
/// `initdb` writes about 1,500 files, and every table a migration creates
/// is two to four more; on a disk file system that is most of a throwaway
/// server's cost (on ext4, `initdb` took 0.70 s against 0.36 s in
/// `/dev/shm`, and a `verify` of 100 revisions 1.9 s against 1.3 s).
/// Nothing of a throwaway server needs to outlive it, so its folder goes
/// to `/dev/shm` when that is a memory file system with room, unless
/// `TMPDIR` names a folder (the user's choice, kept); else to the usual
/// temporary folder.
fn server_parent() -> (PathBuf, bool) {
    let tmpdir_set = std::env::var_os("TMPDIR").is_some_and(|v| !v.is_empty());
    match memory_folder(tmpdir_set, shm_room()) {
        Some(dir) => (dir, true),
        None => (std::env::temp_dir(), false),
    }
}

/// A memory file system needs this much room left for a server to go there.
const MIN_MEMORY_ROOM: u64 = 1 << 30;

/// The memory folder to use, given whether `TMPDIR` is set and the room
/// `/dev/shm` has (`None` when it is not a memory file system).
fn memory_folder(tmpdir_set: bool, shm_room: Option<u64>) -> Option<PathBuf> {
    match shm_room {
        Some(room) if !tmpdir_set && room >= MIN_MEMORY_ROOM => Some(PathBuf::from("/dev/shm")),
        _ => None,
    }
}

/// The room left in `/dev/shm`, if it is a memory file system (tmpfs).
#[cfg(target_os = "linux")]
fn shm_room() -> Option<u64> {
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    let fs = rustix::fs::statfs("/dev/shm").ok()?;
    #[allow(clippy::unnecessary_cast)]
    let (kind, free, block) = (fs.f_type as u64, fs.f_bavail as u64, fs.f_bsize as u64);
    (kind == TMPFS_MAGIC).then(|| free.saturating_mul(block))
}

#[cfg(not(target_os = "linux"))]
fn shm_room() -> Option<u64> {
    None
}

impl LocalServer {
    fn start(bindir: &Path) -> Result<LocalServer, Error> {
        let (parent, in_memory) = server_parent();
        let mut folders = vec![parent];
        if in_memory {
            // A memory folder that refuses us (permissions, the last room
            // taken while `initdb` wrote) is no reason to fail.
            folders.push(std::env::temp_dir());
        }
        Self::start_in_first(bindir, &folders)
    }

    /// A server in the first of `folders` where one starts; else the last
    /// one's error.
    fn start_in_first(bindir: &Path, folders: &[PathBuf]) -> Result<LocalServer, Error> {
        let mut failed = None;
        for folder in folders {
            match Self::root_in(folder).and_then(|root| Self::start_in(bindir, root)) {
                Ok(server) => return Ok(server),
                Err(e) => failed = Some(e),
            }
        }
        Err(failed.unwrap_or_else(|| Error::NoProvider("no folder for a local server".into())))
    }

    fn root_in(parent: &Path) -> Result<PathBuf, Error> {
        Ok(tempfile::Builder::new()
            .prefix("alembic-pg-")
            .tempdir_in(parent)?
            .keep())
    }

    /// Starts a server whose folder is `root` (new and empty); the
    /// supervisor deletes it when the server stops.
    fn start_in(bindir: &Path, root: PathBuf) -> Result<LocalServer, Error> {
        let data = root.join("data");
        let socket_dir = root.join("sock");
        std::fs::create_dir(&socket_dir)?;
        // initdb refuses to run as root: run the server programs as an
        // unprivileged user that owns the folder.
        let as_user = match std::fs::metadata("/proc/self").map(|m| m.uid()) {
            Ok(0) => Some(unprivileged_user()?),
            _ => None,
        };
        if let Some((_, uid, gid)) = &as_user {
            for path in [&root, &socket_dir] {
                std::os::unix::fs::chown(path, Some(*uid), Some(*gid))?;
            }
        }
        let command = |program: &Path| -> Command {
            match &as_user {
                Some((name, _, _)) => {
                    let mut c = Command::new("runuser");
                    c.args(["-u", name, "--"]).arg(program);
                    c
                }
                None => Command::new(program),
            }
        };
        let out = command(&bindir.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Program {
                program: "initdb".into(),
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&root);
            return Err(Error::Program {
                program: "initdb".into(),
                detail: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            });
        }
        let port = free_port()?;
        let mut sh = command(Path::new("/bin/sh"));
        sh.arg("-c")
            .arg(SUPERVISOR)
            .arg("sh")
            .arg(&root)
            .arg(bindir.join("postgres"));
        sh.arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(&socket_dir)
            .args(["-p", &port.to_string()]);
        for setting in [
            "listen_addresses=127.0.0.1",
            "fsync=off",
            "synchronous_commit=off",
            "full_page_writes=off",
            "max_connections=200",
        ] {
            sh.args(["-c", setting]);
        }
        let mut child = sh
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = child.stdin.take();
        let server = LocalServer {
            data,
            socket_dir,
            port,
            stdin,
            child,
        };
        // On failure, dropping `server` closes the pipe: the supervisor cleans up.
        server.wait_ready(Duration::from_secs(30))?;
        Ok(server)
    }

    /// The folder holding the data folder, the socket folder and the log.
    fn root(&self) -> &Path {
        self.data.parent().unwrap_or(&self.data)
    }

    fn url(&self, dbname: &str) -> String {
        // No TLS, whatever PGSSLMODE says.
        format!(
            "postgresql://postgres@127.0.0.1:{}/{dbname}?sslmode=disable",
            self.port
        )
    }

    fn wait_ready(&self, limit: Duration) -> Result<(), Error> {
        let start = Instant::now();
        let conninfo = format!(
            "host={} port={} user=postgres dbname=postgres connect_timeout=2",
            self.socket_dir.display(),
            self.port
        );
        loop {
            match postgres::Client::connect(&conninfo, postgres::NoTls) {
                Ok(_) => return Ok(()),
                Err(e) if start.elapsed() > limit => {
                    return Err(Error::Timeout(limit, e.to_string()))
                }
                Err(_) => {}
            }
            let log = std::fs::read_to_string(self.root().join("log")).unwrap_or_default();
            // Connection attempts during start-up log "the database system is
            // starting up": only a failure of the server itself ends the wait.
            if [
                "could not bind",
                "could not create",
                "lock file",
                "PANIC",
                "invalid value for parameter",
            ]
            .iter()
            .any(|m| log.contains(m))
            {
                return Err(Error::Program {
                    program: "postgres".into(),
                    detail: log.trim().to_owned(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // The supervisor stops the server (fast shutdown) and deletes the
        // folder; wait a little for it so that callers see a clean state.
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// The `postgres` user (or `nobody`), for running the server as root.
fn unprivileged_user() -> Result<(String, u32, u32), Error> {
    for name in ["postgres", "nobody"] {
        let uid = Command::new("id").args(["-u", name]).output();
        let gid = Command::new("id").args(["-g", name]).output();
        if let (Ok(uid), Ok(gid)) = (uid, gid) {
            let parse = |o: &std::process::Output| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<u32>()
                    .ok()
            };
            if let (true, Some(u), Some(g)) = (uid.status.success(), parse(&uid), parse(&gid)) {
                return Ok((name.to_owned(), u, g));
            }
        }
    }
    Err(Error::NoProvider(
        "running as root, and there is no `postgres` or `nobody` user to run the server as".into(),
    ))
}

fn free_port() -> Result<u16, Error> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A build without the Docker provider says so, rather than sending
    /// people to start a Docker daemon it cannot use; its help line does
    /// not name Docker either. (`cargo test --workspace` builds this crate
    /// with the feature; `cargo test -p alembic-throwaway --lib` without.)
    #[test]
    fn the_docker_probe_and_the_help_name_what_this_build_has() {
        if cfg!(feature = "docker") {
            assert!(how_to_get_a_server().contains("run Docker"));
        } else {
            let why = docker_status().unwrap_err();
            assert!(why.contains("no Docker provider"), "{why}");
            assert!(!how_to_get_a_server().contains("run Docker"));
            let err = Server::start(Choice::Docker).err().expect("no provider");
            assert!(err.to_string().contains("no Docker provider"), "{err}");
        }
    }

    #[test]
    fn dbname_in_urls() {
        assert_eq!(
            with_dbname("postgresql://u:p@h:5432/postgres", "x"),
            "postgresql://u:p@h:5432/x"
        );
        assert_eq!(
            with_dbname("postgres://u@h/db?sslmode=require", "x"),
            "postgres://u@h/x?sslmode=require"
        );
        assert_eq!(with_dbname("postgresql://h", "x"), "postgresql://h/x");
        assert_eq!(
            with_dbname("host=h user=u dbname=postgres", "x"),
            "host=h user=u dbname=postgres dbname='x'"
        );
        // Names a fleet found on a server: any text.
        assert_eq!(
            with_dbname("postgresql://h/db", "a b'c/é"),
            "postgresql://h/a%20b%27c%2F%C3%A9"
        );
        assert_eq!(
            with_dbname("host=h", "a b'c\\"),
            "host=h dbname='a b\\'c\\\\'"
        );
    }

    #[test]
    fn local_server_databases_and_cleanup() {
        let server = Server::start(Choice::Local).unwrap();
        let data = server.data_dir().unwrap().to_owned();
        assert!(
            server
                .description()
                .starts_with("local server binaries from "),
            "{}",
            server.description()
        );
        let a = server.database().unwrap();
        let b = server.database().unwrap();
        assert_ne!(a.name(), b.name());
        let mut client = a.connect().unwrap();
        client
            .batch_execute("CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
            .unwrap();
        let n: i64 = b
            .connect()
            .unwrap()
            .query_one("SELECT count(*) FROM pg_tables WHERE tablename = 't'", &[])
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "databases are separate");
        drop(client);
        let name = a.name().to_owned();
        drop(a);
        let mut admin = postgres::Client::connect(server.admin_url(), postgres::NoTls).unwrap();
        let left: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&name],
            )
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "a dropped Database is gone");
        drop(admin);
        drop(b);
        drop(server);
        assert!(!data.exists(), "the server's folder is deleted");
    }

    #[test]
    fn a_server_folder_goes_to_memory_only_with_room_and_no_tmpdir() {
        let gib = 1 << 30;
        let shm = Some(PathBuf::from("/dev/shm"));
        assert_eq!(memory_folder(false, Some(8 * gib)), shm);
        assert_eq!(memory_folder(false, Some(gib)), shm);
        // Docker's default /dev/shm is 64 MB: not enough for a server.
        assert_eq!(memory_folder(false, Some(64 << 20)), None);
        // TMPDIR is the user's choice of folder.
        assert_eq!(memory_folder(true, Some(8 * gib)), None);
        // Not a memory file system (or none at all).
        assert_eq!(memory_folder(false, None), None);
    }

    /// The default server's folder is where `server_parent` says (memory
    /// when there is room, on this machine's CI and GitHub's runners), and
    /// a server in the usual temporary folder on disk, the fallback, works
    /// and is cleaned up the same way.
    #[test]
    fn local_servers_in_memory_and_on_disk() {
        let (parent, in_memory) = server_parent();
        let server = Server::start(Choice::Local).unwrap();
        let data = server.data_dir().unwrap().to_owned();
        assert!(data.starts_with(&parent), "{data:?} not in {parent:?}");
        assert!(
            server
                .description()
                .contains(&format!("in {}", parent.display())),
            "{}",
            server.description()
        );
        if in_memory {
            assert!(shm_room().is_some());
        }
        drop(server);
        assert!(!data.exists());

        // A folder that fails is passed over for the next.
        let bindir = find_bindir().unwrap();
        let missing = PathBuf::from("/nonexistent/alembic-throwaway");
        let folders = [missing.clone(), std::env::temp_dir()];
        let disk = LocalServer::start_in_first(&bindir, &folders).unwrap();
        let root = disk.root().to_owned();
        assert!(root.starts_with(std::env::temp_dir()));
        assert!(matches!(
            LocalServer::start_in_first(&bindir, &[missing]),
            Err(Error::Io(_))
        ));
        let mut client = postgres::Client::connect(&disk.url("postgres"), postgres::NoTls).unwrap();
        client.batch_execute("CREATE TABLE t (id int)").unwrap();
        drop(client);
        drop(disk);
        assert!(!root.exists(), "the folder on disk is deleted too");
    }

    #[test]
    fn existing_server_provider() {
        let local = Server::start(Choice::Local).unwrap();
        let server = Server::start(Choice::Url(local.admin_url().to_owned())).unwrap();
        assert!(server.description().starts_with("an existing server"));
        let db = server.database().unwrap();
        db.connect().unwrap().batch_execute("SELECT 1").unwrap();
    }
}
