//! End-to-end tests of the commands that use a database, against a real
//! PostgreSQL: one throwaway server for this test binary, a fresh database
//! per test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use alembic_throwaway::{Choice, Database, Server};

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(Choice::Local).expect("a throwaway PostgreSQL"))
}

fn db() -> Database {
    server().database().expect("a fresh database")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn alembic(dir: &Path, args: &[&str]) -> Output {
    alembic_with(dir, args, &[])
}

/// [`alembic`] with these environment variables set.
fn alembic_with(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-alembic"))
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .envs(vars.iter().copied())
        .output()
        .expect("run cargo-alembic")
}

/// Runs `cargo-alembic --database-url URL <args>` on this workspace's chain.
fn on(url: &str, args: &[&str]) -> Output {
    let mut all = vec!["--database-url", url];
    all.extend_from_slice(args);
    alembic(&workspace(), &all)
}

fn text(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

macro_rules! snapshot {
    ($name:expr, $out:expr) => {
        insta::with_settings!({
            prepend_module_to_snapshot => false,
            omit_expression => true,
            filters => vec![(r"\(\d+ ms\)", "(N ms)"), (r"in \d+ ms;", "in N ms;"), (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"), (r"alembic_tmp_\w+", "DB")],
        }, {
            insta::assert_snapshot!($name, text(&$out));
        })
    };
}

/// Alembic's `ensure_version` and `current --check-heads`.
#[test]
fn ensure_version_and_current_check_heads() {
    let db = db();
    let url = db.url();
    let run = |args: &[&str]| on(url, args);
    let sql = ok(run(&["ensure_version", "--sql"]));
    assert!(
        sql.starts_with("CREATE TABLE IF NOT EXISTS alembic_version ("),
        "{sql}"
    );
    ok(run(&["ensure_version"]));
    // The tables are there and empty: the database is at base.
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["current", "--format", "json"]).stdout).unwrap();
    assert_eq!(json["heads"], serde_json::json!([]));
    let behind = run(&["current", "--check-heads"]);
    assert_eq!(behind.status.code(), Some(1), "{}", text(&behind));
    assert!(
        text(&behind)
            .contains("not on all head revisions: it is at base, the heads are f0d9b4e1a2c3"),
        "{}",
        text(&behind)
    );
    ok(run(&["upgrade"]));
    ok(run(&["current", "-c"]));
    // On a database that has them, it changes nothing.
    ok(run(&["ensure_version"]));
    ok(run(&["current", "-c"]));
}

/// Alembic's `stamp a b` writes rows of which one is below the other; an
/// upgrade refuses to start from them (as Alembic's does), but `current`
/// must still show them. It failed with the upgrade's refusal.
#[test]
fn current_shows_a_version_table_whose_rows_overlap() {
    let db = db();
    let url = db.url();
    let run = |args: &[&str]| on(url, args);
    ok(run(&["stamp", "--purge", "d2b1", "c1a0"]));
    let current = ok(run(&["current"]));
    assert!(current.contains("c1a0e5b2d3f4\n"), "{current}");
    assert!(current.contains("d2b1f6c3e4a5\n"), "{current}");
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["current", "--format", "json"]).stdout).unwrap();
    assert_eq!(
        json["heads"],
        serde_json::json!(["c1a0e5b2d3f4", "d2b1f6c3e4a5"])
    );
    let upgrade = run(&["upgrade"]);
    assert_eq!(upgrade.status.code(), Some(1), "{}", text(&upgrade));
    assert!(
        text(&upgrade).contains("overlaps with c1a0e5b2d3f4"),
        "{}",
        text(&upgrade)
    );
}

#[test]
fn upgrade_current_history_downgrade_stamp() {
    let db = db();
    let url = db.url();
    let ws = workspace();
    let run = |args: &[&str]| on(url, args);
    snapshot!("db_upgrade_head", run(&["upgrade"]));
    snapshot!("db_current", run(&["current"]));
    snapshot!("db_upgrade_again", run(&["upgrade", "head"]));
    snapshot!("db_downgrade_one", run(&["downgrade", "-1"]));
    let history = ok(run(&["history", "-i", "-r", "e3c2:"]));
    assert!(
        history.contains("-> e9c8a3d0f1b2 (audit) (current) (mergepoint), merge"),
        "{history}"
    );
    // `current` in a range and `show current` read the database, as in
    // Alembic.
    assert_eq!(
        ok(run(&["history", "-r", "current:"])),
        "e9c8a3d0f1b2 -> f0d9b4e1a2c3 (audit) (head), project activity view\n\
         a5e4c9f6b7d8, d8b7f2c9e0a1 -> e9c8a3d0f1b2 (audit) (mergepoint), merge the audit branch into the trunk\n"
    );
    // `edit current` opens the database's revisions, as Alembic's does.
    let edited = Command::new(env!("CARGO_BIN_EXE_cargo-alembic"))
        .args(["--database-url", url, "edit", "current"])
        .current_dir(&ws)
        .env("EDITOR", "echo")
        .env_remove("VISUAL")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&edited.stdout),
        "migrations/versions/e9c8a3d0f1b2_merge_audit_into_trunk.sql\n",
        "{}",
        text(&edited)
    );
    let shown = ok(run(&["show", "current"]));
    assert!(
        shown.starts_with("Rev: e9c8a3d0f1b2 (mergepoint)\n"),
        "{shown}"
    );
    // Alembic unwinds `audit@base` from the root: refused by design, with
    // the command that removes only the branch, which then does.
    snapshot!(
        "db_downgrade_branch_base",
        run(&["downgrade", "audit@base"])
    );
    snapshot!(
        "db_downgrade_branch",
        run(&["downgrade", "audit@e3c2a7d4f5b6"])
    );
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["current", "--format", "json"]).stdout).unwrap();
    assert_eq!(json["heads"], serde_json::json!(["a5e4c9f6b7d8"]));
    assert_eq!(json["applied"], 5);
    snapshot!("db_stamp_head", run(&["stamp", "head"]));
    // The stamped revisions have no ledger row: reported, not an error.
    let current = run(&["current"]);
    assert_eq!(current.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&current.stderr)
            .contains("without a ledger row, not verified: b6f5d0a7c8e9"),
        "{}",
        text(&current)
    );
    // The stamped revisions never ran: stamp back before downgrading.
    assert!(String::from_utf8_lossy(&run(&["downgrade", "base"]).stderr)
        .contains("relation \"project_activity\" does not exist"));
    ok(run(&["stamp", "a5e4"]));
    ok(run(&["downgrade", "base"]));
    assert_eq!(ok(run(&["current"])), "");
}

