//! The engine against a real PostgreSQL (a throwaway local server).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use alembic_embed::{load_versions, Engine, EngineError, RevisionMap, Settings};
use alembic_throwaway::{Choice, Database, Server};

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(Choice::Local).expect("a throwaway PostgreSQL"))
}

fn db() -> Database {
    server().database().expect("a fresh database")
}

fn repo_chain() -> RevisionMap {
    load_versions(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/versions")).unwrap()
}

/// A chain written into a temporary folder: (file name, text).
fn chain(files: &[(&str, &str)]) -> (tempfile::TempDir, RevisionMap) {
    let dir = tempfile::tempdir().unwrap();
    let versions = dir.path().join("versions");
    std::fs::create_dir_all(&versions).unwrap();
    for (name, text) in files {
        std::fs::write(versions.join(name), text).unwrap();
    }
    let map = load_versions(&versions).unwrap();
    (dir, map)
}

fn rev(id: &str, down: &str, up: &str, down_sql: &str) -> String {
    format!("-- revision {id}\n-- revision: {id}\n-- down_revision: {down}\n\n-- alembic:upgrade\n{up}\n\n-- alembic:downgrade\n{down_sql}\n")
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

fn tables(client: &mut postgres::Client) -> Vec<String> {
    rows(
        client,
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'",
    )
}

#[test]
fn repo_chain_up_and_down() {
    let map = repo_chain();
    let engine = Engine::new(&map, Settings::default());
    let db = db();
    let mut c = db.connect().unwrap();
    let mut seen = Vec::new();
    let report = engine
        .upgrade(&mut c, "head", &mut |s| seen.push(s.revision.clone()))
        .unwrap();
    assert_eq!(report.steps.len(), 10);
    assert_eq!(seen.len(), 10);
    assert_eq!(report.after, ["f0d9b4e1a2c3"]);
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        ["f0d9b4e1a2c3"]
    );
    assert_eq!(
        tables(&mut c),
        [
            "accounts",
            "alembic_version",
            "alembic_version_ledger",
            "audit_log",
            "memberships",
            "projects"
        ]
    );
    let ledger: i64 = c.query_one("SELECT count(*) FROM alembic_version_ledger WHERE status = 'applied' AND duration_ms >= 0", &[]).unwrap().get(0);
    assert_eq!(ledger, 10);
    // The non-transactional revision ran CREATE INDEX CONCURRENTLY.
    let idx: i64 = c
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'projects_active_owner_idx'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(idx, 1);
    // A second upgrade does nothing.
    assert!(engine
        .upgrade(&mut c, "head", &mut |_| {})
        .unwrap()
        .steps
        .is_empty());

    let down = engine.downgrade(&mut c, "base", &mut |_| {}).unwrap();
    assert_eq!(down.steps.len(), 10);
    assert!(rows(&mut c, "SELECT version_num FROM alembic_version").is_empty());
    assert_eq!(
        tables(&mut c),
        ["alembic_version", "alembic_version_ledger"]
    );
    assert!(rows(&mut c, "SELECT revision FROM alembic_version_ledger").is_empty());
}

#[test]
fn branches_keep_one_row_per_head_as_alembic_does() {
    let map = repo_chain();
    let engine = Engine::new(&map, Settings::default());
    let db = db();
    let mut c = db.connect().unwrap();
    let version = |c: &mut postgres::Client| rows(c, "SELECT version_num FROM alembic_version");
    engine.upgrade(&mut c, "b6f5", &mut |_| {}).unwrap();
    assert_eq!(version(&mut c), ["b6f5d0a7c8e9"]);
    engine.upgrade(&mut c, "f4d3b8e5a6c7", &mut |_| {}).unwrap();
    assert_eq!(
        version(&mut c),
        ["b6f5d0a7c8e9", "f4d3b8e5a6c7"],
        "a second branch from the branch point adds a row"
    );
    // d8b7 depends on f4d3: like a merge, its row replaces both.
    engine.upgrade(&mut c, "d8b7", &mut |_| {}).unwrap();
    assert_eq!(version(&mut c), ["d8b7f2c9e0a1"]);
    engine.upgrade(&mut c, "a5e4", &mut |_| {}).unwrap();
    assert_eq!(version(&mut c), ["a5e4c9f6b7d8", "d8b7f2c9e0a1"]);
    engine.upgrade(&mut c, "head", &mut |_| {}).unwrap();
    assert_eq!(version(&mut c), ["f0d9b4e1a2c3"]);
    engine.downgrade(&mut c, "-2", &mut |_| {}).unwrap_err(); // through a merge point: ambiguous, as in Alembic
    engine.downgrade(&mut c, "e9c8", &mut |_| {}).unwrap();
    assert_eq!(version(&mut c), ["e9c8a3d0f1b2"]);
    // Undoing the merge restores both branches' rows.
    engine.downgrade(&mut c, "a5e4", &mut |_| {}).unwrap();
    assert_eq!(version(&mut c), ["a5e4c9f6b7d8", "d8b7f2c9e0a1"]);
    engine.downgrade(&mut c, "audit@base", &mut |_| {}).unwrap();
    assert_eq!(
        version(&mut c),
        ["a5e4c9f6b7d8"],
        "audit@base removes the audit branch and leaves the trunk"
    );
}

#[test]
fn an_edited_applied_revision_stops_upgrade_before_any_sql() {
    let (dir, map) = chain(&[(
        "a.sql",
        &rev("a1", "None", "CREATE TABLE t1 (id int);", "DROP TABLE t1;"),
    )]);
    let db = db();
    let mut c = db.connect().unwrap();
    Engine::new(&map, Settings::default())
        .upgrade(&mut c, "head", &mut |_| {})
        .unwrap();
    let recorded = map.get("a1").unwrap().upgrade.checksum().to_string();
    std::fs::write(
        dir.path().join("versions/a.sql"),
        rev(
            "a1",
            "None",
            "CREATE TABLE t1 (id bigint);",
            "DROP TABLE t1;",
        ),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("versions/b.sql"),
        rev("b2", "a1", "CREATE TABLE t2 (id int);", "DROP TABLE t2;"),
    )
    .unwrap();
    let edited = load_versions(&dir.path().join("versions")).unwrap();
    let err = Engine::new(&edited, Settings::default())
        .upgrade(&mut c, "head", &mut |_| {})
        .unwrap_err();
    let now = edited.get("a1").unwrap().upgrade.checksum().to_string();
    match &err {
        EngineError::ChecksumMismatch {
            revision,
            recorded: r,
            current,
            file,
        } => {
            assert_eq!(
                (revision.as_str(), r.as_str(), current.as_str()),
                ("a1", recorded.as_str(), now.as_str())
            );
            assert!(file.ends_with("versions/a.sql"), "{file}");
        }
        other => panic!("expected a checksum mismatch, got {other}"),
    }
    assert!(!tables(&mut c).contains(&"t2".to_owned()), "nothing ran");
    // Whitespace-only edits do not count.
    std::fs::write(
        dir.path().join("versions/a.sql"),
        rev(
            "a1",
            "None",
            "CREATE TABLE t1 (id int);   \r\n\r\n",
            "DROP TABLE t1;",
        ),
    )
    .unwrap();
    let same = load_versions(&dir.path().join("versions")).unwrap();
    Engine::new(&same, Settings::default())
        .upgrade(&mut c, "head", &mut |_| {})
        .unwrap();
}

#[test]
fn a_syntax_error_names_the_file_line_and_sqlstate_and_rolls_back() {
    let bad = "-- broken\n-- revision: b2\n-- down_revision: a1\n\n-- alembic:upgrade\nCREATE TABLE ok2 (id int);\nCREATE TABEL nope (id int);\n\n-- alembic:downgrade\nDROP TABLE ok2;\n";
    let (_dir, map) = chain(&[
        (
            "a.sql",
            &rev(
                "a1",
                "None",
                "CREATE TABLE ok1 (id int);",
                "DROP TABLE ok1;",
            ),
        ),
        ("b.sql", bad),
    ]);
    let db = db();
    let mut c = db.connect().unwrap();
    let err = Engine::new(&map, Settings::default())
        .upgrade(&mut c, "head", &mut |_| {})
        .unwrap_err();
    let EngineError::Sql(f) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (f.revision.as_str(), f.line, f.code.as_str()),
        ("b2", 7, "42601")
    );
    assert!(
        f.message.contains("syntax error at or near \"TABEL\""),
        "{}",
        f.message
    );
    assert!(f.file.ends_with("versions/b.sql"));
    let text = err.to_string();
    assert!(
        text.starts_with("upgrade of revision b2 failed at "),
        "{text}"
    );
    assert!(
        text.contains("b.sql:7: syntax error at or near \"TABEL\" (SQLSTATE 42601)"),
        "{text}"
    );
    // One transaction per run (as Alembic on PostgreSQL): nothing stays.
    assert_eq!(
        tables(&mut c),
        ["alembic_version", "alembic_version_ledger"]
    );
    assert!(rows(&mut c, "SELECT version_num FROM alembic_version").is_empty());
}

