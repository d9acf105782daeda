//! The engine against a real PostgreSQL (a throwaway local server).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::OnceLock;

use alembic_embed::cli_engine::{load_versions, Engine, RevisionMap, Settings};
use alembic_embed::EngineError;
use alembic_throwaway::{Choice, Database, Server};

#[path = "support/outcome.rs"]
mod outcome;
#[path = "support/roles.rs"]
mod roles;

use outcome::outcome;

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
    // Alembic would unwind `audit@base` from the tree's root, removing the
    // trunk too: refused by design, naming the command that removes only
    // the branch (checked against Python Alembic).
    let refused = engine
        .downgrade(&mut c, "audit@base", &mut |_| {})
        .unwrap_err();
    assert!(
        refused.to_string().starts_with(
            "`downgrade audit@base` would also remove a5e4c9f6b7d8, f4d3b8e5a6c7, e3c2a7d4f5b6, d2b1f6c3e4a5, c1a0e5b2d3f4"
        ),
        "{refused}"
    );
    assert_eq!(version(&mut c), ["a5e4c9f6b7d8", "d8b7f2c9e0a1"]);
    engine
        .downgrade(&mut c, "audit@e3c2a7d4f5b6", &mut |_| {})
        .unwrap();
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
            ..
        } => {
            assert_eq!(
                (revision.as_str(), r.as_str(), current.as_str()),
                ("a1", recorded.as_str(), now.as_str())
            );
            assert!(file.ends_with("versions/a.sql"), "{}", file.display());
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
        (
            f.revision.as_str(),
            f.line,
            f.code.as_deref().unwrap_or_default()
        ),
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
        (
            f.line,
            f.code.as_deref().unwrap_or_default(),
            f.message.as_str()
        ),
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
    assert_eq!(
        (f.code.as_deref().unwrap_or_default(), f.line),
        ("42P07", 6)
    );
    assert!(
        f.advice
            .as_deref()
            .unwrap_or("")
            .contains("cargo alembic stamp a1"),
        "{err}"
    );
}

/// The server out of lock slots (SQLSTATE 53200: a run in one transaction
/// creating thousands of tables) gets advice: a transaction per revision,
/// or a larger lock table; a run already per revision gets none.
#[test]
fn out_of_shared_memory_suggests_a_transaction_per_revision() {
    let raise = "DO $$ BEGIN RAISE EXCEPTION 'out of shared memory' USING ERRCODE = '53200', \
                 HINT = 'You might need to increase max_locks_per_transaction.'; END $$;";
    let (_dir, map) = chain(&[("a.sql", &rev("a1", "None", raise, "SELECT 1;"))]);
    let db = db();
    let mut c = db.connect().unwrap();
    let mut advice = |transaction_per_migration: bool| {
        let settings = Settings {
            transaction_per_migration,
            ..Settings::default()
        };
        match Engine::new(&map, settings).upgrade(&mut c, "head", &mut |_| {}) {
            Err(EngineError::Sql(f)) => {
                assert_eq!(f.code.as_deref(), Some("53200"));
                f.advice.clone()
            }
            other => panic!("{other:?}"),
        }
    };
    let one = advice(false).unwrap_or_default();
    assert!(
        one.contains("cargo alembic upgrade --transaction-per-migration")
            && one.contains("max_locks_per_transaction"),
        "{one}"
    );
    assert_eq!(advice(true), None);
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
    assert_eq!(
        (f.code.as_deref().unwrap_or_default(), f.line),
        ("42501", 6),
        "{err}"
    );
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
    assert_eq!(previous.len(), 1);
    assert_eq!(
        previous[0].previous.as_ref().map(|p| p.0.clone()),
        Some(old.clone())
    );
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
    // As Python Alembic 1.20 leaves it: both rows, although a5e4 implies
    // e3c2 (its stamp steps are computed from the rows before, not after).
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        ["a5e4c9f6b7d8", "e3c2a7d4f5b6"],
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
        (
            f.revision.as_str(),
            f.line,
            f.code.as_deref().unwrap_or_default()
        ),
        ("g27", 7, "22012"),
        "{err}"
    );
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        ["g26"],
        "the failed run changed nothing"
    );
}

