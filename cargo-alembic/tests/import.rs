//! `import sqlx|refinery|diesel`: each tool's migrations folder, written in
//! the test as that tool lays it out, becomes a chain that `check` accepts
//! and that upgrades and downgrades a real PostgreSQL; bad input is an
//! error naming the file, and nothing is written.

#[path = "support/run.rs"]
mod run;

use std::path::Path;
use std::process::Output;

use run::{alembic_with, ok, rows, server, sql, text};

fn alembic(dir: &Path, args: &[&str], url: Option<&str>) -> Output {
    let mut all = vec!["--script-location", "db"];
    all.extend_from_slice(args);
    alembic_with(dir, &all, url)
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
    }
}

fn revision_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("db/versions"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Imports, checks, then upgrades a fresh database to head, downgrades it
/// to base (when every migration is reversible) and upgrades it again.
fn import_and_run(dir: &Path, tool: &str, reversible: bool) -> String {
    let imported = ok(alembic(dir, &["import", tool, "their-migrations"], None));
    ok(alembic(dir, &["check"], None));
    let db = server().database().unwrap();
    let url = Some(db.url());
    ok(alembic(dir, &["upgrade", "head"], url));
    if reversible {
        ok(alembic(dir, &["downgrade", "base"], url));
        ok(alembic(dir, &["upgrade", "head"], url));
    }
    let current = ok(alembic(dir, &["current"], url));
    format!("{imported}{current}")
}

#[test]
fn a_sqlx_folder_becomes_a_chain_in_sqlx_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        &[
            (
                "their-migrations/20240101120000_create_users.up.sql",
                "CREATE TABLE users (id bigint PRIMARY KEY, email text NOT NULL);\n",
            ),
            (
                "their-migrations/20240101120000_create_users.down.sql",
                "DROP TABLE users;\n",
            ),
            (
                "their-migrations/20240102090000_index_emails.up.sql",
                "-- no-transaction\nCREATE INDEX CONCURRENTLY users_email ON users (email);\n",
            ),
            (
                "their-migrations/20240102090000_index_emails.down.sql",
                "-- no-transaction\nDROP INDEX CONCURRENTLY users_email;\n",
            ),
            // Version 3 sorts after the timestamps only as text: sqlx
            // orders by number, so it is the first revision.
            (
                "their-migrations/3_add_notes.up.sql",
                "CREATE TABLE notes (id int, body text DEFAULT 'it''s; fine');\n",
            ),
            (
                "their-migrations/3_add_notes.down.sql",
                "DROP TABLE notes;\n",
            ),
            ("their-migrations/README.md", "not a migration"),
            // Not a sqlx name: sqlx skips it, and so does the import, aloud.
            (
                "their-migrations/seed.sql",
                "INSERT INTO users VALUES (1, 'x');\n",
            ),
        ],
    );
    let note = alembic(dir, &["import", "sqlx", "their-migrations"], None);
    assert_eq!(
        String::from_utf8_lossy(&note.stderr),
        "note: skipped their-migrations/seed.sql: not `<VERSION>_<DESCRIPTION>.sql`, so sqlx does not run it either\n"
    );
    std::fs::remove_dir_all(dir.join("db")).unwrap();
    let out = import_and_run(dir, "sqlx", true);
    assert!(out.contains("Imported 3 sqlx migrations"), "{out}");
    assert!(out.contains("20240102090000 (head)"), "{out}");
    assert_eq!(
        revision_files(dir),
        [
            "20240101120000_create_users.sql",
            "20240102090000_index_emails.sql",
            "3_add_notes.sql"
        ]
    );
    let index =
        std::fs::read_to_string(dir.join("db/versions/20240102090000_index_emails.sql")).unwrap();
    assert!(
        index.contains("-- revision: 20240102090000\n-- down_revision: 20240101120000\n"),
        "{index}"
    );
    assert!(index.contains("-- transactional: false\n"), "{index}");
    let first = std::fs::read_to_string(dir.join("db/versions/3_add_notes.sql")).unwrap();
    assert!(first.starts_with("-- add notes\n"), "{first}");
    assert!(first.contains("-- down_revision: None\n"), "{first}");
    let users =
        std::fs::read_to_string(dir.join("db/versions/20240101120000_create_users.sql")).unwrap();
    assert!(users.contains("-- down_revision: 3\n"), "{users}");
}

