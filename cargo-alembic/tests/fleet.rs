//! Fleets on a real PostgreSQL: tenant schemas (`--each-schema`), databases
//! (`--each-database`, `--targets`), a failing target with and without
//! `--keep-going`, and `--shard`. The repository's chain, whose revisions
//! name no schema.

#[path = "support/run.rs"]
mod run;

use std::path::{Path, PathBuf};
use std::process::Output;

use run::{alembic_with, ok, rows, server, sql, text};

const HEAD: &str = "f0d9b4e1a2c3";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

fn alembic(url: &str, args: &[&str]) -> Output {
    alembic_with(&workspace(), args, Some(url))
}

fn schemas(url: &str, names: &[&str]) {
    let text: String = names
        .iter()
        .map(|n| format!("CREATE SCHEMA {n};"))
        .collect();
    sql(url, &text);
}

#[test]
fn every_tenant_schema_is_migrated_in_its_own_schema() {
    let db = server().database().unwrap();
    let url = db.url();
    let tenants: Vec<String> = (1..=50).map(|t| format!("tenant_{t:02}")).collect();
    let mut names: Vec<&str> = tenants.iter().map(String::as_str).collect();
    names.push("shared");
    schemas(url, &names);
    let out = ok(alembic(
        url,
        &["upgrade", "head", "--each-schema", "tenant_%", "-j", "3"],
    ));
    for t in &tenants {
        assert!(out.contains(&format!("{t}: base -> {HEAD} (")), "{out}");
        assert_eq!(
            rows(url, &format!("SELECT version_num FROM {t}.alembic_version")),
            [HEAD]
        );
        assert_eq!(
            rows(url, &format!("SELECT count(*) FROM {t}.accounts")),
            ["0"]
        );
    }
    assert!(
        out.contains("fleet: 50 targets, 50 done, 0 failed, 0 not started"),
        "{out}"
    );
    // Nothing in public or in the schema the pattern leaves out.
    assert!(rows(url, "SELECT table_name::text FROM information_schema.tables WHERE table_schema IN ('public', 'shared')").is_empty());
    let current = ok(alembic(
        url,
        &[
            "current",
            "--each-schema",
            "tenant_01",
            "--each-schema",
            "tenant_02",
        ],
    ));
    assert!(
        current.contains(&format!("tenant_01: {HEAD}"))
            && current.contains(&format!("tenant_02: {HEAD}")),
        "{current}"
    );
    assert!(current.contains("fleet: 2 targets"), "{current}");

    // `verify --against` over the fleet: read-only, each tenant against
    // the files; a tenant whose table names a revision the files lack fails.
    let verified = ok(alembic(
        url,
        &["verify", "--against", "--each-schema", "tenant_%"],
    ));
    assert!(
        verified.contains("tenant_07: 10 applied (0 unverified), 0 pending")
            && verified.contains("fleet: 50 targets, 50 done"),
        "{verified}"
    );
    sql(
        url,
        "UPDATE tenant_07.alembic_version SET version_num = 'feedc0ffee00'",
    );
    let out = alembic(
        url,
        &[
            "verify",
            "--against",
            url,
            "--each-schema",
            "tenant_%",
            "--keep-going",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"], 1, "{report}");
    assert_eq!(report["targets"][6]["name"], "tenant_07", "{report}");
    assert_eq!(
        report["targets"][6]["error"]["revision"], "feedc0ffee00",
        "{report}"
    );
    assert!(
        rows(url, "SELECT count(*) FROM tenant_07.alembic_version") == ["1"],
        "verify wrote nothing"
    );
    // Without --against a fleet is not verified (a throwaway server is one
    // database).
    let out = alembic(url, &["verify", "--each-schema", "tenant_%"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_failing_tenant_stops_new_targets_unless_keep_going() {
    let db = server().database().unwrap();
    let url = db.url();
    schemas(url, &["t_1", "t_2", "t_3", "t_4", "t_5"]);
    // t_3 already has the first revision's table.
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.batch_execute("CREATE TABLE t_3.accounts (id int)")
        .unwrap();
    let out = alembic(
        url,
        &["upgrade", "head", "--each-schema", "t\\_%", "-j", "1"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("t_3: error: ") && stdout.contains("already exists"),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("fleet: 5 targets, 2 done, 1 failed, 2 not started"),
        "{}",
        text(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--keep-going"),
        "{}",
        text(&out)
    );
    assert!(rows(url, "SELECT to_regclass('t_5.alembic_version')::text")
        .iter()
        .all(|r| r == "NULL"));

    let out = alembic(
        url,
        &[
            "upgrade",
            "head",
            "--each-schema",
            "t\\_%",
            "--keep-going",
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["done"].as_u64(), report["failed"].as_u64()),
        (Some(4), Some(1)),
        "{report}"
    );
    let t3 = &report["targets"][2];
    assert_eq!(t3["name"], "t_3", "{report}");
    assert_eq!(t3["status"], "failed", "{report}");
    assert_eq!(t3["error"]["revision"], "c1a0e5b2d3f4", "{report}");
    assert_eq!(t3["error"]["sqlstate"], "42P07", "{report}");
    assert!(
        t3["error"]["file"]
            .as_str()
            .unwrap()
            .ends_with("c1a0e5b2d3f4_create_accounts.sql"),
        "{report}"
    );
    assert_eq!(report["targets"][4]["after"][0], HEAD, "{report}");
    assert_eq!(
        rows(url, "SELECT version_num FROM t_5.alembic_version"),
        [HEAD]
    );

    // GitHub annotations on the failing revision's file; JUnit with the
    // targets not started as skipped.
    let out = alembic(
        url,
        &[
            "upgrade",
            "head",
            "--each-schema",
            "t\\_%",
            "--keep-going",
            "--format",
            "github",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("c1a0e5b2d3f4_create_accounts.sql,line="),
        "{stdout}"
    );
    assert!(
        stdout.contains(",title=cargo alembic fleet%3A t_3::"),
        "{stdout}"
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("::error")).count(),
        1,
        "{stdout}"
    );
    let out = alembic(
        url,
        &[
            "upgrade",
            "head",
            "--each-schema",
            "t\\_%",
            "-j",
            "1",
            "--format",
            "junit",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("tests=\"5\" failures=\"1\" skipped=\"2\""),
        "{stdout}"
    );
    assert!(
        stdout.contains("<testcase classname=\"fleet\" name=\"t_3\"")
            && stdout.contains("<failure message="),
        "{stdout}"
    );
}

#[test]
fn databases_by_pattern_and_from_a_targets_file() {
    let db = server().database().unwrap();
    let url = db.url();
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let databases: Vec<String> = (0..10).map(|i| format!("fleetdb_{i}")).collect();
    for name in &databases {
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
    }
    let out = ok(alembic(
        url,
        &["upgrade", "head", "--each-database", "fleetdb_%"],
    ));
    assert!(out.contains("fleet: 10 targets, 10 done"), "{out}");
    // SQLAlchemy's scheme names the same server: each database's URL is
    // made from it as from libpq's (it was read as key/value settings).
    let sqlalchemy = url.replacen("postgresql://", "postgresql+psycopg2://", 1);
    let out = ok(alembic(
        &sqlalchemy,
        &["current", "--each-database", "fleetdb_%"],
    ));
    assert!(out.contains("fleet: 10 targets, 10 done"), "{out}");
    let other = |name: &str| {
        url.rsplit_once('/')
            .map(|(base, _)| format!("{base}/{name}"))
            .unwrap()
    };
    for name in &databases {
        assert_eq!(
            rows(&other(name), "SELECT version_num FROM alembic_version"),
            [HEAD],
            "{name}"
        );
    }

    // A targets file: names, a URL from the environment, comments.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("targets");
    std::fs::write(
        &file,
        format!(
            "# the fleet\na = $FLEET_A_URL\nb = {}   # inline comment\n",
            other("fleetdb_1")
        ),
    )
    .unwrap();
    let out = run::alembic_with_env(
        &workspace(),
        &["downgrade", "base", "--targets", file.to_str().unwrap()],
        &[("FLEET_A_URL", &other("fleetdb_0"))],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("a: {HEAD} -> base"))
            && stdout.contains("fleet: 2 targets, 2 done"),
        "{stdout}"
    );
    assert!(rows(
        &other("fleetdb_0"),
        "SELECT version_num FROM alembic_version"
    )
    .is_empty());
    assert_eq!(
        rows(
            &other("fleetdb_2"),
            "SELECT version_num FROM alembic_version"
        ),
        [HEAD]
    );
    // An unset variable is bad usage, naming the file and line.
    std::fs::write(&file, "a = $FLEET_NOT_SET\n").unwrap();
    let out = alembic(url, &["current", "--targets", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("targets:1: $FLEET_NOT_SET is not set"),
        "{}",
        text(&out)
    );
}

#[test]
fn shards_split_the_fleet_by_name_without_overlap() {
    let db = server().database().unwrap();
    let url = db.url();
    let names: Vec<String> = (1..=12).map(|i| format!("s_{i:02}")).collect();
    schemas(url, &names.iter().map(String::as_str).collect::<Vec<_>>());
    let mut seen: Vec<String> = Vec::new();
    for shard in ["1/3", "2/3", "3/3"] {
        let out = ok(alembic(
            url,
            &[
                "upgrade",
                "head",
                "--each-schema",
                "s\\_%",
                "--shard",
                shard,
            ],
        ));
        for line in out.lines().filter(|l| l.starts_with("s_")) {
            seen.push(line.split(':').next().unwrap().to_owned());
        }
    }
    seen.sort();
    assert_eq!(seen, names, "every tenant in exactly one shard");
    let out = alembic(
        url,
        &["current", "--each-schema", "s\\_%", "--shard", "4/3"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn a_fleet_and_a_single_migrator_of_one_tenant_apply_each_revision_once() {
    let db = server().database().unwrap();
    let url = db.url().to_owned();
    let names: Vec<String> = (1..=8).map(|i| format!("c_{i}")).collect();
    schemas(&url, &names.iter().map(String::as_str).collect::<Vec<_>>());
    let fleet = {
        let url = url.clone();
        std::thread::spawn(move || {
            alembic(
                &url,
                &["upgrade", "head", "--each-schema", "c\\_%", "-j", "4"],
            )
        })
    };
    let single = alembic(&url, &["upgrade", "head", "--each-schema", "c_5"]);
    let fleet = fleet.join().unwrap();
    assert_eq!(single.status.code(), Some(0), "{}", text(&single));
    assert_eq!(fleet.status.code(), Some(0), "{}", text(&fleet));
    let revisions = rows(&url, "SELECT count(*) FROM c_5.alembic_version_ledger");
    let total = rows(&url, "SELECT count(*) FROM c_1.alembic_version_ledger");
    assert_eq!(revisions, total);
    assert_eq!(
        rows(&url, "SELECT version_num FROM c_5.alembic_version"),
        [HEAD]
    );
}

#[test]
fn ctrl_c_stops_starting_targets_and_leaves_none_half_migrated() {
    use std::io::{BufRead, BufReader, Read};
    use std::process::{Command, Stdio};
    let db = server().database().unwrap();
    let url = db.url();
    let names: Vec<String> = (1..=40).map(|i| format!("k_{i:02}")).collect();
    schemas(url, &names.iter().map(String::as_str).collect::<Vec<_>>());
    let mut child = Command::new(env!("CARGO_BIN_EXE_cargo-alembic"))
        .args(["upgrade", "head", "--each-schema", "k\\_%", "-j", "1"])
        .current_dir(workspace())
        .env("DATABASE_URL", url)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("k_01: base -> "), "{first}");
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{first}{rest}{stderr}");
    assert!(
        stderr.contains("interrupted:") && stderr.contains("not started"),
        "{stderr}"
    );
    assert!(rest.contains("fleet: 40 targets"), "{rest}");
    // Every tenant is at head or untouched; nothing is half-migrated.
    let mut at_head = 0;
    for name in &names {
        let version = rows(
            url,
            &format!("SELECT to_regclass('{name}.alembic_version')::text"),
        );
        if version == ["NULL"] {
            let tables = rows(
                url,
                &format!(
                    "SELECT count(*) FROM information_schema.tables WHERE table_schema = '{name}'"
                ),
            );
            assert_eq!(tables, ["0"], "{name}");
        } else {
            assert_eq!(
                rows(
                    url,
                    &format!("SELECT version_num FROM {name}.alembic_version")
                ),
                [HEAD],
                "{name}"
            );
            at_head += 1;
        }
    }
    assert!((1..40).contains(&at_head), "{at_head} of 40 at head");
    // No lock is left behind: the rest migrates.
    ok(alembic(url, &["upgrade", "head", "--each-schema", "k\\_%"]));
}

/// A chain of three revisions in a fresh project; each records the server
/// process it ran on and leaves session state behind it: a temporary
/// table, a setting and an advisory lock.
fn session_chain() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let versions = dir.path().join("db/versions");
    std::fs::create_dir_all(&versions).unwrap();
    let mut down = "None".to_owned();
    for n in 1..=3 {
        let id = format!("s{n}");
        std::fs::write(
            versions.join(format!("{id}.sql")),
            format!(
                "-- step {n}\n-- revision: {id}\n-- down_revision: {down}\n\n-- alembic:upgrade\n\
                 CREATE TEMP TABLE scratch_{n} (x int);\n\
                 SET work_mem = '1234kB';\n\
                 SELECT pg_advisory_lock(4242);\n\
                 INSERT INTO public.backends SELECT pg_backend_pid(), current_setting('work_mem');\n\
                 CREATE TABLE t{n} (id int);\n\n-- alembic:downgrade\nDROP TABLE t{n};\n"
            ),
        )
        .unwrap();
        down = id;
    }
    dir
}

#[test]
fn a_worker_keeps_one_connection_per_database_and_resets_it_between_tenants() {
    let db = server().database().unwrap();
    let url = db.url();
    schemas(url, &["k_1", "k_2", "k_3", "k_4"]);
    sql(url, "CREATE TABLE public.backends (pid int, work_mem text)");
    let project = session_chain();
    let out = alembic_with(
        project.path(),
        &[
            "--script-location",
            "db",
            "upgrade",
            "head",
            "--each-schema",
            "k\\_%",
            "-j",
            "1",
        ],
        Some(url),
    );
    // Each tenant found a new session's state: no temporary table, setting
    // or lock left by the one before (the same temporary table twice, or a
    // lock held by the worker itself, would fail or wait).
    let stdout = ok(out);
    assert!(stdout.contains("fleet: 4 targets, 4 done"), "{stdout}");
    assert_eq!(
        rows(url, "SELECT count(DISTINCT pid) FROM public.backends"),
        ["1"],
        "one worker, one connection for the four tenants"
    );
    assert_eq!(rows(url, "SELECT count(*) FROM public.backends"), ["12"]);
    assert_eq!(
        rows(
            url,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' \
             AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
        ["0"],
        "nothing left locked"
    );
}

#[test]
fn a_fleet_on_a_terminal_shows_its_progress() {
    let db = server().database().unwrap();
    let url = db.url();
    let names: Vec<String> = (1..=24).map(|i| format!("p_{i:02}")).collect();
    schemas(url, &names.iter().map(String::as_str).collect::<Vec<_>>());
    // `script` gives the command a terminal for stdout.
    let command = format!(
        "{} --database-url '{url}' upgrade head --each-schema 'p\\_%' -j 2",
        env!("CARGO_BIN_EXE_cargo-alembic"),
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(workspace())
        .output()
        .expect("script(1)");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{screen}");
    assert!(screen.contains("/24 targets: "), "a progress bar: {screen}");
    assert!(
        screen.contains(" failed, ")
            && screen.contains(" running, ")
            && screen.contains(" remaining"),
        "{screen}"
    );
    assert!(
        screen.contains(&format!("p_24: base -> {HEAD}"))
            && screen.contains("fleet: 24 targets, 24 done"),
        "the lines and the summary stay: {screen}"
    );
}
