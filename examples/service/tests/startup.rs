//! The example service's release story against a real PostgreSQL: many
//! replicas starting at once, a replica killed in the middle of a revision,
//! an applied revision edited and rebuilt, files added and removed, and a
//! database shared with `cargo alembic` in both directions.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use alembic_throwaway::{Choice, Database, Server};
use clap::Parser;

const HEAD: &str = "f0d9b4e1a2c3";
const SERVICE: &str = env!("CARGO_BIN_EXE_example-service");

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(Choice::Local).expect("a throwaway PostgreSQL"))
}

fn db() -> Database {
    server().database().expect("a fresh database")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn service(binary: &Path, url: &str, args: &[&str]) -> Command {
    let mut c = Command::new(binary);
    c.args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn text(out: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run_ok(binary: &Path, url: &str, args: &[&str]) -> Output {
    let out = service(binary, url, args).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    out
}

fn rows(client: &mut postgres::Client, sql: &str) -> Vec<String> {
    let mut v: Vec<String> = client
        .query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    v.sort();
    v
}

/// `cargo alembic ...` in this process, through the CLI's own entry point.
fn cargo_alembic(url: &str, script_location: &Path, args: &[&str]) -> Result<(), String> {
    cargo_alembic_exit(url, script_location, args).map_err(|(_, message)| message)
}

/// [`cargo_alembic`], failing with the exit code and the message.
fn cargo_alembic_exit(
    url: &str,
    script_location: &Path,
    args: &[&str],
) -> Result<(), (u8, String)> {
    let location = script_location.display().to_string();
    let mut argv = vec![
        "cargo-alembic",
        "--database-url",
        url,
        "--script-location",
        &location,
    ];
    argv.extend_from_slice(args);
    let cli = cargo_alembic::Cli::try_parse_from(argv).map_err(|e| (2, e.to_string()))?;
    cargo_alembic::run(cli).map_err(|e| (e.exit_code(), e.to_string()))
}

/// Also guards against a deadlock: the chain has a `CREATE INDEX
/// CONCURRENTLY`, which waits for every session holding a snapshot, so the
/// replicas waiting for the lock must not wait inside a statement.
#[test]
fn sixteen_replicas_starting_at_once_apply_each_revision_once() {
    let db = db();
    let children: Vec<Child> = (0..16)
        .map(|_| service(Path::new(SERVICE), db.url(), &[]).spawn().unwrap())
        .collect();
    let outputs: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let mut ran = Vec::new();
    for out in &outputs {
        assert_eq!(out.status.code(), Some(0), "{}", text(out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("serving with the database at {HEAD}")),
            "{stderr}"
        );
        ran.extend(
            stderr
                .lines()
                .filter(|l| l.contains("Running upgrade"))
                .map(str::to_owned),
        );
    }
    // Ten revisions, each run by exactly one replica.
    assert_eq!(ran.len(), 10, "{ran:#?}");
    let mut c = db.connect().unwrap();
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        [HEAD]
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT count(*)::text FROM alembic_version_ledger WHERE status = 'applied'"
        ),
        ["10"]
    );
    // No replica holds the lock any more.
    assert_eq!(rows(&mut c, &advisory_locks(&db, "")), ["0"]);
}

/// Counts the advisory locks in `db` (the tests share one server).
fn advisory_locks(db: &Database, and: &str) -> String {
    format!(
        "SELECT count(*)::text FROM pg_locks l JOIN pg_database d ON d.oid = l.database \
         WHERE l.locktype = 'advisory' AND d.datname = '{}' {and}",
        db.name()
    )
}

/// Polls `sql` until it returns `want`, for up to 30 seconds.
fn wait_for(client: &mut postgres::Client, sql: &str, want: &str) {
    let started = Instant::now();
    loop {
        if rows(client, sql) == [want] {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited 30 s for `{sql}` to return {want}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_replica_killed_in_the_middle_of_a_revision_leaves_the_last_committed_state() {
    let db = db();
    run_ok(
        Path::new(SERVICE),
        db.url(),
        &["migrate", "upgrade", "d2b1"],
    );
    // Hold `accounts` so that the next revision (memberships, with a
    // foreign key to it) stops half way, as a long revision would.
    let mut blocker = db.connect().unwrap();
    blocker
        .batch_execute("BEGIN; LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let mut watcher = db.connect().unwrap();
    let mut child = service(Path::new(SERVICE), db.url(), &[]).spawn().unwrap();
    let waiting = format!(
        "SELECT count(*)::text FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock'",
        db.name()
    );
    wait_for(&mut watcher, &waiting, "1");
    // The replica holds the migration lock and is inside a revision.
    assert_eq!(
        rows(&mut watcher, &advisory_locks(&db, "AND granted")),
        ["1"]
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    blocker.batch_execute("ROLLBACK").unwrap();
    // The server notices the dead client, rolls its transaction back and
    // releases its lock.
    wait_for(&mut watcher, &advisory_locks(&db, ""), "0");
    assert_eq!(
        rows(&mut watcher, "SELECT version_num FROM alembic_version"),
        ["d2b1f6c3e4a5"]
    );
    assert_eq!(
        rows(
            &mut watcher,
            "SELECT (to_regclass('memberships') IS NULL)::text"
        ),
        ["true"]
    );
    assert_eq!(
        rows(&mut watcher, "SELECT revision FROM alembic_version_ledger"),
        ["c1a0e5b2d3f4", "d2b1f6c3e4a5"]
    );
    // The next start finishes the job.
    let out = run_ok(Path::new(SERVICE), db.url(), &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("database at {HEAD}")));
    assert_eq!(
        rows(&mut watcher, "SELECT version_num FROM alembic_version"),
        [HEAD]
    );
}

#[test]
fn a_database_is_shared_with_cargo_alembic_in_both_directions() {
    let migrations = workspace().join("migrations");
    let binary = Path::new(SERVICE);

    // The binary migrates; cargo alembic takes over.
    let db1 = db();
    run_ok(binary, db1.url(), &[]);
    cargo_alembic(db1.url(), &migrations, &["current"]).unwrap();
    cargo_alembic(db1.url(), &migrations, &["downgrade", "a5e4"]).unwrap();
    cargo_alembic(db1.url(), &migrations, &["upgrade", "head"]).unwrap();
    let mut c = db1.connect().unwrap();
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        [HEAD]
    );
    let tools = rows(&mut c, "SELECT DISTINCT tool FROM alembic_version_ledger");
    let v = env!("CARGO_PKG_VERSION");
    assert_eq!(
        tools,
        [
            format!("cargo-alembic {v}"),
            format!("example-service {v} (alembic-embed {v})")
        ]
    );

    // cargo alembic migrates part way; the binary finishes and agrees.
    let db2 = db();
    cargo_alembic(db2.url(), &migrations, &["upgrade", "e3c2"]).unwrap();
    let out = run_ok(binary, db2.url(), &["migrate", "current"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "e3c2a7d4f5b6\n");
    run_ok(binary, db2.url(), &[]);
    let out = run_ok(binary, db2.url(), &["migrate", "history", "-i"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout
            .lines()
            .next()
            .unwrap()
            .contains(&format!("{HEAD} (audit) (head) (current)")),
        "{stdout}"
    );
    cargo_alembic(db2.url(), &migrations, &["current"]).unwrap();
    cargo_alembic(db2.url(), &migrations, &["downgrade", "base"]).unwrap();
    let mut c = db2.connect().unwrap();
    assert!(rows(&mut c, "SELECT version_num FROM alembic_version").is_empty());
}

#[test]
fn migrate_commands_take_the_arguments_of_cargo_alembic() {
    let binary = Path::new(SERVICE);
    let db = db();
    let out = run_ok(binary, db.url(), &["migrate", "upgrade", "a5e4"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Running upgrade  -> c1a0e5b2d3f4, create accounts"),
        "{stdout}"
    );
    assert!(stdout.contains("Done: 5 revisions"), "{stdout}");
    let out = run_ok(binary, db.url(), &["migrate", "downgrade", "-1"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("the database is at f4d3b8e5a6c7"));
    // Offline SQL, as `cargo alembic upgrade --sql`: no database needed.
    let out = run_ok(binary, "", &["migrate", "upgrade", "--sql", "base:d2b1"]);
    let sql = String::from_utf8_lossy(&out.stdout);
    assert!(
        sql.starts_with("CREATE TABLE IF NOT EXISTS alembic_version ("),
        "{sql}"
    );
    assert!(
        sql.contains("INSERT INTO alembic_version (version_num) VALUES ('c1a0e5b2d3f4');"),
        "{sql}"
    );
    assert!(sql.contains("UPDATE alembic_version SET version_num = 'd2b1f6c3e4a5' WHERE version_num = 'c1a0e5b2d3f4';"), "{sql}");
    assert!(sql.trim_end().ends_with("COMMIT;"), "{sql}");
    // Bad usage is exit 2; a failed operation exit 1.
    let out = service(binary, db.url(), &["migrate", "downgrade", "--sql", "head"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    for command in ["upgrade", "downgrade"] {
        let out = service(binary, db.url(), &["migrate", command, "base:d2b1"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("a range `from:to` needs --sql"),
            "{}",
            text(&out)
        );
    }
    let out = service(binary, db.url(), &["migrate", "upgrade", "@@"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = service(binary, db.url(), &["migrate", "upgrade", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such revision or branch `nope`"),
        "{}",
        text(&out)
    );
    let out = service(
        binary,
        "postgresql://127.0.0.1:1/none",
        &["migrate", "current"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let out = Command::new(binary)
        .args(["migrate", "current"])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// One mapping from error to exit code: the same error ends `cargo alembic`
/// and the service's own `migrate` with the same code.
#[test]
fn cargo_alembic_and_the_embedded_migrate_exit_alike_for_each_error() {
    let migrations = workspace().join("migrations");
    let binary = Path::new(SERVICE);
    let db = db();
    let cases: Vec<(&str, &[&str], u8)> = vec![
        ("postgresql://127.0.0.1/db?sslmode=bogus", &["current"], 2),
        (
            "postgresql://127.0.0.1/db?sslrootcert=%e9%",
            &["current"],
            2,
        ),
        ("postgresql://127.0.0.1:1/none", &["current"], 1),
        (db.url(), &["upgrade", "nope"], 1),
        (db.url(), &["upgrade", "@@"], 2),
        (db.url(), &["downgrade", "--sql", "head"], 2),
    ];
    for (url, args, code) in &cases {
        let cli_code = cargo_alembic_exit(url, &migrations, args).map_or_else(|(c, _)| c, |()| 0);
        let mut migrate = vec!["migrate"];
        migrate.extend_from_slice(args);
        let out = service(binary, url, &migrate).output().unwrap();
        assert_eq!(
            (cli_code, out.status.code()),
            (*code, Some(i32::from(*code))),
            "{url} {args:?}: the service:\n{}",
            text(&out)
        );
    }
}