/// A run's revisions are recorded at its commit, each with the time the
/// server measured for it alone: not the time since its round trip began
/// (the revisions after a slow one in the same round trip are quick).
#[test]
fn each_revision_is_recorded_with_its_own_time() {
    let files: Vec<(String, String)> = (0..6)
        .map(|n| {
            let down = if n == 0 {
                "None".to_owned()
            } else {
                format!("d{}", n - 1)
            };
            let up = if n == 1 {
                "SELECT pg_sleep(0.2);".to_owned()
            } else {
                format!("CREATE TABLE d{n} (id int);")
            };
            (format!("d{n}.sql"), rev(&format!("d{n}"), &down, &up, ""))
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let (_dir, map) = chain(&refs);
    let db = db();
    let mut c = db.connect().unwrap();
    let mut seen = Vec::new();
    Engine::new(&map, Settings::default())
        .upgrade(&mut c, "head", &mut |s| {
            seen.push((s.revision.clone(), s.duration.as_secs_f64() * 1000.0))
        })
        .unwrap();
    let recorded: Vec<(String, f64)> = c
        .query(
            "SELECT revision::text, duration_ms FROM alembic_version_ledger ORDER BY revision",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(recorded.len(), 6);
    for ((id, ms), (seen_id, seen_ms)) in recorded.iter().zip(&seen) {
        assert_eq!(id, seen_id);
        assert!(
            (ms - seen_ms).abs() < 0.01,
            "the ledger has what the step reported: {recorded:?} {seen:?}"
        );
        if id == "d1" {
            assert!(*ms >= 200.0, "{recorded:?}");
        } else {
            assert!(
                *ms < 150.0,
                "{id} is not charged with d1's sleep: {recorded:?}"
            );
        }
    }
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        ["d5"]
    );
}

/// The version table and the ledger are written with the commit: a
/// revision that breaks them makes the commit fail, which names the
/// transaction's revisions and leaves none of them applied, the
/// connection outside any transaction; with a transaction per revision,
/// the ones before it stay.
#[test]
fn a_commit_that_cannot_record_its_revisions_rolls_them_back() {
    let files = [
        (
            "a.sql",
            rev("a1", "None", "CREATE TABLE k1 (id int);", "DROP TABLE k1;"),
        ),
        (
            "b.sql",
            rev("b2", "a1", "DROP TABLE alembic_version_ledger;", ""),
        ),
    ];
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let (_dir, map) = chain(&refs);
    for per_revision in [false, true] {
        let db = db();
        let mut c = db.connect().unwrap();
        let settings = Settings {
            transaction_per_migration: per_revision,
            ..Settings::default()
        };
        let err = Engine::new(&map, settings)
            .upgrade(&mut c, "head", &mut |_| {})
            .unwrap_err()
            .to_string();
        let (named, versions, k1) = if per_revision {
            (
                "revision b2 (it was rolled back: none of it is applied)",
                vec!["a1".to_owned()],
                1,
            )
        } else {
            (
                "revisions a1, b2 (it was rolled back: none of them is applied)",
                vec![],
                0,
            )
        };
        assert!(
            err.contains(&format!(
                "cannot record and commit the transaction of {named}"
            )),
            "{err}"
        );
        assert!(err.contains("alembic_version_ledger"), "{err}");
        assert_eq!(
            rows(&mut c, "SELECT version_num FROM alembic_version"),
            versions
        );
        let tables: i64 = c
            .query_one("SELECT count(*) FROM pg_tables WHERE tablename = 'k1'", &[])
            .unwrap()
            .get(0);
        assert_eq!(tables, k1, "per revision: {per_revision}");
        // Not in the failed transaction (queries would fail), nor in one
        // that wrote (it would have a transaction id).
        let in_transaction: bool = c
            .query_one("SELECT pg_current_xact_id_if_assigned() IS NOT NULL", &[])
            .unwrap()
            .get(0);
        assert!(!in_transaction, "the failed transaction is rolled back");
    }
}

/// A first run on a new database, started as the CLI and a service start
/// (the state read without the lock first), meets the missing tables once:
/// one error in the server's log (that read's), then the lock, the tables
/// and the run; a second run none. Before, the lock and a second read in
/// one round trip failed the same way (two errors, two round trips more).
#[test]
fn a_first_run_finds_the_tables_missing_once() {
    use alembic_embed::Direction;
    // A server of its own: its log holds only this test's errors.
    let server = Server::start(Choice::Local).unwrap();
    let log = server.data_dir().unwrap().parent().unwrap().join("log");
    let errors = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter(|l| l.contains("ERROR:"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (_dir, map) = tables_chain(3);
    let db = server.database().unwrap();
    let mut c = db.connect().unwrap();
    let settings = Settings::default();
    let engine = Engine::new(&map, settings.clone());
    for (run, steps, expected_errors) in [(1, 3, 1), (2, 0, 1)] {
        let session = settings.open_run(&mut c).unwrap();
        let report = engine
            .run_in(&mut c, session, "head", Direction::Upgrade, &mut |_| {})
            .unwrap();
        assert_eq!(report.steps.len(), steps, "run {run}");
        let errors = errors();
        assert_eq!(errors.len(), expected_errors, "run {run}: {errors:?}");
        assert!(
            errors[0].contains("relation \"alembic_version\" does not exist"),
            "{errors:?}"
        );
    }
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

/// A chain of `n` revisions, each creating a table (running one twice fails).
fn tables_chain(n: usize) -> (tempfile::TempDir, RevisionMap) {
    let files: Vec<(String, String)> = (0..n)
        .map(|k| {
            let down = if k == 0 {
                "None".to_owned()
            } else {
                format!("r{:02}", k - 1)
            };
            (
                format!("r{k:02}.sql"),
                rev(
                    &format!("r{k:02}"),
                    &down,
                    &format!("CREATE TABLE t{k:02} (id int);"),
                    &format!("DROP TABLE t{k:02};"),
                ),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    chain(&refs)
}

/// A run on a fresh database (whose first attempt, in one round trip,
/// finds no tables and falls back) and a run on a migrated one (done in
/// that round trip, under `repeatable read` too) leave the connection
/// holding no advisory lock, outside any transaction, and the server
/// raised no warning (an unneeded ROLLBACK, or an unlock of a lock not
/// held, would).
#[test]
fn runs_leave_no_lock_no_transaction_and_no_warning() {
    let (_dir, map) = tables_chain(3);
    let db = db();
    let notices = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = notices.clone();
    let mut c = postgres::Config::from_str(db.url())
        .unwrap()
        .notice_callback(move |n| seen.lock().unwrap().push(n.message().to_owned()))
        .connect(postgres::NoTls)
        .unwrap();
    let held = "SELECT count(*)::text FROM pg_catalog.pg_locks \
                WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()";
    for (run, isolation) in [
        (1, "read committed"),
        (2, "read committed"),
        (3, "repeatable read"),
    ] {
        c.batch_execute(&format!(
            "SET default_transaction_isolation = '{isolation}'"
        ))
        .unwrap();
        let report = Engine::new(&map, Settings::default())
            .upgrade(&mut c, "head", &mut |_| {})
            .unwrap();
        assert_eq!(
            report.steps.len(),
            if run == 1 { 3 } else { 0 },
            "run {run}"
        );
        assert_eq!(rows(&mut c, held), ["0"], "run {run}: no lock held");
        // Outside a transaction: a failed statement leaves the next one
        // working.
        assert!(c.batch_execute("SELECT 1 / 0").is_err());
        assert_eq!(rows(&mut c, "SELECT 'ok'"), ["ok"], "run {run}");
    }
    assert!(
        notices.lock().unwrap().is_empty(),
        "{:?}",
        notices.lock().unwrap()
    );
}

/// A run that finds the database at every head with every revision
/// recorded as it is now decides off the rows as read (no state, no plan);
/// anything else takes the engine's long way. Either way, on a chain with
/// two heads, a run on the snapshot gives what a run under the lock gives:
/// the same report, warning or error, for `heads`, `head` (ambiguous) and
/// the heads' ids, under each checksum policy.
#[test]
fn a_run_on_a_snapshot_at_the_heads_gives_what_a_run_under_the_lock_gives() {
    use alembic_embed::{ChecksumPolicy, Direction};
    let (_dir, map) = chain(&[
        (
            "a1.sql",
            &rev("a1", "None", "CREATE TABLE a (i int);", "DROP TABLE a;"),
        ),
        (
            "b2.sql",
            &rev("b2", "a1", "CREATE TABLE b (i int);", "DROP TABLE b;"),
        ),
        (
            "c3.sql",
            &rev("c3", "a1", "CREATE TABLE c (i int);", "DROP TABLE c;"),
        ),
    ]);
    let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let ledger = "alembic_version_ledger";
    let cases = [
        ("as recorded", String::new()),
        (
            "the ledger in another order",
            format!(
                "CREATE TEMP TABLE l AS SELECT * FROM {ledger}; DELETE FROM {ledger}; \
                 INSERT INTO {ledger} SELECT * FROM l ORDER BY revision DESC"
            ),
        ),
        (
            "a downgrade section changed",
            format!("UPDATE {ledger} SET downgrade_checksum = '{other}' WHERE revision = 'c3'"),
        ),
        (
            "an upgrade section edited",
            format!("UPDATE {ledger} SET upgrade_checksum = '{other}' WHERE revision = 'a1'"),
        ),
        (
            "a revision without a row",
            format!("DELETE FROM {ledger} WHERE revision = 'b2'"),
        ),
        (
            "a failed row",
            format!(
                "INSERT INTO {ledger} (revision, upgrade_checksum, tool, status, error) \
                 VALUES ('ffff0002', '{other}', 'elsewhere', 'failed', 'boom')"
            ),
        ),
        (
            "one head's row",
            "DELETE FROM alembic_version WHERE version_num = 'c3'".to_owned(),
        ),
    ];
    // The case's database; again after a run that applied something.
    let prepared = |sql: &str| {
        let db = db();
        let mut c = db.connect().unwrap();
        Engine::new(&map, Settings::default())
            .upgrade(&mut c, "heads", &mut |_| {})
            .unwrap();
        c.batch_execute(sql).unwrap();
        (db, c)
    };
    for (case, sql) in cases {
        let (mut _db, mut c) = prepared(&sql);
        for policy in [ChecksumPolicy::Refuse, ChecksumPolicy::Warn] {
            let settings = Settings {
                checksum_mismatch: policy,
                ..Settings::default()
            };
            let engine = Engine::new(&map, settings.clone());
            for target in ["heads", "head", "b2", "c3"] {
                let session = settings.open_run(&mut c).unwrap();
                assert!(session.is_snapshot(), "{case}");
                let got = engine.run_in(&mut c, session, target, Direction::Upgrade, &mut |_| {});
                if got.as_ref().is_ok_and(|r| !r.steps.is_empty()) {
                    (_db, c) = prepared(&sql);
                }
                let expected = engine.upgrade(&mut c, target, &mut |_| {});
                if expected.as_ref().is_ok_and(|r| !r.steps.is_empty()) {
                    (_db, c) = prepared(&sql);
                }
                assert_eq!(
                    outcome(got),
                    outcome(expected),
                    "{case}, {policy:?}, {target}"
                );
            }
        }
    }
}

/// The lock key as the first release computed it (a walk over
/// `current_schemas(false)`), kept here to pin the key: binaries of both
/// releases in one fleet must take one lock.
fn first_release_key(settings: &Settings) -> String {
    let table = settings.version_table.replace('\'', "''");
    let schema = match &settings.version_table_schema {
        Some(schema) => format!("'{}'", schema.replace('\'', "''")),
        None => format!(
            "COALESCE((SELECT s FROM pg_catalog.unnest(pg_catalog.current_schemas(false)) WITH ORDINALITY AS p(s, n) \
             WHERE pg_catalog.to_regclass(pg_catalog.quote_ident(s) || '.' || pg_catalog.quote_ident('{table}')) IS NOT NULL \
             ORDER BY n LIMIT 1), pg_catalog.current_schema()::text, '')"
        ),
    };
    format!("pg_catalog.hashtextextended('alembic:' || {schema} || '.' || '{table}', 0)")
}

#[test]
fn lock_keys_match_the_first_release() {
    let db = db();
    let mut c = db.connect().unwrap();
    c.batch_execute(
        "CREATE SCHEMA elsewhere; CREATE SCHEMA \"Odd Schema\";
         CREATE TABLE elsewhere.alembic_version (version_num varchar(32));
         CREATE TABLE \"Odd Schema\".\"Versions\" (version_num varchar(32));
         CREATE TABLE public.\"Versions\" (version_num varchar(32));",
    )
    .unwrap();
    let search_paths = [
        "public",
        "elsewhere, public",
        "public, elsewhere",
        "\"Odd Schema\", public",
        "missing, elsewhere",
        "missing",
        "''",
    ];
    let settings = [
        Settings::default(),
        Settings {
            version_table: "Versions".into(),
            ..Settings::default()
        },
        Settings {
            version_table: "absent".into(),
            ..Settings::default()
        },
        Settings {
            version_table_schema: Some("Odd Schema".into()),
            version_table: "Versions".into(),
            ..Settings::default()
        },
    ];
    for path in search_paths {
        c.batch_execute(&format!("SET search_path = {path}"))
            .unwrap();
        for s in &settings {
            let row = c
                .query_one(
                    &format!("SELECT {}, {}", s.lock_key_sql(), first_release_key(s)),
                    &[],
                )
                .unwrap();
            let (now, before): (i64, i64) = (row.get(0), row.get(1));
            assert_eq!(
                now, before,
                "search path {path}, table {:?} in {:?}",
                s.version_table, s.version_table_schema
            );
        }
    }
}

#[test]
fn migrators_spelling_one_version_table_differently_take_one_lock() {
    let (_dir, map) = tables_chain(6);
    let db = db();
    // `public` configured, no schema, and no schema with a search path that
    // finds `public` first: one table, so one lock.
    let spellings: [(Option<&str>, Option<&str>); 3] = [
        (Some("public"), None),
        (None, None),
        (None, Some("public, elsewhere")),
    ];
    db.connect()
        .unwrap()
        .batch_execute("CREATE SCHEMA elsewhere")
        .unwrap();
    let start = std::sync::Barrier::new(8);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|k| {
                let (schema, search_path) = spellings[k % spellings.len()];
                let (map, db, start) = (&map, &db, &start);
                scope.spawn(move || {
                    let mut c = db.connect().unwrap();
                    if let Some(path) = search_path {
                        c.batch_execute(&format!("SET search_path = {path}"))
                            .unwrap();
                    }
                    let settings = Settings {
                        version_table_schema: schema.map(str::to_owned),
                        ..Settings::default()
                    };
                    start.wait();
                    Engine::new(map, settings)
                        .upgrade(&mut c, "head", &mut |_| {})
                        .map(|r| r.steps.len())
                })
            })
            .collect();
        let applied: usize = handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap_or_else(|e| panic!("{e}")))
            .sum();
        assert_eq!(applied, 6, "each revision ran exactly once");
    });
    let mut c = db.connect().unwrap();
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        ["r05"]
    );
    assert_eq!(
        rows(&mut c, "SELECT count(*)::text FROM alembic_version_ledger"),
        ["6"]
    );
}

#[test]
fn a_role_without_create_runs_a_no_op_upgrade_and_reads_current() {
    let (_dir, map) = tables_chain(2);
    let db = db();
    let engine = Engine::new(&map, Settings::default());
    engine
        .upgrade(&mut db.connect().unwrap(), "head", &mut |_| {})
        .unwrap();
    let url = roles::dml_only(&db, "app_dml");
    let mut app = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let report = engine.upgrade(&mut app, "head", &mut |_| {}).unwrap();
    assert!(report.steps.is_empty());
    assert_eq!(report.after, ["r01"]);
    assert_eq!(engine.current(&mut app).unwrap().heads, ["r01"]);

    // A pending revision needs CREATE: PostgreSQL's error, naming the
    // revision and its file.
    let (_dir, more) = tables_chain(3);
    let err = Engine::new(&more, Settings::default())
        .upgrade(&mut app, "head", &mut |_| {})
        .unwrap_err();
    let EngineError::Sql(f) = &err else {
        panic!("{err}")
    };
    assert_eq!(
        (f.revision.as_str(), f.code.as_deref().unwrap_or_default()),
        ("r02", "42501"),
        "{err}"
    );
    assert!(f.file.ends_with("r02.sql"), "{}", f.file.display());
}

#[test]
fn accept_takes_current_and_relative_identifiers_and_writes_only_after_checking() {
    let (dir, map) = tables_chain(3);
    let db = db();
    let mut c = db.connect().unwrap();
    Engine::new(&map, Settings::default())
        .upgrade(&mut c, "head", &mut |_| {})
        .unwrap();
    // Edit the head and the one below it.
    for k in [1, 2] {
        let path = dir.path().join(format!("versions/r{k:02}.sql"));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("(id int)", "(id bigint)")).unwrap();
    }
    let edited = load_versions(&dir.path().join("versions")).unwrap();
    let engine = Engine::new(&edited, Settings::default());
    let ledger = |c: &mut postgres::Client| {
        rows(
            c,
            "SELECT revision || ' ' || jsonb_array_length(accepted) FROM alembic_version_ledger",
        )
    };
    // Not applied, or no such revision: an error, and nothing written.
    for bad in ["current+1", "nope"] {
        assert!(engine.accept(&mut c, bad, "why", "me").is_err(), "{bad}");
        assert_eq!(ledger(&mut c), ["r00 0", "r01 0", "r02 0"]);
    }
    let accepted = engine.accept(&mut c, "current", "widen ids", "me").unwrap();
    assert_eq!(
        accepted
            .iter()
            .map(|a| a.revision.as_str())
            .collect::<Vec<_>>(),
        ["r02"]
    );
    let accepted = engine
        .accept(&mut c, "current-1", "widen ids", "me")
        .unwrap();
    assert_eq!(accepted[0].revision, "r01");
    assert_eq!(ledger(&mut c), ["r00 0", "r01 1", "r02 1"]);
    let err = engine.accept(&mut c, "heads", "again", "me").unwrap_err();
    assert!(matches!(err, EngineError::NothingToAccept { .. }), "{err}");
}

#[test]
fn a_failure_says_what_each_transaction_mode_left_in_the_database() {
    let files = [
        (
            "a.sql",
            rev("a1", "None", "CREATE TABLE m1 (id int);", "DROP TABLE m1;"),
        ),
        (
            "b.sql",
            rev("b2", "a1", "CREATE TABLE m2 (id int);", "DROP TABLE m2;"),
        ),
        ("c.sql", rev("c3", "b2", "SELECT 1 / 0;", "")),
    ];
    let refs: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let (_dir, map) = chain(&refs);
    let failure = |settings: Settings| {
        let db = db();
        let err = Engine::new(&map, settings)
            .upgrade(&mut db.connect().unwrap(), "head", &mut |_| {})
            .unwrap_err();
        err.to_string()
    };
    let one = failure(Settings::default());
    assert!(
        one.ends_with("the run's transaction was rolled back, with the 2 revisions it had applied before (a1, b2): none of them is applied, and the version table is still at base"),
        "{one}"
    );
    let each = failure(Settings {
        transaction_per_migration: true,
        ..Settings::default()
    });
    assert!(
        each.ends_with("this revision's transaction was rolled back; the revisions before it in this run stay committed, and the version table is at b2"),
        "{each}"
    );
    let nt = "-- nt\n-- revision: c3\n-- down_revision: b2\n-- transactional: false\n\n-- alembic:upgrade\nSELECT 1 / 0;\n\n-- alembic:downgrade\n";
    let refs = [refs[0], refs[1], ("c.sql", nt)];
    let (_dir, map) = chain(&refs);
    let db = db();
    let err = Engine::new(&map, Settings::default())
        .upgrade(&mut db.connect().unwrap(), "head", &mut |_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("this revision runs outside a transaction, so nothing was rolled back: its statements before the failing one stay applied; the version table is at b2"),
        "{err}"
    );
    assert!(!err.contains("rolled back;"), "{err}");
}

#[test]
fn lock_timeout_gives_up_and_names_who_holds_the_lock() {
    let (_dir, map) = tables_chain(1);
    let db = db();
    let settings = Settings {
        lock_timeout: Some(std::time::Duration::from_millis(300)),
        ..Settings::default()
    };
    let mut holder = postgres::Config::from_str(db.url())
        .unwrap()
        .application_name("the-holder")
        .connect(postgres::NoTls)
        .unwrap();
    holder
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({})",
            settings.lock_key_sql()
        ))
        .unwrap();
    let mut c = db.connect().unwrap();
    let started = std::time::Instant::now();
    let err = Engine::new(&map, settings)
        .upgrade(&mut c, "head", &mut |_| {})
        .unwrap_err();
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    let text = err.to_string();
    assert!(matches!(err, EngineError::LockTimeout { .. }), "{text}");
    assert!(
        text.starts_with("another migrator held the lock of this version table for longer than the lock timeout (300ms); nothing was run; held by pid "),
        "{text}"
    );
    assert!(text.contains("application the-holder"), "{text}");
    assert!(tables(&mut c).is_empty(), "nothing was touched");
}