#[test]
fn a_failure_without_a_position_is_found_by_replaying_statements() {
    let up = "CREATE TABLE x1 (id int);\n\nINSERT INTO x1 VALUES (1);\nINSERT INTO x1\n    VALUES (1 / 0);";
    let (_dir, map) = chain(&[("a.sql", &rev("a1", "None", up, "DROP TABLE x1;"))]);
    let db = db();
    let mut c = db.connect().unwrap();
    let err = Engine::new(&map, Settings::default())
        .upgrade(&mut c, "head", &mut |_| {})
        .unwrap_err();
    let EngineError::Sql(f) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (f.line, f.code.as_str(), f.message.as_str()),
        (9, "22012", "division by zero")
    );
}

#[test]
fn relation_already_exists_suggests_stamp() {
    let (_dir, map) = chain(&[(
        "a.sql",
        &rev(
            "a1",
            "None",
            "CREATE TABLE dup (id int);",
            "DROP TABLE dup;",
        ),
    )]);
    let db = db();
    let mut c = db.connect().unwrap();
    c.batch_execute("CREATE TABLE dup (id int)").unwrap();
    let err = Engine::new(&map, Settings::default())
        .upgrade(&mut c, "head", &mut |_| {})
        .unwrap_err();
    let EngineError::Sql(f) = &err else {
        panic!("{err}")
    };
    assert_eq!((f.code.as_str(), f.line), ("42P07", 6));
    assert!(
        f.advice
            .as_deref()
            .unwrap_or("")
            .contains("cargo alembic stamp a1"),
        "{err}"
    );
}