#[test]
fn failing_sql_names_file_and_line_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let versions = dir.path().join("db/versions");
    std::fs::create_dir_all(&versions).unwrap();
    std::fs::write(
        versions.join("a1_broken.sql"),
        "-- broken\n-- revision: a1\n-- down_revision: None\n\n-- alembic:upgrade\nCREATE TABLE good (id int);\nCREATE TABEL bad (id int);\n",
    )
    .unwrap();
    let db = db();
    let out = alembic(
        dir.path(),
        &[
            "--script-location",
            "db",
            "--database-url",
            db.url(),
            "upgrade",
        ],
    );
    snapshot!("db_failing_sql", out);
}

#[test]
fn an_upgrade_waits_for_another_migrators_lock_and_says_so() {
    use std::io::BufRead as _;
    let db = db();
    let mut holder = db.connect().unwrap();
    let key = alembic_embed::cli_engine::Settings::default().lock_key_sql();
    holder
        .batch_execute(&format!("SELECT pg_advisory_lock({key})"))
        .unwrap();
    let migrations = workspace().join("migrations");
    let mut child = Command::new(env!("CARGO_BIN_EXE_cargo-alembic"))
        .arg("--script-location")
        .arg(&migrations)
        .args(["--database-url", db.url(), "upgrade", "head"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert_eq!(
        line,
        "note: another migrator holds the lock of this version table: waiting for it\n"
    );
    // It waits without having touched anything.
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(child.try_wait().unwrap().is_none());
    assert!(holder
        .query(
            "SELECT 1 FROM pg_tables WHERE tablename = 'alembic_version'",
            &[]
        )
        .unwrap()
        .is_empty());
    holder
        .batch_execute(&format!("SELECT pg_advisory_unlock({key})"))
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    let head: String = holder
        .query_one("SELECT version_num FROM alembic_version", &[])
        .unwrap()
        .get(0);
    assert_eq!(head, "f0d9b4e1a2c3");
}

#[test]
fn eight_processes_at_once_apply_each_revision_exactly_once() {
    // Each revision counts its own runs in a table.
    let dir = tempfile::tempdir().unwrap();
    let versions = dir.path().join("db/versions");
    std::fs::create_dir_all(&versions).unwrap();
    let mut down = "None".to_owned();
    for n in 0..20 {
        let id = format!("r{n:02}");
        let create = if n == 0 {
            "CREATE TABLE runs (revision text NOT NULL);\n"
        } else {
            ""
        };
        std::fs::write(
            versions.join(format!("{id}.sql")),
            format!(
                "-- revision {n}\n-- revision: {id}\n-- down_revision: {down}\n\n-- alembic:upgrade\n{create}INSERT INTO runs VALUES ('{id}');\nSELECT pg_sleep(0.01);\n\n-- alembic:downgrade\nDELETE FROM runs WHERE revision = '{id}';\n"
            ),
        )
        .unwrap();
        down = id;
    }
    let db = db();
    // Start them truly at once.
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let cwd = dir.path().to_owned();
            let url = db.url().to_owned();
            std::thread::spawn(move || {
                Command::new(env!("CARGO_BIN_EXE_cargo-alembic"))
                    .args([
                        "--script-location",
                        "db",
                        "--database-url",
                        &url,
                        "upgrade",
                        "head",
                    ])
                    .current_dir(cwd)
                    .output()
                    .unwrap()
            })
        })
        .collect();
    for h in handles {
        let out = h.join().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let mut c = db.connect().unwrap();
    let counts: Vec<(String, i64)> = c
        .query(
            "SELECT revision, count(*) FROM runs GROUP BY revision ORDER BY revision",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(counts.len(), 20);
    assert!(counts.iter().all(|(_, n)| *n == 1), "{counts:?}");
    let ledger: i64 = c
        .query_one("SELECT count(*) FROM alembic_version_ledger", &[])
        .unwrap()
        .get(0);
    assert_eq!(ledger, 20);
}

/// A role logging in with `password` to `db`, by SCRAM over each of
/// `kinds` of connection (`host`: TCP from 127.0.0.1; `local`: the socket).
fn password_role(db: &Database, role: &str, password: &str, kinds: &[&str]) {
    let mut admin = db.connect().unwrap();
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE {role} LOGIN PASSWORD '{password}'; END IF; END $$;\
             GRANT ALL ON DATABASE {} TO {role}; GRANT ALL ON SCHEMA public TO {role};",
            db.name()
        ))
        .unwrap();
    let hba = server().data_dir().unwrap().join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).unwrap();
    if !old.contains(role) {
        let lines: String = kinds
            .iter()
            .map(|kind| match *kind {
                "local" => format!("local all {role} scram-sha-256\n"),
                _ => format!("host all {role} 127.0.0.1/32 scram-sha-256\n"),
            })
            .collect();
        std::fs::write(&hba, format!("{lines}{old}")).unwrap();
        admin.batch_execute("SELECT pg_reload_conf()").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The port of a throwaway server's URL.
fn port_of(url: &str) -> String {
    let (authority, _) = url.rsplit_once('/').unwrap();
    authority.rsplit(':').next().unwrap().to_owned()
}

/// The folder of the throwaway server's socket.
fn socket_folder() -> PathBuf {
    server().data_dir().unwrap().parent().unwrap().join("sock")
}

#[test]
fn connection_errors_are_one_clear_line_and_never_show_the_password() {
    let db = db();
    let password = "Pw-9f8e7d6c5b4a";
    // Password authentication for this role only.
    password_role(&db, "pwuser", password, &["host"]);
    let port = port_of(db.url());
    let good = format!(
        "postgresql://pwuser:{password}@127.0.0.1:{port}/{}",
        db.name()
    );
    let wrong = format!(
        "postgresql://pwuser:{password}x@127.0.0.1:{port}/{}",
        db.name()
    );
    let missing = format!("postgresql://pwuser:{password}@127.0.0.1:{port}/no_such_db");
    let refused = format!("postgresql://pwuser:{password}@127.0.0.1:1/x");
    let ws = workspace();
    let mut outputs = Vec::new();
    for args in [
        vec!["--database-url", &good, "upgrade"],
        vec!["--database-url", &good, "current", "-v"],
        vec!["--database-url", &good, "--format", "json", "current"],
        vec!["--database-url", &good, "downgrade", "base"],
        vec!["--database-url", &wrong, "current"],
        vec!["--database-url", &missing, "current"],
        vec!["--database-url", &refused, "upgrade"],
        vec![
            "--database-url",
            "postgresql://pwuser:{password}@[bad",
            "upgrade",
        ],
    ] {
        outputs.push((args.clone(), alembic(&ws, &args)));
    }
    for (args, out) in &outputs {
        let all = text(out);
        assert!(
            !all.contains(password),
            "{args:?} printed the password:\n{all}"
        );
    }
    let stderr = |i: usize| String::from_utf8_lossy(&outputs[i].1.stderr).into_owned();
    assert_eq!(
        outputs[0].1.status.code(),
        Some(0),
        "{}",
        text(&outputs[0].1)
    );
    assert!(stderr(4).contains(&format!("cannot connect to 127.0.0.1:{port}/{}: password authentication failed for user \"pwuser\"", db.name())), "{}", stderr(4));
    assert!(
        stderr(5).contains("cannot connect to 127.0.0.1:")
            && stderr(5).contains("database \"no_such_db\" does not exist"),
        "{}",
        stderr(5)
    );
    assert!(
        stderr(6).contains("cannot connect to 127.0.0.1:1/x: Connection refused"),
        "{}",
        stderr(6)
    );
    for (args, out) in &outputs[4..7] {
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}

/// What libpq fills in when the URL leaves it out: the `PG*` variables,
/// the password file, and no TLS over a socket whatever `sslmode` says
/// (the server offers none there), as `psql` and Alembic connect.
#[test]
fn the_libpq_environment_and_password_file_fill_in_the_url() {
    let db = db();
    let password = "Env-0a1b2c3d4e";
    // Password authentication for this role, over the socket too.
    password_role(&db, "pwenv", password, &["local", "host"]);
    let socket = socket_folder();
    let socket = socket.to_str().unwrap();
    let port = port_of(db.url());
    let ws = workspace();
    let env = [
        ("PGHOST", socket),
        ("PGPORT", port.as_str()),
        ("PGUSER", "pwenv"),
        ("PGDATABASE", db.name()),
    ];
    let run = |url: &str, args: &[&str], more: &[(&str, &str)]| {
        let mut all = vec!["--database-url", url];
        all.extend_from_slice(args);
        let vars: Vec<_> = env.iter().chain(more).copied().collect();
        let out = alembic_with(&ws, &all, &vars);
        assert!(!text(&out).contains(password), "{}", text(&out));
        out
    };

    // Everything from the environment, over the server's socket.
    ok(run(
        "postgresql://",
        &["upgrade"],
        &[("PGPASSWORD", password)],
    ));
    let current = ok(run(
        "postgresql://",
        &["current"],
        &[("PGPASSWORD", password)],
    ));
    assert!(current.ends_with("(head)\n"), "{current}");
    // sslmode=require, and PGSSLMODE, over a socket: no TLS, as in libpq.
    let url = format!(
        "postgresql:///{}?host={socket}&port={port}&user=pwenv&sslmode=require",
        db.name()
    );
    ok(run(&url, &["current"], &[("PGPASSWORD", password)]));
    ok(run(
        "postgresql://",
        &["current"],
        &[("PGPASSWORD", password), ("PGSSLMODE", "verify-full")],
    ));
    // Keys of a URL shared with a Flask or sqlx application.
    ok(run(
        "postgresql://127.0.0.1?gssencmode=disable&client_encoding=utf8&statement-cache-capacity=0&target_session_attrs=primary",
        &["current"],
        &[("PGPASSWORD", password)],
    ));
    // The driver's own keys from libpq's variables, in both forms.
    let options = [
        ("PGPASSWORD", password),
        (
            "PGOPTIONS",
            "-c search_path=public,pg_catalog -c statement_timeout=60000",
        ),
        ("PGCHANNELBINDING", "prefer"),
    ];
    ok(run("postgresql://127.0.0.1", &["current"], &options));
    ok(run("host=127.0.0.1", &["current"], &options));
    // Over TCP, the environment's sslmode applies.
    let tcp = run(
        "postgresql://127.0.0.1",
        &["current"],
        &[("PGPASSWORD", password), ("PGSSLMODE", "require")],
    );
    assert_eq!(tcp.status.code(), Some(1), "{}", text(&tcp));
    assert!(
        String::from_utf8_lossy(&tcp.stderr).contains(&format!(
            "cannot connect to 127.0.0.1:{port}/{}: server does not support TLS",
            db.name()
        )),
        "{}",
        text(&tcp)
    );

    // The password file: a socket folder's entry, then a host's.
    let dir = tempfile::tempdir().unwrap();
    let pgpass = dir.path().join("pgpass");
    let pgpass_env = [("PGPASSFILE", pgpass.to_str().unwrap())];
    let write = |text: String, mode: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(&pgpass, text).unwrap();
        std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    write(
        format!("# ours\n{socket}:{port}:*:pwenv:{password}\n"),
        0o600,
    );
    ok(run("postgresql://", &["current"], &pgpass_env));
    write(
        format!("127.0.0.1:*:{}:pwenv:{password}\n", db.name()),
        0o600,
    );
    ok(run("postgresql://127.0.0.1", &["current"], &pgpass_env));
    // The URL's `passfile`, in place of PGPASSFILE.
    let named = format!("postgresql://127.0.0.1?passfile={}", pgpass.display());
    ok(run(&named, &["current"], &[("PGPASSFILE", "/nonexistent")]));
    // Readable by others: ignored, as libpq ignores it.
    write(format!("127.0.0.1:*:*:*:{password}\n"), 0o644);
    let ignored = run("postgresql://127.0.0.1", &["current"], &pgpass_env);
    assert_eq!(ignored.status.code(), Some(1), "{}", text(&ignored));

    // A service file's section: after the URL, before the environment
    // (PGHOST and PGPORT below name the same server; the service's
    // password is the one that logs in).
    let services = dir.path().join("services.conf");
    std::fs::write(
        &services,
        format!(
            "[app]\nhost={socket}\nport={port}\nuser=pwenv\ndbname={}\npassword={password}\n",
            db.name()
        ),
    )
    .unwrap();
    let service_env = [
        ("PGSERVICEFILE", services.to_str().unwrap()),
        ("PGUSER", "nobody"),
    ];
    ok(run("postgresql://?service=app", &["current"], &service_env));
    ok(run("service=app", &["current"], &service_env));
    let mut with_pgservice = service_env.to_vec();
    with_pgservice.push(("PGSERVICE", "app"));
    ok(run("postgresql://", &["current"], &with_pgservice));
    let unknown = run("postgresql://?service=nope", &["current"], &service_env);
    assert_eq!(unknown.status.code(), Some(2), "{}", text(&unknown));

    // A variable that cannot be used is named, as a URL's option is.
    let bad = run("postgresql://", &["current"], &[("PGPORT", "54x")]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("PGPORT `54x` is not a port number"),
        "{}",
        text(&bad)
    );
}

/// A folder whose `migrations/versions` holds one revision, `a1`.
fn one_revision_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("migrations/versions")).unwrap();
    std::fs::write(
        dir.path().join("migrations/versions/a1.sql"),
        "-- one\n-- revision: a1\n-- down_revision: None\n\n-- alembic:upgrade\nCREATE TABLE e1 (id int);\n\n-- alembic:downgrade\nDROP TABLE e1;\n",
    )
    .unwrap();
    dir
}