#[test]
fn a_refinery_folder_becomes_an_irreversible_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        &[
            (
                "their-migrations/V1__initial.sql",
                "CREATE TABLE cars (id int PRIMARY KEY, name text);\n",
            ),
            (
                "their-migrations/nested/V2__add_brand.sql",
                "ALTER TABLE cars ADD COLUMN brand text;\n",
            ),
            (
                "their-migrations/V10__index_brand.sql",
                "CREATE INDEX cars_brand ON cars (brand)",
            ),
        ],
    );
    let out = import_and_run(dir, "refinery", false);
    assert!(out.contains("Imported 3 refinery migrations"), "{out}");
    assert!(out.contains("10 (head)"), "{out}");
    let second = std::fs::read_to_string(dir.join("db/versions/2_add_brand.sql")).unwrap();
    assert!(second.contains("-- down_revision: 1\n"), "{second}");
    assert!(
        !second.contains("alembic:downgrade"),
        "irreversible: {second}"
    );
    let third = std::fs::read_to_string(dir.join("db/versions/10_index_brand.sql")).unwrap();
    assert!(
        third.contains("-- down_revision: 2\n"),
        "V10 after V2: {third}"
    );
}

#[test]
fn a_refinery_rust_migration_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        &[
            (
                "their-migrations/V1__initial.sql",
                "CREATE TABLE cars (id int);\n",
            ),
            (
                "their-migrations/V2__seed.rs",
                "pub fn migration() -> String { String::new() }\n",
            ),
        ],
    );
    let out = alembic(dir, &["import", "refinery", "their-migrations"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("written in Rust cannot be converted") && stderr.contains("V2__seed.rs"),
        "{}",
        text(&out)
    );
    assert!(revision_files(dir).is_empty());
}

#[test]
fn a_diesel_folder_keeps_versions_and_transaction_modes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        &[
            (
                "their-migrations/00000000000000_diesel_initial_setup/up.sql",
                "CREATE OR REPLACE FUNCTION diesel_set_updated_at() RETURNS trigger AS $$\nBEGIN\n    NEW.updated_at := current_timestamp;\n    RETURN NEW;\nEND;\n$$ LANGUAGE plpgsql;\n",
            ),
            (
                "their-migrations/00000000000000_diesel_initial_setup/down.sql",
                "DROP FUNCTION IF EXISTS diesel_set_updated_at();\n",
            ),
            ("their-migrations/2024-01-01-120000_create_posts/up.sql", "CREATE TABLE posts (id serial PRIMARY KEY, title text);\n"),
            ("their-migrations/2024-01-01-120000_create_posts/down.sql", "DROP TABLE posts;\n"),
            ("their-migrations/2024-02-01-080000_index_titles/up.sql", "CREATE INDEX CONCURRENTLY posts_title ON posts (title);\n"),
            ("their-migrations/2024-02-01-080000_index_titles/down.sql", "DROP INDEX CONCURRENTLY posts_title;\n"),
            ("their-migrations/2024-02-01-080000_index_titles/metadata.toml", "run_in_transaction = false\n"),
            ("their-migrations/.keep", ""),
        ],
    );
    let out = import_and_run(dir, "diesel", true);
    assert!(out.contains("Imported 3 diesel migrations"), "{out}");
    assert!(out.contains("20240201080000 (head)"), "{out}");
    let index =
        std::fs::read_to_string(dir.join("db/versions/20240201080000_index_titles.sql")).unwrap();
    assert!(
        index.contains("-- down_revision: 20240101120000\n-- branch_labels: None"),
        "{index}"
    );
    assert!(index.contains("-- transactional: false\n"), "{index}");
}