#[test]
fn a_permission_error_is_reported_with_its_sqlstate() {
    let (_dir, map) = chain(&[(
        "a.sql",
        &rev(
            "a1",
            "None",
            "CREATE TABLE secret (id int);",
            "DROP TABLE secret;",
        ),
    )]);
    let db = db();
    let mut admin = db.connect().unwrap();
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'limited') THEN CREATE ROLE limited LOGIN; END IF; END $$;\
             CREATE SCHEMA ops; GRANT USAGE, CREATE ON SCHEMA ops TO limited; GRANT CONNECT ON DATABASE {} TO limited;",
            db.name()
        ))
        .unwrap();
    let url = db.url().replacen("postgres@", "limited@", 1);
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let settings = Settings {
        version_table_schema: Some("ops".into()),
        ..Settings::default()
    };
    let err = Engine::new(&map, settings)
        .upgrade(&mut c, "head", &mut |_| {})
        .unwrap_err();
    let EngineError::Sql(f) = &err else {
        panic!("{err}")
    };
    assert_eq!((f.code.as_str(), f.line), ("42501", 6), "{err}");
    assert!(
        f.message.contains("permission denied for schema public"),
        "{}",
        f.message
    );
}

#[test]
fn transaction_per_migration_keeps_what_succeeded() {
    let files = [
        (
            "a.sql",
            rev("a1", "None", "CREATE TABLE p1 (id int);", "DROP TABLE p1;"),
        ),
        (
            "b.sql",
            rev("b2", "a1", "CREATE TABLE p2 (id int);", "DROP TABLE p2;"),
        ),
        ("c.sql", rev("c3", "b2", "SELECT 1 / 0;", "")),
    ];
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let (_dir, map) = chain(&refs);
    let db = db();
    let mut c = db.connect().unwrap();
    let settings = Settings {
        transaction_per_migration: true,
        ..Settings::default()
    };
    Engine::new(&map, settings)
        .upgrade(&mut c, "head", &mut |_| {})
        .unwrap_err();
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        ["b2"]
    );
    assert!(tables(&mut c).contains(&"p2".to_owned()));
}