#[test]
fn no_url_is_a_usage_error_and_dotenv_is_read() {
    let dir = one_revision_project();
    let none = alembic(dir.path(), &["current"]);
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no database URL"));
    let db = db();
    std::fs::write(
        dir.path().join(".env"),
        format!("# local settings\nDATABASE_URL={}\n", db.url()),
    )
    .unwrap();
    ok(alembic(dir.path(), &["upgrade"]));
    assert_eq!(ok(alembic(dir.path(), &["current"])), "a1 (head)\n");
}

#[test]
fn offline_sql_needs_no_database() {
    let ws = workspace();
    let sql = ok(alembic(&ws, &["upgrade", "--sql"]));
    assert!(sql.contains("-- Running upgrade  -> c1a0e5b2d3f4, create accounts"));
    assert!(sql.ends_with("COMMIT;\n"));
    let range = ok(alembic(&ws, &["upgrade", "e9c8:head", "--sql"]));
    assert!(
        !range.contains("CREATE TABLE IF NOT EXISTS"),
        "starting above base: no table creation"
    );
    assert!(range.contains("UPDATE alembic_version SET version_num = 'f0d9b4e1a2c3' WHERE version_num = 'e9c8a3d0f1b2';"));
    let down = ok(alembic(&ws, &["downgrade", "head:e9c8", "--sql"]));
    assert!(down.contains("DROP VIEW project_activity;"));
    let needs_range = alembic(&ws, &["downgrade", "-1", "--sql"]);
    assert_eq!(needs_range.status.code(), Some(2));
    let stamp = ok(alembic(&ws, &["stamp", "head", "--sql"]));
    assert!(stamp.contains("INSERT INTO alembic_version (version_num) VALUES ('f0d9b4e1a2c3');"));
}