#[test]
fn statement_lock_timeout_stops_a_revision_queued_behind_a_long_transaction() {
    let (_dir, base) = tables_chain(1);
    let alter = rev(
        "a2",
        "r00",
        "ALTER TABLE t00 ADD COLUMN x int;",
        "ALTER TABLE t00 DROP COLUMN x;",
    );
    let nt = "-- nt\n-- revision: a2\n-- down_revision: r00\n-- transactional: false\n\n-- alembic:upgrade\nALTER TABLE t00 ADD COLUMN x int;\n\n-- alembic:downgrade\nALTER TABLE t00 DROP COLUMN x;\n";
    for (name, text) in [("transactional", alter.as_str()), ("not transactional", nt)] {
        let db = db();
        let mut c = db.connect().unwrap();
        Engine::new(&base, Settings::default())
            .upgrade(&mut c, "head", &mut |_| {})
            .unwrap();
        let (_dir, map) = chain(&[
            (
                "r00.sql",
                &rev(
                    "r00",
                    "None",
                    "CREATE TABLE t00 (id int);",
                    "DROP TABLE t00;",
                ),
            ),
            ("a2.sql", text),
        ]);
        // A long transaction reading the table.
        let mut reader = db.connect().unwrap();
        reader.batch_execute("BEGIN; SELECT * FROM t00").unwrap();
        c.batch_execute("SET lock_timeout = '7s'").unwrap();
        let settings = Settings {
            statement_lock_timeout: Some(std::time::Duration::from_millis(200)),
            ..Settings::default()
        };
        let err = Engine::new(&map, settings)
            .upgrade(&mut c, "head", &mut |_| {})
            .unwrap_err();
        let EngineError::Sql(f) = &err else {
            panic!("{name}: {err}")
        };
        assert_eq!(
            (f.revision.as_str(), f.code.as_deref().unwrap_or_default()),
            ("a2", "55P03"),
            "{name}: {err}"
        );
        assert!(
            err.to_string().contains("statement_lock_timeout"),
            "{name}: {err}"
        );
        // The session's own setting is back.
        assert_eq!(rows(&mut c, "SHOW lock_timeout"), ["7s"], "{name}");
        reader.batch_execute("ROLLBACK").unwrap();
    }
}