#[test]
fn a_non_transactional_failure_is_recorded_and_blocks_until_stamped() {
    let nt = "-- index\n-- revision: b2\n-- down_revision: a1\n-- transactional: false\n\n-- alembic:upgrade\nCREATE INDEX CONCURRENTLY nt_id ON nt (id);\nCREATE INDEX CONCURRENTLY nt_bad ON nt (nope);\n\n-- alembic:downgrade\nDROP INDEX CONCURRENTLY IF EXISTS nt_bad;\nDROP INDEX CONCURRENTLY IF EXISTS nt_id;\n";
    let (_dir, map) = chain(&[
        (
            "a.sql",
            &rev("a1", "None", "CREATE TABLE nt (id int);", "DROP TABLE nt;"),
        ),
        ("b.sql", nt),
    ]);
    let db = db();
    let mut c = db.connect().unwrap();
    let engine = Engine::new(&map, Settings::default());
    let err = engine.upgrade(&mut c, "head", &mut |_| {}).unwrap_err();
    let EngineError::Sql(f) = &err else {
        panic!("{err}")
    };
    assert_eq!((f.revision.as_str(), f.line), ("b2", 8));
    // a1 was committed before b2 started; b2's first index stays.
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        ["a1"]
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT indexname::text FROM pg_indexes WHERE tablename = 'nt'"
        ),
        ["nt_id"]
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT status FROM alembic_version_ledger WHERE revision = 'b2'"
        ),
        ["failed"]
    );
    let again = engine.upgrade(&mut c, "head", &mut |_| {}).unwrap_err();
    assert!(
        matches!(again, EngineError::FailedEarlier { ref revision, .. } if revision == "b2"),
        "{again}"
    );
    // Fixed by hand, then stamped: the run can go on.
    c.batch_execute("CREATE INDEX nt_bad ON nt (id)").unwrap();
    engine.stamp(&mut c, &["b2"], false).unwrap();
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        ["b2"]
    );
    let report = engine.upgrade(&mut c, "head", &mut |_| {}).unwrap();
    assert_eq!(
        report.unverified,
        ["b2"],
        "a stamped revision is unverified, not an error"
    );
}

#[test]
fn downgrade_through_an_irreversible_revision_stops_before_anything_runs() {
    let files = [
        ("a.sql", rev("a1", "None", "CREATE TABLE i1 (id int);", "DROP TABLE i1;")),
        ("b.sql", "-- one way\n-- revision: b2\n-- down_revision: a1\n\n-- alembic:upgrade\nCREATE TABLE i2 (id int);\n".to_owned()),
        ("c.sql", rev("c3", "b2", "CREATE TABLE i3 (id int);", "DROP TABLE i3;")),
    ];
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let (_dir, map) = chain(&refs);
    let db = db();
    let mut c = db.connect().unwrap();
    let engine = Engine::new(&map, Settings::default());
    engine.upgrade(&mut c, "head", &mut |_| {}).unwrap();
    let err = engine.downgrade(&mut c, "base", &mut |_| {}).unwrap_err();
    assert!(
        matches!(err, EngineError::Irreversible { ref revision, .. } if revision == "b2"),
        "{err}"
    );
    assert!(
        tables(&mut c).contains(&"i3".to_owned()),
        "c3 was not downgraded either"
    );
    engine.downgrade(&mut c, "b2", &mut |_| {}).unwrap();
    assert!(!tables(&mut c).contains(&"i3".to_owned()));
}