#[test]
fn an_edited_revision_is_refused_until_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let versions = dir.path().join("db/versions");
    std::fs::create_dir_all(&versions).unwrap();
    let file = versions.join("a1.sql");
    let text = |body: &str| {
        format!("-- one\n-- revision: a1\n-- down_revision: None\n\n-- alembic:upgrade\n{body}\n\n-- alembic:downgrade\nDROP TABLE ed;\n")
    };
    std::fs::write(&file, text("CREATE TABLE ed (id int);")).unwrap();
    let db = db();
    let run = |args: &[&str]| {
        let mut all = vec!["--script-location", "db", "--database-url", db.url()];
        all.extend_from_slice(args);
        alembic(dir.path(), &all)
    };
    ok(run(&["upgrade"]));
    std::fs::write(&file, text("CREATE TABLE ed (id bigint);")).unwrap();
    let refused = run(&["upgrade"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("revision a1 (db/versions/a1.sql) was edited after it was applied: the database recorded sha256:"), "{stderr}");
    assert!(
        stderr.contains("cargo alembic accept a1 --reason"),
        "{stderr}"
    );
    assert_eq!(run(&["current"]).status.code(), Some(1));
    let accepted = ok(run(&[
        "accept",
        "a1",
        "--reason",
        "widened the id before any data",
        "--by",
        "dba@example.com",
    ]));
    assert!(
        accepted.starts_with("Accepted the edit of a1 by dba@example.com: sha256:"),
        "{accepted}"
    );
    ok(run(&["upgrade"]));
    ok(run(&["current"]));
}