#[test]
fn import_refuses_bad_input_naming_the_file_and_writes_nothing() {
    // (tool, files, what the error says)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            "sqlx",
            &[(
                "their-migrations/1_a.sql",
                "CREATE TABLE a ($$unterminated);\n",
            )],
            "1_a.sql:1:",
        ),
        (
            "sqlx",
            &[("their-migrations/x1_a.sql", "SELECT 1;\n")],
            "`x1` is not a sqlx version",
        ),
        (
            "sqlx",
            &[
                ("their-migrations/1_a.sql", "SELECT 1;\n"),
                ("their-migrations/1_b.sql", "SELECT 2;\n"),
            ],
            "two migrations have version 1",
        ),
        (
            "sqlx",
            &[
                ("their-migrations/1_a.sql", "SELECT 1;\n"),
                ("their-migrations/01_b.sql", "SELECT 2;\n"),
            ],
            "two migrations have version 01",
        ),
        (
            "sqlx",
            &[("their-migrations/2_b.down.sql", "SELECT 1;\n")],
            "has no `.up.sql` beside it",
        ),
        (
            "diesel",
            &[
                ("their-migrations/1_a/up.sql", "SELECT 1;\n"),
                (
                    "their-migrations/1_a/metadata.toml",
                    "run_in_transaction = \"no\"\n",
                ),
            ],
            "`run_in_transaction` is \"no\", not true or false",
        ),
        (
            "diesel",
            &[("their-migrations/notes.txt", "")],
            "no diesel migrations in their-migrations",
        ),
    ];
    for (tool, files, expected) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        write(dir, files);
        let out = alembic(dir, &["import", tool, "their-migrations"], None);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(expected),
            "expected `{expected}`: {}",
            text(&out)
        );
        assert!(
            revision_files(dir).is_empty(),
            "{expected}: {:?}",
            revision_files(dir)
        );
    }
    // Not a folder, and a versions folder that already has revisions: usage.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = alembic(dir, &["import", "sqlx", "nowhere"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    write(
        dir,
        &[
            ("their-migrations/1_a.sql", "SELECT 1;\n"),
            (
                "db/versions/a1.sql",
                "-- a\n-- revision: a1\n-- down_revision: None\n\n-- alembic:upgrade\nSELECT 1;\n",
            ),
        ],
    );
    let out = alembic(dir, &["import", "sqlx", "their-migrations"], None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already holds 1 revision file"),
        "{}",
        text(&out)
    );
    assert_eq!(revision_files(dir), ["a1.sql"]);
}

// `adopt`: a database migrated the way each tool records it.

const SQLX_TABLE: &str = "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
    installed_on TIMESTAMPTZ NOT NULL DEFAULT now(), success BOOLEAN NOT NULL, checksum BYTEA NOT NULL, \
    execution_time BIGINT NOT NULL);";

/// sqlx's record of one migration: its checksum computed by PostgreSQL
/// (SHA-384 of the file's bytes), as sqlx computes it.
fn sqlx_ran(url: &str, version: i64, description: &str, file_sql: &str, success: bool) {
    sql(url, file_sql);
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.execute(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES ($1, $2, $3, sha384(convert_to($4, 'UTF8')), 1234567)",
        &[&version, &description, &success, &file_sql],
    )
    .unwrap();
}

fn sqlx_project(dir: &Path) -> [&'static str; 3] {
    let ups = [
        "CREATE TABLE users (id bigint PRIMARY KEY);\n",
        "ALTER TABLE users ADD COLUMN email text;\n",
        "CREATE INDEX users_email ON users (email);\n",
    ];
    write(
        dir,
        &[
            ("their-migrations/1_create_users.up.sql", ups[0]),
            (
                "their-migrations/1_create_users.down.sql",
                "DROP TABLE users;\n",
            ),
            ("their-migrations/2_add_email.up.sql", ups[1]),
            (
                "their-migrations/2_add_email.down.sql",
                "ALTER TABLE users DROP COLUMN email;\n",
            ),
            ("their-migrations/3_index_email.up.sql", ups[2]),
            (
                "their-migrations/3_index_email.down.sql",
                "DROP INDEX users_email;\n",
            ),
        ],
    );
    ok(alembic(dir, &["import", "sqlx", "their-migrations"], None));
    ups
}