#[test]
fn a_tag_is_recorded_with_every_revision_a_run_applies() {
    let (_dir, map) = tables_chain(3);
    let db = db();
    let mut c = db.connect().unwrap();
    let tagged = |tag: &str| Settings {
        tag: Some(tag.into()),
        ..Settings::default()
    };
    Engine::new(&map, tagged("release-41"))
        .upgrade(&mut c, "r01", &mut |_| {})
        .unwrap();
    let engine = Engine::new(&map, tagged("JIRA-42"));
    engine.upgrade(&mut c, "head", &mut |_| {}).unwrap();
    assert_eq!(
        rows(
            &mut c,
            "SELECT revision || ' ' || tag FROM alembic_version_ledger"
        ),
        ["r00 release-41", "r01 release-41", "r02 JIRA-42"]
    );
    let current = engine.current(&mut c).unwrap();
    assert_eq!(current.ledger["r02"].tag(), Some("JIRA-42"));
    assert!(engine
        .current_text(&current, true)
        .contains("Tag: JIRA-42\n"));
}

#[test]
fn a_ledger_made_before_tags_works_and_gets_the_column_with_the_first_tag() {
    let (_dir, map) = tables_chain(3);
    let db = db();
    let mut c = db.connect().unwrap();
    let engine = Engine::new(&map, Settings::default());
    engine.upgrade(&mut c, "r00", &mut |_| {}).unwrap();
    c.batch_execute("ALTER TABLE alembic_version_ledger DROP COLUMN tag")
        .unwrap();
    assert_eq!(engine.current(&mut c).unwrap().ledger["r00"].tag(), None);
    // Without a tag, the old ledger is used as it is.
    engine.upgrade(&mut c, "r01", &mut |_| {}).unwrap();
    assert_eq!(engine.current(&mut c).unwrap().ledger.len(), 2);
    let tagged = Engine::new(
        &map,
        Settings {
            tag: Some("v2".into()),
            ..Settings::default()
        },
    );
    tagged.upgrade(&mut c, "head", &mut |_| {}).unwrap();
    assert_eq!(
        rows(
            &mut c,
            "SELECT revision || ' ' || coalesce(tag, '-') FROM alembic_version_ledger"
        ),
        ["r00 -", "r01 -", "r02 v2"]
    );
}