#[test]
fn a_long_run_on_a_terminal_shows_a_progress_bar() {
    let dir = tempfile::tempdir().unwrap();
    let versions = dir.path().join("db/versions");
    std::fs::create_dir_all(&versions).unwrap();
    let mut down = "None".to_owned();
    for n in 0..25 {
        let id = format!("p{n:02}");
        std::fs::write(
            versions.join(format!("{id}.sql")),
            format!("-- step {n}\n-- revision: {id}\n-- down_revision: {down}\n\n-- alembic:upgrade\nSELECT pg_sleep(0.03);\n\n-- alembic:downgrade\n"),
        )
        .unwrap();
        down = id;
    }
    let db = db();
    // `script` gives the command a terminal for stdout.
    let command = format!(
        "{} --script-location db --database-url '{}' upgrade",
        env!("CARGO_BIN_EXE_cargo-alembic"),
        db.url()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(dir.path())
        .output()
        .expect("script(1)");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{screen}");
    assert!(screen.contains("/25 revisions"), "a progress bar: {screen}");
    assert!(
        screen.contains("Running upgrade p23 -> p24, step 24"),
        "the lines stay: {screen}"
    );
    // Without a terminal: lines only.
    let piped = alembic(
        dir.path(),
        &[
            "--script-location",
            "db",
            "--database-url",
            db.url(),
            "downgrade",
            "base",
        ],
    );
    assert!(!String::from_utf8_lossy(&piped.stdout).contains("revisions,"));
}

fn verify(fixture: &str) -> Output {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(fixture);
    alembic(&dir, &["--script-location", ".", "verify", "--local"])
}

#[test]
fn verify_passes_the_repository_chain() {
    let out = alembic(&workspace(), &["verify", "--local"]);
    let stdout = ok(out);
    assert!(
        stdout.contains("stairway: 10 of 10 revisions upgraded, downgraded and upgraded again"),
        "{stdout}"
    );
    assert!(stdout.contains("verify: all checks passed"), "{stdout}");
}

/// `verify --database-url` reaches an existing server as every other
/// connection does (it used the plain driver: SQLAlchemy's scheme, libpq's
/// variables and sockets failed), and the throwaway servers' own URLs say
/// there is no TLS, whatever `PGSSLMODE` says.
#[test]
fn verify_reads_an_existing_servers_url_as_every_connection_does() {
    let dir = one_revision_project();
    let port = port_of(server().admin_url());
    let port = port.as_str();
    let socket = socket_folder();
    let verify = |url: &str, vars: &[(&str, &str)]| {
        alembic_with(dir.path(), &["verify", "--database-url", url], vars)
    };
    let passed = |out: Output| {
        let stdout = ok(out);
        assert!(stdout.contains("server: an existing server"), "{stdout}");
        assert!(stdout.contains("verify: all checks passed"), "{stdout}");
    };
    passed(verify(
        &format!("postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"),
        &[],
    ));
    passed(verify(
        "postgresql:///postgres",
        &[
            ("PGHOST", socket.to_str().unwrap()),
            ("PGPORT", port),
            ("PGUSER", "postgres"),
        ],
    ));
    // A server that is not there: its reason, and no advice to install one.
    let refused = verify("postgresql://postgres@127.0.0.1:1/postgres", &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("cannot connect to 127.0.0.1:1/postgres: Connection refused"),
        "{stderr}"
    );
    assert!(!stderr.contains("install"), "{stderr}");
    // A local throwaway server, with PGSSLMODE asking for TLS.
    let local = alembic_with(
        dir.path(),
        &["verify", "--local"],
        &[("PGSSLMODE", "verify-full")],
    );
    assert!(ok(local).contains("verify: all checks passed"));
}

#[test]
fn verify_finds_a_downgrade_that_forgets_an_index() {
    let out = verify("verify_forgets_index");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "the downgrade of revision b2 (versions/b2_index.sql) does not undo its upgrade"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("+ index public.things_name_idx: CREATE INDEX things_name_idx ON public.things USING btree (name)"), "{stderr}");
}