#[test]
fn adopt_sqlx_takes_over_where_sqlx_stopped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let ups = sqlx_project(dir);
    let db = server().database().unwrap();
    let url = db.url();
    sql(url, SQLX_TABLE);
    sqlx_ran(url, 1, "create users", ups[0], true);
    sqlx_ran(url, 2, "add email", ups[1], true);

    let dry = ok(alembic(
        dir,
        &["adopt", "sqlx", "their-migrations", "--dry-run"],
        Some(url),
    ));
    assert!(
        dry.contains("Would adopt 2 sqlx migrations: the database would be at 2"),
        "{dry}"
    );
    assert!(rows(url, "SELECT to_regclass('alembic_version')::text")
        .iter()
        .all(|r| r == "NULL"));

    let out = ok(alembic(
        dir,
        &["adopt", "sqlx", "their-migrations"],
        Some(url),
    ));
    assert!(
        out.contains(
            "Adopted 2 sqlx migrations: the database is at 2; _sqlx_migrations is left in place"
        ),
        "{out}"
    );
    assert_eq!(rows(url, "SELECT version_num FROM alembic_version"), ["2"]);
    let tools = rows(
        url,
        "SELECT revision || ' ' || tool FROM alembic_version_ledger ORDER BY revision",
    );
    assert_eq!(tools.len(), 2, "{tools:?}");
    assert!(
        tools[0].starts_with("1 adopted from sqlx (checksum "),
        "{tools:?}"
    );
    // Verified from here on: nothing unverified, and the rest runs.
    let current = ok(alembic(dir, &["current"], Some(url)));
    assert!(current.contains("2"), "{current}");
    let upgrade = alembic(dir, &["upgrade", "head"], Some(url));
    assert_eq!(upgrade.status.code(), Some(0), "{}", text(&upgrade));
    assert!(
        !String::from_utf8_lossy(&upgrade.stderr).contains("not verified"),
        "{}",
        text(&upgrade)
    );
    assert_eq!(rows(url, "SELECT version_num FROM alembic_version"), ["3"]);
    assert_eq!(rows(url, "SELECT count(*) FROM _sqlx_migrations"), ["2"]);
    // Adopting again is refused: the database is ours now.
    let again = alembic(dir, &["adopt", "sqlx", "their-migrations"], Some(url));
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
}

#[test]
fn adopt_refuses_and_writes_nothing_when_in_doubt() {
    // (what the database holds, what the error says)
    let cases: [(&str, &str); 4] = [
        ("edited", "was edited after it ran: sqlx recorded"),
        ("failed", "failed or did not finish"),
        (
            "unknown",
            "migration 9 ran on this database but has no file",
        ),
        ("gap", "are not the first ones of the chain"),
    ];
    for (case, expected) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let ups = sqlx_project(dir);
        let db = server().database().unwrap();
        let url = db.url();
        sql(url, SQLX_TABLE);
        match case {
            "edited" => sqlx_ran(
                url,
                1,
                "create users",
                "CREATE TABLE users (id int PRIMARY KEY);\n",
                true,
            ),
            "failed" => sqlx_ran(url, 1, "create users", ups[0], false),
            "unknown" => {
                sqlx_ran(url, 1, "create users", ups[0], true);
                sqlx_ran(url, 9, "newer", "SELECT 1;\n", true);
            }
            _ => {
                sqlx_ran(url, 1, "create users", ups[0], true);
                sql(url, "CREATE TABLE filler (id int);");
                sqlx_ran(url, 3, "index email", "SELECT 1;\n", true);
                // The checksum must match for the gap to be the only problem.
                sql(url, &format!("UPDATE _sqlx_migrations SET checksum = sha384(convert_to('{}', 'UTF8')) WHERE version = 3", ups[2].replace('\'', "''")));
            }
        }
        let out = alembic(dir, &["adopt", "sqlx", "their-migrations"], Some(url));
        assert_eq!(out.status.code(), Some(1), "{case}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(expected),
            "{case}: expected `{expected}`: {}",
            text(&out)
        );
        assert!(
            rows(url, "SELECT to_regclass('alembic_version')::text")
                .iter()
                .all(|r| r == "NULL"),
            "{case}: nothing written"
        );
    }
    // No sqlx table at all.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    sqlx_project(dir);
    let db = server().database().unwrap();
    let out = alembic(dir, &["adopt", "sqlx", "their-migrations"], Some(db.url()));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no _sqlx_migrations table"),
        "{}",
        text(&out)
    );
}