#[test]
fn unknown_rows_in_the_version_table_are_refused() {
    let map = repo_chain();
    let db = db();
    let mut c = db.connect().unwrap();
    let engine = Engine::new(&map, Settings::default());
    c.batch_execute(&engine.create_tables_sql()).unwrap();
    c.batch_execute("INSERT INTO alembic_version VALUES ('feedfacecafe')")
        .unwrap();
    let err = engine.upgrade(&mut c, "head", &mut |_| {}).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the database is at feedfacecafe, which is not in the revision chain"),
        "{err}"
    );
}

#[test]
fn offline_sql_is_what_would_run() {
    let map = repo_chain();
    let engine = Engine::new(&map, Settings::default());
    let sql = engine.upgrade_sql(&[], "head").unwrap();
    assert!(sql.starts_with("CREATE TABLE IF NOT EXISTS alembic_version ("));
    assert!(sql.contains("INSERT INTO alembic_version (version_num) VALUES ('c1a0e5b2d3f4');"));
    assert!(
        sql.contains("COMMIT;\n\n-- Running upgrade f4d3b8e5a6c7 -> a5e4c9f6b7d8"),
        "the non-transactional revision runs outside"
    );
    assert!(sql.contains("UPDATE alembic_version SET version_num = 'f0d9b4e1a2c3' WHERE version_num = 'e9c8a3d0f1b2';"));
    // Running the offline script with psql gives the same database as
    // running online.
    let db = db();
    let mut c = db.connect().unwrap();
    psql(&db, &sql);
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        ["f0d9b4e1a2c3"]
    );
    let from: Vec<usize> = vec![map.index_of("f0d9b4e1a2c3").unwrap()];
    let down = engine.downgrade_sql(&from, "base").unwrap();
    psql(&db, &down);
    assert_eq!(
        tables(&mut c),
        ["alembic_version", "alembic_version_ledger"]
    );
}