#[test]
fn verify_finds_a_downgrade_that_drops_too_much() {
    let out = verify("verify_drops_too_much");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "the downgrade of revision b2 (versions/b2_second.sql) does not undo its upgrade"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("- table public.first_table"), "{stderr}");
}

#[test]
fn verify_names_a_failing_downgrade_once() {
    let out = verify("verify_downgrade_typo");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "downgrade of revision b2 failed at versions/b2_email.sql:10: column \"emial\" of relation \"things\" does not exist"
        ),
        "{stderr}"
    );
    // The engine's words name the step, the revision and the file's line:
    // verify says them once, not after its own version of them.
    assert_eq!(stderr.matches("of revision b2").count(), 1, "{stderr}");
}

#[test]
fn verify_counts_one_revision_in_the_singular() {
    let stdout = ok(verify("line_endings/lf"));
    assert!(
        stdout.contains("static: 1 revision, 1 head (a1), 0 irreversible"),
        "{stdout}"
    );
    assert!(stdout.contains("verify: all checks passed"), "{stdout}");
}

/// A linear chain of `count` revisions, each a table and an index; the
/// downgrades of `broken` forget the table.
fn long_chain(count: usize, broken: &[usize]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let versions = dir.path().join("versions");
    std::fs::create_dir_all(&versions).unwrap();
    for n in 0..count {
        let down = match n {
            0 => "None".to_owned(),
            _ => format!("r{:02}", n - 1),
        };
        let undo = if broken.contains(&n) {
            format!("DROP INDEX t{n}_idx;\n-- forgot: DROP TABLE t{n};\n")
        } else {
            format!("DROP INDEX t{n}_idx;\nDROP TABLE t{n};\n")
        };
        let text = format!(
            "-- r{n:02}\n--\n-- revision: r{n:02}\n-- down_revision: {down}\n\n-- alembic:upgrade\n\
             CREATE TABLE t{n} (id int PRIMARY KEY, name text);\nCREATE INDEX t{n}_idx ON t{n} (name);\n\n\
             -- alembic:downgrade\n{undo}"
        );
        std::fs::write(versions.join(format!("r{n:02}.sql")), text).unwrap();
    }
    dir
}

/// Chains of 24 revisions and more are walked in two halves at once;
/// what verify says is what one walk would: the first problem in chain
/// order, the count of revisions checked before it.
#[test]
fn verify_walks_a_long_chain_in_two_halves_as_one_walk_would() {
    let verify_in = |dir: &Path| alembic(dir, &["--script-location", ".", "verify", "--local"]);
    let clean = long_chain(30, &[]);
    let stdout = ok(verify_in(clean.path()));
    assert!(
        stdout.contains("stairway: 30 of 30 revisions upgraded, downgraded and upgraded again"),
        "{stdout}"
    );
    // A problem in the second half only.
    let late = long_chain(30, &[22]);
    let out = verify_in(late.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stderr
            .contains("the downgrade of revision r22 (versions/r22.sql) does not undo its upgrade"),
        "{stderr}"
    );
    assert!(stderr.contains("+ table public.t22"), "{stderr}");
    assert!(
        stdout.contains("stairway: stopped at revision r22"),
        "{stdout}"
    );
    assert!(stdout.contains("stairway: 22 of 30 revisions"), "{stdout}");
    // One in each half: only the first is reported.
    let both = long_chain(30, &[5, 22]);
    let out = verify_in(both.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        stderr.contains("revision r05 (versions/r05.sql) does not undo"),
        "{stderr}"
    );
    assert!(!stderr.contains("r22"), "{stderr}");
    assert!(stdout.contains("stairway: 5 of 30 revisions"), "{stdout}");
}

