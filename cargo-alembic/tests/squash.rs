//! `squash` on a real PostgreSQL: a chain of 30 revisions with a labelled
//! branch and a merge inside the range, squashed at revision 20; databases
//! that were empty, inside the range, at the squash point and beyond all
//! reach the head with one schema, one `alembic_version` and their ledger;
//! `verify` proves the two paths converge; the refusals; `--prune`.

#[path = "support/run.rs"]
mod run;

use std::path::{Path, PathBuf};
use std::process::Command;

use run::{alembic_with, ok, rows, server, text};

/// Revision `n` of the chain: (sub-folder, parents, labels, upgrade,
/// downgrade).
fn revision(n: usize) -> (&'static str, String, &'static str, String, String) {
    let prev = format!("r{:02}", n - 1);
    let (folder, parents, labels, up, down): (&str, String, &str, &str, &str) = match n {
        1 => ("", "None".into(), "main", "CREATE TYPE mood AS ENUM ('sad', 'happy');\nCREATE TABLE users (id serial PRIMARY KEY, email text NOT NULL, mood mood DEFAULT 'sad');", "DROP TABLE users;\nDROP TYPE mood;"),
        2 => ("", prev, "", "CREATE UNIQUE INDEX users_email ON users (lower(email));", "DROP INDEX users_email;"),
        3 => ("", prev, "", "CREATE TABLE posts (id bigserial PRIMARY KEY, user_id int NOT NULL REFERENCES users (id) ON DELETE CASCADE, body text);", "DROP TABLE posts;"),
        4 => ("", prev, "", "CREATE VIEW user_posts AS SELECT u.email, p.body FROM users u JOIN posts p ON p.user_id = u.id;", "DROP VIEW user_posts;"),
        5 => ("", prev, "", "CREATE FUNCTION post_count(uid int) RETURNS bigint LANGUAGE sql STABLE AS $$ SELECT count(*) FROM posts WHERE user_id = uid $$;", "DROP FUNCTION post_count(int);"),
        6 => ("", prev, "", "ALTER TABLE users ADD COLUMN name text;\nALTER TABLE users ADD COLUMN legacy int;", "ALTER TABLE users DROP COLUMN legacy;\nALTER TABLE users DROP COLUMN name;"),
        7 => ("audit", "r06".into(), "audit", "CREATE TABLE audit_log (id bigserial PRIMARY KEY, at timestamptz NOT NULL DEFAULT now(), what text);", "DROP TABLE audit_log;"),
        8 => ("audit", prev, "", "CREATE INDEX audit_log_at ON audit_log (at);", "DROP INDEX audit_log_at;"),
        9 => ("", "r06".into(), "", "ALTER TABLE posts ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();", "ALTER TABLE posts DROP COLUMN created_at;"),
        10 => ("", prev, "", "CREATE TABLE tags (id serial PRIMARY KEY, name text UNIQUE NOT NULL);", "DROP TABLE tags;"),
        11 => ("", "r08, r10".into(), "", "", ""),
        12 => ("", prev, "", "ALTER TYPE mood ADD VALUE 'ok' BEFORE 'happy';", ""),
        13 => ("", prev, "", "ALTER TABLE users DROP COLUMN legacy;", "ALTER TABLE users ADD COLUMN legacy int;"),
        14 => ("", prev, "", "COMMENT ON TABLE users IS 'people';", "COMMENT ON TABLE users IS NULL;"),
        15 => ("", prev, "", "INSERT INTO tags (name) VALUES ('news'), ('howto');", "DELETE FROM tags;"),
        _ if n <= 20 => ("", prev, "", "", ""),
        _ => ("", prev, "", "", ""),
    };
    let (up, down) = if up.is_empty() && n != 11 {
        (
            format!("CREATE TABLE t{n} (id int PRIMARY KEY, note text);\nCREATE INDEX t{n}_note ON t{n} (note);"),
            format!("DROP TABLE t{n};"),
        )
    } else {
        (up.to_owned(), down.to_owned())
    };
    (folder, parents, labels, up, down)
}