#[test]
fn adopt_refinery_checks_refinerys_own_checksums() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let files = [
        ("V1__initial", "CREATE TABLE cars (id int PRIMARY KEY);\n"),
        ("V2__add_brand", "ALTER TABLE cars ADD COLUMN brand text;\n"),
    ];
    for (stem, body) in files {
        write(dir, &[(&format!("their-migrations/{stem}.sql"), body)]);
    }
    ok(alembic(
        dir,
        &["import", "refinery", "their-migrations"],
        None,
    ));
    let db = server().database().unwrap();
    let url = db.url();
    sql(url, "CREATE TABLE refinery_schema_history (version INT4 PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255));");
    // refinery's own computation of what it records.
    let (stem, body) = files[0];
    let m = refinery_core::Migration::unapplied(stem, body).unwrap();
    sql(url, body);
    sql(
        url,
        &format!(
            "INSERT INTO refinery_schema_history VALUES (1, 'initial', '2024-01-01T00:00:00Z', '{}')",
            m.checksum()
        ),
    );
    let out = ok(alembic(
        dir,
        &["adopt", "refinery", "their-migrations"],
        Some(url),
    ));
    assert!(
        out.contains("Adopted 1 refinery migration: the database is at 1"),
        "{out}"
    );
    ok(alembic(dir, &["upgrade", "head"], Some(url)));
    assert_eq!(rows(url, "SELECT version_num FROM alembic_version"), ["2"]);

    // A checksum refinery would not have recorded for this file is refused.
    let db = server().database().unwrap();
    let url = db.url();
    sql(url, "CREATE TABLE refinery_schema_history (version INT4 PRIMARY KEY, name VARCHAR(255), applied_on VARCHAR(255), checksum VARCHAR(255));");
    sql(
        url,
        "INSERT INTO refinery_schema_history VALUES (1, 'initial', '2024-01-01T00:00:00Z', '42')",
    );
    let out = alembic(dir, &["adopt", "refinery", "their-migrations"], Some(url));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("refinery recorded 42"),
        "{}",
        text(&out)
    );
}

#[test]
fn adopt_diesel_by_its_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        &[
            (
                "their-migrations/2024-01-01-120000_create_posts/up.sql",
                "CREATE TABLE posts (id serial PRIMARY KEY);\n",
            ),
            (
                "their-migrations/2024-01-01-120000_create_posts/down.sql",
                "DROP TABLE posts;\n",
            ),
            (
                "their-migrations/2024-02-01-080000_add_title/up.sql",
                "ALTER TABLE posts ADD COLUMN title text;\n",
            ),
            (
                "their-migrations/2024-02-01-080000_add_title/down.sql",
                "ALTER TABLE posts DROP COLUMN title;\n",
            ),
        ],
    );
    ok(alembic(
        dir,
        &["import", "diesel", "their-migrations"],
        None,
    ));
    let db = server().database().unwrap();
    let url = db.url();
    sql(
        url,
        "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
         CREATE TABLE posts (id serial PRIMARY KEY);
         INSERT INTO __diesel_schema_migrations (version) VALUES ('20240101120000');",
    );
    let out = ok(alembic(
        dir,
        &["adopt", "diesel", "their-migrations"],
        Some(url),
    ));
    assert!(out.contains("the database is at 20240101120000"), "{out}");
    ok(alembic(dir, &["upgrade", "head"], Some(url)));
    ok(alembic(dir, &["downgrade", "base"], Some(url)));
    assert!(rows(url, "SELECT version_num FROM alembic_version").is_empty());
}