#[test]
fn verify_speaks_github_annotations_and_json() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/verify_drops_too_much");
    let github = alembic(
        &dir,
        &[
            "--script-location",
            ".",
            "--format",
            "github",
            "verify",
            "--local",
        ],
    );
    assert_eq!(github.status.code(), Some(1), "{}", text(&github));
    let stdout = String::from_utf8_lossy(&github.stdout);
    let annotation = stdout
        .lines()
        .find(|l| l.starts_with("::error "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        annotation.starts_with("::error file=cargo-alembic/tests/fixtures/verify_drops_too_much/versions/b2_second.sql,line=9,title=cargo alembic verify%3A stairway::"),
        "{annotation}"
    );
    assert!(
        annotation.contains("%0A    - table public.first_table"),
        "newlines are escaped: {annotation}"
    );

    let json = alembic(
        &dir,
        &[
            "--script-location",
            ".",
            "--format",
            "json",
            "verify",
            "--local",
        ],
    );
    assert_eq!(json.status.code(), Some(1));
    let report: serde_json::Value =
        serde_json::from_slice(&json.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&json)));
    assert_eq!(report["ok"], false);
    assert_eq!(report["problems"][0]["revision"], "b2");
    assert_eq!(report["problems"][0]["line"], 9);
    assert_eq!(report["problems"][0]["check"], "stairway");
    assert!(report["run"]["timings"]["server_ms"].as_u64().is_some());

    let junit = alembic(
        &dir,
        &[
            "--script-location",
            ".",
            "--format",
            "junit",
            "verify",
            "--local",
        ],
    );
    assert_eq!(junit.status.code(), Some(1));
    let xml = String::from_utf8_lossy(&junit.stdout);
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"cargo alembic verify\" tests=\"3\" failures=\"1\""), "{xml}");
    assert!(
        xml.contains(
            "<testcase classname=\"revision\" name=\"a1\" file=\"versions/a1_first.sql\"/>"
        ),
        "{xml}"
    );
    assert!(
        xml.contains("<failure type=\"stairway\" message=\"the downgrade of revision b2"),
        "{xml}"
    );

    for format in ["github", "junit"] {
        let not_here = alembic(
            &dir,
            &["--script-location", ".", "--format", format, "heads"],
        );
        assert_eq!(not_here.status.code(), Some(2), "{format}");
    }
}

#[test]
fn verify_lints_a_concurrent_index_in_a_transactional_revision() {
    let out = verify("verify_concurrently_in_transaction");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: revision b2 (versions/b2_index.sql:8): `CREATE INDEX CONCURRENTLY` cannot run inside a transaction block; mark the revision `transactional: false`"),
        "{stderr}"
    );
    // The downgrade's DROP INDEX CONCURRENTLY too.
    assert!(
        stderr.contains("(versions/b2_index.sql:11): `DROP INDEX CONCURRENTLY` cannot run"),
        "{stderr}"
    );
}

#[test]
fn verify_against_a_real_database_finds_edits_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let versions = dir.path().join("db/versions");
    std::fs::create_dir_all(&versions).unwrap();
    let revision_text = |id: &str, down: &str, up: &str| {
        format!("-- {id}\n-- revision: {id}\n-- down_revision: {down}\n\n-- alembic:upgrade\n{up}\n\n-- alembic:downgrade\nSELECT 1;\n")
    };
    std::fs::write(
        versions.join("a1.sql"),
        revision_text("a1", "None", "CREATE TABLE ag (id int);"),
    )
    .unwrap();
    std::fs::write(
        versions.join("b2.sql"),
        revision_text("b2", "a1", "CREATE TABLE ag2 (id int);"),
    )
    .unwrap();
    let db = db();
    let run = |args: &[&str]| {
        let mut all = vec!["--script-location", "db"];
        all.extend_from_slice(args);
        alembic(dir.path(), &all)
    };
    ok(run(&["--database-url", db.url(), "upgrade", "a1"]));
    // Clean: one applied, one pending.
    let clean = ok(run(&["verify", "--against", db.url()]));
    assert!(
        clean.contains(": 1 applied (0 unverified), 1 pending: b2"),
        "{clean}"
    );
    // Edited after it was applied.
    std::fs::write(
        versions.join("a1.sql"),
        revision_text("a1", "None", "CREATE TABLE ag (id bigint);"),
    )
    .unwrap();
    let edited = run(&["verify", "--against", db.url()]);
    assert_eq!(edited.status.code(), Some(1), "{}", text(&edited));
    let stderr = String::from_utf8_lossy(&edited.stderr);
    assert!(stderr.contains("revision a1 (db/versions/a1.sql) was edited after it was applied: the database recorded sha256:"), "{stderr}");
    // Nothing was written: b2 is still pending, the version table unchanged.
    let mut c = db.connect().unwrap();
    let rows: Vec<String> = c
        .query("SELECT version_num FROM alembic_version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, ["a1"]);
}

#[test]
fn verify_finds_branches_that_are_not_independent() {
    let out = verify("verify_branch_order");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("branch order: 1 merge point checked"),
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "the branches merged by revision m4 (versions/m4_merge.sql) are not independent"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("- column public.people.nickname: text")
            && stderr.contains("+ column public.people.nickname: character varying(20)"),
        "{stderr}"
    );
}