/// A project with the 30 revisions.
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for n in 1..=30 {
        let (folder, parents, labels, up, down) = revision(n);
        let dir = dir.path().join("migrations/versions").join(folder);
        std::fs::create_dir_all(&dir).unwrap();
        let labels = if labels.is_empty() { "None" } else { labels };
        std::fs::write(
            dir.join(format!("r{n:02}_step.sql")),
            format!(
                "-- step {n}\n--\n-- revision: r{n:02}\n-- down_revision: {parents}\n-- branch_labels: {labels}\n\n-- alembic:upgrade\n{up}\n\n-- alembic:downgrade\n{down}\n"
            ),
        )
        .unwrap();
    }
    dir
}

fn versions(dir: &Path) -> PathBuf {
    dir.join("migrations/versions")
}

/// `pg_dump --schema-only` of a database, without the ledger's rows.
fn schema(url: &str) -> String {
    let bindir = Command::new("pg_config").arg("--bindir").output().unwrap();
    let pg_dump = Path::new(String::from_utf8_lossy(&bindir.stdout).trim()).join("pg_dump");
    let out = Command::new(pg_dump)
        .args(["--schema-only", "--no-owner", "--no-privileges", url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("--") && !l.starts_with('\\') && !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn upgrade(dir: &Path, url: &str, to: &str) -> String {
    ok(alembic_with(dir, &["upgrade", to], Some(url)))
}

#[test]
fn a_squash_serves_every_database_and_converges() {
    let dir = project();
    let dbs: Vec<_> = (0..6).map(|_| server().database().unwrap()).collect();
    let [empty, at10, at20, at25, stranded, point] =
        [0, 1, 2, 3, 4, 5].map(|i| dbs[i].url().to_owned());
    for (url, to) in [
        (&at10, "r10"),
        (&at20, "r20"),
        (&at25, "r25"),
        (&stranded, "r10"),
        (&point, "r20"),
    ] {
        upgrade(dir.path(), url, to);
    }
    let reference = server().database().unwrap();
    upgrade(dir.path(), reference.url(), "head");

    // The rows r15 inserts stop a squash that does not say what to do.
    let out = alembic_with(dir.path(), &["squash", "r20", "-m", "squash"], None);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("r15_step.sql:8: INSERT INTO tags"), "{t}");
    assert!(t.contains("--include-data"), "{t}");
    assert!(!versions(dir.path()).join("replaced").exists());

    let out = ok(alembic_with(
        dir.path(),
        &[
            "squash",
            "r20",
            "-m",
            "squash at twenty",
            "--rev-id",
            "sq20",
            "--include-data",
        ],
        None,
    ));
    assert!(out.contains("Proven"), "{out}");
    assert!(out.contains("r21 now builds on sq20"), "{out}");
    let aside = versions(dir.path()).join("replaced/sq20");
    assert!(aside.join("r01_step.sql").exists() && aside.join("audit/r07_step.sql").exists());
    assert!(!versions(dir.path()).join("r05_step.sql").exists());
    let squash = std::fs::read_to_string(
        std::fs::read_dir(versions(dir.path()))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("sq20"))
            .unwrap(),
    )
    .unwrap();
    assert!(
        squash.contains("-- replaces: r01, r02, r03, r04, r05, r06"),
        "{squash}"
    );
    assert!(
        squash.contains("r20\n") && squash.contains("-- branch_labels: audit, main\n"),
        "{squash}"
    );
    assert!(
        squash.contains("INSERT INTO tags (name) VALUES ('news'), ('howto');"),
        "{squash}"
    );
    let r21 = std::fs::read_to_string(versions(dir.path()).join("r21_step.sql")).unwrap();
    assert!(r21.contains("-- down_revision: sq20\n"), "{r21}");

    assert_eq!(
        ok(alembic_with(dir.path(), &["heads"], None)).trim(),
        "r30 (audit, main) (head)"
    );
    let history = ok(alembic_with(dir.path(), &["history"], None));
    assert!(
        history.contains("<base> -> sq20 (audit, main)"),
        "{history}"
    );
    assert!(!history.contains("r05"), "{history}");

    // Replaced revisions can still be shown, and stamped.
    let show = ok(alembic_with(dir.path(), &["show", "r05"], None));
    assert!(show.contains("replaced/sq20/r05_step.sql"), "{show}");
    let stamped = server().database().unwrap();
    ok(alembic_with(
        dir.path(),
        &["stamp", "r12"],
        Some(stamped.url()),
    ));
    assert_eq!(
        rows(stamped.url(), "SELECT version_num FROM alembic_version"),
        ["r12"]
    );

    // A database inside the range sees the history it is on; one at the
    // squash point is at the squash, through the revisions it replaced.
    let history = ok(alembic_with(dir.path(), &["history", "-i"], Some(&at10)));
    assert!(
        history.contains("r09 -> r10 (main) (current), step 10"),
        "{history}"
    );
    let against = alembic_with(dir.path(), &["verify", "--against"], Some(&at10));
    let t = text(&against);
    assert_eq!(against.status.code(), Some(0), "{t}");
    assert!(
        t.contains("note: the database is at r10, inside the range squash sq20 replaced"),
        "{t}"
    );
    let current = ok(alembic_with(dir.path(), &["current", "-v"], Some(&at20)));
    assert!(
        current.contains("Rev: sq20")
            && current.contains("Reached through the 20 revisions it replaces"),
        "{current}"
    );

    // Every database reaches the head, with the reference's schema.
    let empty_run = upgrade(dir.path(), &empty, "head");
    assert!(empty_run.contains("-> sq20"), "{empty_run}");
    let inside = upgrade(dir.path(), &at10, "head");
    assert!(
        inside.contains("r10 -> r11") || inside.contains("r08, r10 -> r11"),
        "{inside}"
    );
    assert!(
        inside.contains("r19 -> r20") && inside.contains("-> r21"),
        "{inside}"
    );
    let at_point = upgrade(dir.path(), &at20, "head");
    assert!(
        at_point.contains("-> r21") && !at_point.contains("-> r20"),
        "{at_point}"
    );
    let beyond = upgrade(dir.path(), &at25, "head");
    assert!(
        beyond.contains("r25 -> r26") && !beyond.contains("-> r21,"),
        "{beyond}"
    );
    let wanted = schema(reference.url());
    for url in [&empty, &at10, &at20, &at25] {
        assert_eq!(
            rows(url, "SELECT version_num FROM alembic_version"),
            ["r30"]
        );
        assert_eq!(schema(url), wanted, "{url}");
        assert_eq!(
            rows(url, "SELECT name FROM tags ORDER BY name"),
            ["howto", "news"]
        );
    }
    // Ledgers: what ran is recorded, and nothing is unknown or unverified.
    assert_eq!(
        rows(&empty, "SELECT count(*) FROM alembic_version_ledger"),
        ["11"]
    );
    assert_eq!(
        rows(&at25, "SELECT count(*) FROM alembic_version_ledger"),
        ["30"]
    );
    for url in [&empty, &at10, &at20, &at25] {
        let current = ok(alembic_with(dir.path(), &["current"], Some(url)));
        assert!(current.contains("r30 (audit, main) (head)"), "{current}");
        let against = alembic_with(dir.path(), &["verify", "--against"], Some(url));
        let t = text(&against);
        assert_eq!(against.status.code(), Some(0), "{t}");
        assert!(t.contains("0 unverified"), "{t}");
    }

    // Downgrades: through the squash to base in one step, or through the
    // kept revisions when the target names one.
    let down = ok(alembic_with(dir.path(), &["downgrade", "r15"], Some(&at25)));
    assert!(
        down.contains("r21 -> r20") && down.contains("r16 -> r15"),
        "{down}"
    );
    assert_eq!(
        rows(&at25, "SELECT version_num FROM alembic_version"),
        ["r15"]
    );
    let down = ok(alembic_with(
        dir.path(),
        &["downgrade", "base"],
        Some(&empty),
    ));
    assert!(down.contains("sq20 -> , squash at twenty"), "{down}");
    assert_eq!(
        rows(&empty, "SELECT count(*) FROM alembic_version_ledger"),
        ["0"]
    );
    // A database that ran the squash can go down into the replaced range
    // too (the squash stands for its squash point), and up again.
    upgrade(dir.path(), &empty, "head");
    let down = alembic_with(dir.path(), &["downgrade", "r18"], Some(&empty));
    let down = text(&down);
    assert!(down.starts_with("exit: 0"), "{down}");
    assert!(
        down.contains("r21 -> r20") && down.contains("r19 -> r18"),
        "{down}"
    );
    // The squash's ledger row stands for the revisions it replaced.
    assert!(!down.contains("without a ledger row"), "{down}");
    assert_eq!(
        rows(&empty, "SELECT version_num FROM alembic_version"),
        ["r18"]
    );
    let up = upgrade(dir.path(), &empty, "head");
    assert!(
        up.contains("r18 -> r19") && up.contains("r29 -> r30"),
        "{up}"
    );
    assert_eq!(schema(&empty), wanted);
    ok(alembic_with(
        dir.path(),
        &["downgrade", "base"],
        Some(&empty),
    ));

    // verify proves both paths while the replaced files are kept.
    let out = alembic_with(dir.path(), &["verify"], None);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(0), "{t}");
    assert!(t.contains("squash sq20"), "{t}");

    // Pruning strands a database still inside the range; it is told so.
    let out = ok(alembic_with(
        dir.path(),
        &["squash", "--prune", "sq20"],
        None,
    ));
    assert!(out.contains("Removed 20 files"), "{out}");
    assert!(!versions(dir.path()).join("replaced").exists());
    let out = alembic_with(dir.path(), &["upgrade"], Some(&stranded));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("inside the range squash sq20 replaced"), "{t}");
    let out = alembic_with(dir.path(), &["verify", "--against"], Some(&stranded));
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(t.contains("r10") && t.contains("pruned"), "{t}");
    // A database at the squash point needs nothing from the pruned files.
    let out = ok(alembic_with(dir.path(), &["upgrade"], Some(&point)));
    assert!(
        out.contains("r20 -> r21") || out.contains("sq20 -> r21"),
        "{out}"
    );
    assert_eq!(
        rows(&point, "SELECT version_num FROM alembic_version"),
        ["r30"]
    );
    assert_eq!(schema(&point), wanted);
}