/// Runs a script with psql, as a user of `--sql` would.
fn psql(db: &Database, sql: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("script.sql");
    std::fs::write(&file, sql).unwrap();
    let out = std::process::Command::new("psql")
        .args([db.url(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn accept_records_a_deliberate_edit_and_keeps_the_old_checksum() {
    let (dir, map) = chain(&[(
        "a.sql",
        &rev(
            "a1",
            "None",
            "CREATE TABLE acc (id int);",
            "DROP TABLE acc;",
        ),
    )]);
    let db = db();
    let mut c = db.connect().unwrap();
    Engine::new(&map, Settings::default())
        .upgrade(&mut c, "head", &mut |_| {})
        .unwrap();
    let old = map.get("a1").unwrap().upgrade.checksum().to_string();
    std::fs::write(
        dir.path().join("versions/a.sql"),
        rev(
            "a1",
            "None",
            "-- a comment\nCREATE TABLE acc (id int);",
            "DROP TABLE acc;",
        ),
    )
    .unwrap();
    let edited = load_versions(&dir.path().join("versions")).unwrap();
    let engine = Engine::new(&edited, Settings::default());
    assert!(matches!(
        engine.upgrade(&mut c, "head", &mut |_| {}),
        Err(EngineError::ChecksumMismatch { .. })
    ));
    let previous = engine
        .accept(&mut c, "a1", "added a comment", "dba@example.com")
        .unwrap();
    assert_eq!(previous.map(|p| p.0), Some(old.clone()));
    engine.upgrade(&mut c, "head", &mut |_| {}).unwrap();
    let row = c
        .query_one("SELECT accepted->0->>'upgrade_from', accepted->0->>'reason', accepted->0->>'by', jsonb_array_length(accepted) FROM alembic_version_ledger WHERE revision = 'a1'", &[])
        .unwrap();
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, String>(1),
            row.get::<_, String>(2),
            row.get::<_, i32>(3)
        ),
        (old, "added a comment".into(), "dba@example.com".into(), 1)
    );
    assert!(matches!(
        engine.accept(&mut c, "a1", "again", "x"),
        Err(EngineError::NothingToAccept { .. })
    ));
    engine.downgrade(&mut c, "base", &mut |_| {}).unwrap();
    assert!(matches!(
        engine.accept(&mut c, "a1", "gone", "x"),
        Err(EngineError::NotApplied { .. })
    ));
}

#[test]
fn stamp_purge_replaces_rows_the_chain_does_not_know() {
    let map = repo_chain();
    let db = db();
    let mut c = db.connect().unwrap();
    let engine = Engine::new(&map, Settings::default());
    c.batch_execute(&engine.create_tables_sql()).unwrap();
    c.batch_execute("INSERT INTO alembic_version VALUES ('feedfacecafe')")
        .unwrap();
    assert!(matches!(
        engine.stamp(&mut c, &["head"], false),
        Err(EngineError::UnknownRevisions { .. })
    ));
    let report = engine.stamp(&mut c, &["e3c2", "a5e4"], true).unwrap();
    assert_eq!(report.before, ["feedfacecafe"]);
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        ["a5e4c9f6b7d8"],
        "e3c2 is implied by a5e4"
    );
    engine.stamp(&mut c, &["b6f5"], false).unwrap();
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        ["a5e4c9f6b7d8", "b6f5d0a7c8e9"],
        "another lineage adds a row"
    );
    engine.stamp(&mut c, &["base"], false).unwrap();
    assert!(rows(&mut c, "SELECT version_num FROM alembic_version").is_empty());
}

#[test]
fn grouped_revisions_report_their_own_time_and_failures_their_own_line() {
    let mut files = Vec::new();
    let mut down = "None".to_owned();
    for n in 0..40 {
        let id = format!("g{n:02}");
        let up = if n == 27 {
            "CREATE TABLE g27 (id int);\nSELECT 1 / 0;".to_owned()
        } else {
            format!("CREATE TABLE g{n:02} (id int);\nSELECT pg_sleep(0.005);")
        };
        files.push((
            format!("{id}.sql"),
            rev(&id, &down, &up, &format!("DROP TABLE g{n:02};")),
        ));
        down = id;
    }
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let (_dir, map) = chain(&refs);
    let db = db();
    let mut c = db.connect().unwrap();
    let engine = Engine::new(&map, Settings::default());
    let mut seen = Vec::new();
    let err = engine
        .upgrade(&mut c, "g26", &mut |s| seen.push(s.duration))
        .ok_summary();
    assert_eq!(seen.len(), 27, "{err}");
    assert!(
        seen.iter().all(|d| d.as_millis() >= 5),
        "each revision's own time: {seen:?}"
    );
    let err = engine.upgrade(&mut c, "head", &mut |_| {}).unwrap_err();
    let EngineError::Sql(f) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (f.revision.as_str(), f.line, f.code.as_str()),
        ("g27", 7, "22012"),
        "{err}"
    );
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        ["g26"],
        "the failed run changed nothing"
    );
}

trait OkSummary {
    fn ok_summary(self) -> String;
}

impl OkSummary for Result<alembic_embed::Report, EngineError> {
    fn ok_summary(self) -> String {
        match self {
            Ok(r) => format!("{} steps", r.steps.len()),
            Err(e) => panic!("{e}"),
        }
    }
}