/// A ledger row keeps its text columns in one allocation: each reads back
/// as written, NULL as `None`, an empty string as empty.
#[test]
fn ledger_rows_read_back_every_column() {
    let (_dir, map) = tables_chain(2);
    let db = db();
    let mut c = db.connect().unwrap();
    let engine = Engine::new(&map, Settings::default());
    engine.upgrade(&mut c, "head", &mut |_| {}).unwrap();
    c.batch_execute(
        "UPDATE alembic_version_ledger SET downgrade_checksum = NULL, tool = '', status = 'failed', \
         error = 'boom: é', duration_ms = 2.5, tag = 'T-1', applied_at = '2026-01-02 03:04:05+00' \
         WHERE revision = 'r01'",
    )
    .unwrap();
    let current = engine.current(&mut c).unwrap();
    let (r00, r01) = (&current.ledger["r00"], &current.ledger["r01"]);
    assert!(r00.upgrade_checksum().starts_with("sha256:"));
    assert_eq!(r00.upgrade_checksum().len(), 71);
    assert_ne!(r00.upgrade_checksum(), r01.upgrade_checksum());
    assert!(r00
        .downgrade_checksum()
        .is_some_and(|d| d.starts_with("sha256:")));
    assert_eq!(
        (r00.status(), r00.error(), r00.tag()),
        ("applied", None, None)
    );
    assert!(r00.tool().starts_with("alembic-embed "), "{}", r00.tool());
    assert_eq!(r01.downgrade_checksum(), None);
    assert_eq!(r01.tool(), "");
    assert_eq!(r01.status(), "failed");
    assert_eq!(r01.error(), Some("boom: é"));
    assert_eq!(r01.duration_ms(), Some(2.5));
    assert_eq!(r01.tag(), Some("T-1"));
    assert!(
        r01.applied_at().starts_with("2026-01-02 03:04:05"),
        "{}",
        r01.applied_at()
    );
}