#[test]
fn a_squash_that_would_cut_a_branch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let v = versions(dir.path());
    std::fs::create_dir_all(&v).unwrap();
    for (id, parent) in [
        ("a", "None"),
        ("b", "a"),
        ("c", "b"),
        ("x", "a"),
        ("m", "c, x"),
    ] {
        std::fs::write(
            v.join(format!("{id}.sql")),
            format!("-- {id}\n-- revision: {id}\n-- down_revision: {parent}\n\n-- alembic:upgrade\nCREATE TABLE {id} (id int);\n\n-- alembic:downgrade\nDROP TABLE {id};\n"),
        )
        .unwrap();
    }
    let out = alembic_with(dir.path(), &["squash", "c", "--no-data"], None);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("revision `x`") && t.contains("builds on `a`"),
        "{t}"
    );
    assert_eq!(std::fs::read_dir(&v).unwrap().count(), 5);
}

#[test]
fn rows_the_catalog_cannot_show_stop_a_squash_unless_no_data_is_said() {
    let dir = tempfile::tempdir().unwrap();
    let v = versions(dir.path());
    std::fs::create_dir_all(&v).unwrap();
    for (id, parent, up) in [
        (
            "a",
            "None",
            "CREATE TABLE kinds (id int PRIMARY KEY, name text);",
        ),
        (
            "b",
            "a",
            "DO $$ BEGIN INSERT INTO kinds VALUES (1, 'one'); END $$;",
        ),
        ("c", "b", "CREATE TABLE later (id int);"),
    ] {
        std::fs::write(
            v.join(format!("{id}.sql")),
            format!("-- {id}\n-- revision: {id}\n-- down_revision: {parent}\n\n-- alembic:upgrade\n{up}\n\n-- alembic:downgrade\n"),
        )
        .unwrap();
    }
    // No INSERT to list: the rows are found by comparing the tables.
    let out = alembic_with(dir.path(), &["squash", "b", "--rev-id", "sq"], None);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains(
            "would not make the rows the chain leaves in public.kinds (1 rows, the squash 0)"
        ),
        "{t}"
    );
    assert!(t.contains("--no-data"), "{t}");
    assert!(!v.join("replaced").exists());
    assert_eq!(std::fs::read_dir(&v).unwrap().count(), 3);

    let out = ok(alembic_with(
        dir.path(),
        &["squash", "b", "--rev-id", "sq", "--no-data"],
        None,
    ));
    assert!(out.contains("c now builds on sq"), "{out}");
    assert!(v.join("replaced/sq/b.sql").exists());
    let c = std::fs::read_to_string(v.join("c.sql")).unwrap();
    assert!(c.contains("-- down_revision: sq\n"), "{c}");
}