/// Every parent of a merge goes first once: with three branches, the third
/// one first is what shows the dependence here.
#[test]
fn verify_tries_every_branch_of_a_three_parent_merge_first() {
    let out = verify("verify_branch_order_three_parents");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "the branches merged by revision m5 (versions/m5_merge.sql) are not independent: the schema with the branch of b2 first differs from the one with the branch of d4 first"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("ran_before_left"), "{stderr}");
    assert!(
        !stderr.contains("with the branch of c3 first differs"),
        "b2 first and c3 first agree: {stderr}"
    );
}

#[test]
fn verify_colours_only_a_terminal() {
    let command = format!("{} verify --local", env!("CARGO_BIN_EXE_cargo-alembic"));
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(workspace())
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        screen.contains("verify: \u{1b}[1m\u{1b}[32mall checks passed"),
        "green on a terminal: {screen:?}"
    );
    let piped = ok(alembic(&workspace(), &["verify", "--local"]));
    assert!(
        piped.contains("verify: all checks passed in ") && !piped.contains('\u{1b}'),
        "plain when piped: {piped}"
    );
}

#[test]
fn a_tag_is_recorded_and_shown_by_current_history_and_json() {
    let db = db();
    let ws = workspace();
    let run = |args: &[&str]| {
        let mut all = vec!["--database-url", db.url()];
        all.extend_from_slice(args);
        alembic(&ws, &all)
    };
    let out = ok(run(&[
        "--format",
        "json",
        "upgrade",
        "e3c2",
        "--tag",
        "release-7",
    ]));
    assert!(out.contains("\"tag\": \"release-7\""), "{out}");
    ok(run(&["upgrade", "--tag", "JIRA-42"]));
    let current = ok(run(&["current", "-v"]));
    assert!(current.contains("Tag: JIRA-42\n"), "{current}");
    let history = ok(run(&["history", "-v", "-i", "-r", "c1a0:e3c2"]));
    assert!(history.contains("Tag: release-7\n"), "{history}");
    let json = ok(run(&["current", "--format", "json"]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["tags"]["c1a0e5b2d3f4"], "release-7", "{json}");
    assert_eq!(v["tags"]["f0d9b4e1a2c3"], "JIRA-42", "{json}");
    // Accepted by stamp and downgrade, as in Alembic.
    ok(run(&["downgrade", "-1", "--tag", "rollback-1"]));
    ok(run(&["stamp", "head", "--tag", "fixup"]));
}

#[test]
fn a_lock_timeout_flag_gives_up_with_exit_1_and_a_bad_duration_is_exit_2() {
    let db = db();
    let ws = workspace();
    let mut holder = db.connect().unwrap();
    let key = alembic_embed::cli_engine::Settings::default().lock_key_sql();
    holder
        .batch_execute(&format!("SELECT pg_advisory_lock({key})"))
        .unwrap();
    let out = alembic(
        &ws,
        &[
            "--database-url",
            db.url(),
            "--lock-timeout",
            "200ms",
            "upgrade",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("longer than the lock timeout (200ms); nothing was run; held by pid"),
        "{stderr}"
    );
    let out = alembic(
        &ws,
        &[
            "--database-url",
            db.url(),
            "--lock-timeout",
            "soon",
            "upgrade",
        ],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

/// `upgrade` on an up-to-date database reads its state without the
/// migration lock, so it does not queue behind another migrator; anything
/// it has to run waits for the lock as before.
#[test]
fn an_up_to_date_upgrade_does_not_wait_for_another_migrators_lock() {
    let db = db();
    let ws = workspace();
    ok(alembic(&ws, &["--database-url", db.url(), "upgrade"]));
    let mut holder = db.connect().unwrap();
    let key = alembic_embed::cli_engine::Settings::default().lock_key_sql();
    holder
        .batch_execute(&format!("SELECT pg_advisory_lock({key})"))
        .unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--database-url", db.url(), "--lock-timeout", "200ms"];
        all.extend_from_slice(args);
        alembic(&ws, &all)
    };
    ok(run(&["upgrade"]));
    let out = run(&["downgrade", "-1"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("longer than the lock timeout (200ms); nothing was run"),
        "{}",
        text(&out)
    );
}

#[test]
fn accept_current_resolves_what_users_type() {
    let db = db();
    let tmp = tempfile::tempdir().unwrap();
    let versions = tmp.path().join("migrations/versions");
    std::fs::create_dir_all(&versions).unwrap();
    let file = versions.join("a1.sql");
    std::fs::write(&file, "-- one\n-- revision: a1\n-- down_revision: None\n\n-- alembic:upgrade\nCREATE TABLE acc (id int);\n\n-- alembic:downgrade\nDROP TABLE acc;\n").unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["--database-url", db.url()];
        all.extend_from_slice(args);
        alembic(tmp.path(), &all)
    };
    ok(run(&["upgrade"]));
    std::fs::write(&file, "-- one\n-- revision: a1\n-- down_revision: None\n\n-- alembic:upgrade\n-- widened later\nCREATE TABLE acc (id int);\n\n-- alembic:downgrade\nDROP TABLE acc;\n").unwrap();
    let out = ok(run(&[
        "accept",
        "current",
        "--reason",
        "a comment",
        "--by",
        "me",
    ]));
    assert!(
        out.starts_with("Accepted the edit of a1 by me: sha256:"),
        "{out}"
    );
    ok(run(&["upgrade"]));
}
