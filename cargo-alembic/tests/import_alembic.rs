//! `import alembic`: a Flask-Migrate-style project written here (tables,
//! columns, an index, a foreign key, an altered column, an enum, a labelled
//! branch, a merge, a `depends_on`, a data migration) is imported with
//! Python Alembic 1.x from the test's virtual environment, proven with
//! `--check`, and then takes over a database Python Alembic upgraded half
//! way; bad projects are errors naming the file and line.

#[path = "support/python.rs"]
mod python;
#[path = "support/run.rs"]
mod run;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use run::{alembic_with, ok, server, text};

fn py() -> PathBuf {
    python::venv().join("bin/python")
}

fn revision(id: &str, down: &str, extra: &str, upgrade: &str, downgrade: &str) -> String {
    format!(
        "\"\"\"{id} message\n\nRevision ID: {id}\nRevises: {down}\nCreate Date: 2024-01-02 03:04:05.000001\n\n\"\"\"\n\
         from alembic import op\nimport sqlalchemy as sa\n\nrevision = '{id}'\ndown_revision = {down}\n{extra}\n\n\
         def upgrade():\n{upgrade}\n\ndef downgrade():\n{downgrade}\n"
    )
}

/// A Flask-Migrate layout: `migrations/alembic.ini` without a script
/// location, `env.py`, `versions/`; and an `alembic.ini` at the root for
/// Python Alembic's own command line.
fn project(dir: &Path, extra: &[(&str, String)]) {
    let versions = dir.join("migrations/versions");
    std::fs::create_dir_all(&versions).unwrap();
    // Flask-Migrate's own alembic.ini has no script_location; sub-folders
    // of versions/ are read when it says so.
    std::fs::write(
        dir.join("migrations/alembic.ini"),
        "[alembic]\nrecursive_version_locations = true\n",
    )
    .unwrap();
    std::fs::write(dir.join("migrations/script.py.mako"), "").unwrap();
    std::fs::write(
        dir.join("migrations/env.py"),
        "import os\nfrom alembic import context\nfrom sqlalchemy import create_engine\n\n\
         engine = create_engine(os.environ['ALEMBIC_URL'])\nwith engine.connect() as connection:\n    \
         context.configure(connection=connection, target_metadata=None)\n    with context.begin_transaction():\n        \
         context.run_migrations()\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("alembic.ini"),
        "[alembic]\nscript_location = %(here)s/migrations\nrecursive_version_locations = true\n",
    )
    .unwrap();
    let revisions = [
        (
            "a1_users.py",
            revision(
                "a1",
                "None",
                "branch_labels = None\ndepends_on = None",
                "    op.create_table('users', sa.Column('id', sa.Integer(), nullable=False), \
                 sa.Column('email', sa.String(120), nullable=False), sa.PrimaryKeyConstraint('id'))\n    \
                 op.create_index('ix_users_email', 'users', ['email'], unique=True)",
                "    op.drop_index('ix_users_email', table_name='users')\n    op.drop_table('users')",
            ),
        ),
        (
            "b2_posts.py",
            revision(
                "b2",
                "'a1'",
                "branch_labels = None\ndepends_on = None",
                "    op.create_table('posts', sa.Column('id', sa.Integer(), primary_key=True), \
                 sa.Column('user_id', sa.Integer()), sa.Column('state', sa.Enum('draft', 'live', name='post_state')))\n    \
                 op.create_foreign_key('fk_posts_user', 'posts', 'users', ['user_id'], ['id'])",
                "    op.drop_table('posts')\n    sa.Enum(name='post_state').drop(op.get_bind())",
            ),
        ),
        (
            "audit/c3_audit.py",
            revision(
                "c3",
                "'a1'",
                "branch_labels = ('audit',)\ndepends_on = None",
                "    op.create_table('audit', sa.Column('id', sa.Integer(), primary_key=True), sa.Column('what', sa.Text()))",
                "    op.drop_table('audit')",
            ),
        ),
        (
            "d4_merge.py",
            revision("d4", "('b2', 'c3')", "branch_labels = None\ndepends_on = None", "    pass", "    pass"),
        ),
        (
            "e5_names.py",
            revision(
                "e5",
                "'d4'",
                "branch_labels = None\ndepends_on = 'c3'",
                "    op.add_column('users', sa.Column('name', sa.String(50), nullable=True))\n    \
                 op.alter_column('users', 'email', type_=sa.String(255), existing_type=sa.String(120))\n    \
                 op.get_bind().execute(sa.text(\"UPDATE users SET name = split_part(email, '@', 1)\"))",
                "    op.alter_column('users', 'email', type_=sa.String(120), existing_type=sa.String(255))\n    \
                 op.drop_column('users', 'name')",
            ),
        ),
    ];
    for (name, text) in revisions
        .iter()
        .map(|(n, t)| (*n, t.clone()))
        .chain(extra.iter().cloned())
    {
        let path = versions.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn alembic(dir: &Path, args: &[&str], url: Option<&str>) -> Output {
    let mut all = vec!["--script-location", "db"];
    all.extend_from_slice(args);
    alembic_with(dir, &all, url)
}

/// The user schema as sorted lines: columns with types, nullability and
/// defaults; indexes; constraints; enum labels.
fn schema(url: &str) -> Vec<String> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let query = "
        SELECT format('column %s.%s %s %s %s', table_name, column_name, data_type,
                      coalesce(character_maximum_length::text, ''), is_nullable)
          FROM information_schema.columns WHERE table_schema = 'public'
           AND table_name NOT IN ('alembic_version', 'alembic_version_ledger')
        UNION ALL
        SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
           AND tablename NOT IN ('alembic_version', 'alembic_version_ledger')
        UNION ALL
        SELECT format('constraint %s %s', conname, pg_get_constraintdef(oid)) FROM pg_constraint
         WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text NOT LIKE 'alembic_version%'
        UNION ALL
        SELECT format('enum %s %s', t.typname, e.enumlabel) FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
        ORDER BY 1";
    c.query(query, &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn a_flask_migrate_project_moves_over_and_takes_over_its_database() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir, &[]);
    let python = py();
    let python = python.to_str().unwrap();
    let out = ok(alembic(
        dir,
        &[
            "import",
            "alembic",
            "migrations",
            "--python",
            python,
            "--check",
        ],
        None,
    ));
    assert!(
        out.contains("leave the same schema under Python Alembic and the imported SQL"),
        "{out}"
    );
    assert!(
        out.contains("Imported 5 Alembic revisions into db/versions; head: e5"),
        "{out}"
    );
    ok(alembic(dir, &["check"], None));
    // Sub-folders kept; headers as Alembic has them.
    let audit = std::fs::read_to_string(dir.join("db/versions/audit/c3_audit.sql")).unwrap();
    assert!(audit.contains("-- branch_labels: audit\n"), "{audit}");
    let names = std::fs::read_to_string(dir.join("db/versions/e5_names.sql")).unwrap();
    assert!(
        names.contains("-- down_revision: d4\n-- branch_labels: None\n-- depends_on: c3\n"),
        "{names}"
    );
    assert!(
        names.contains("-- create_date: 2024-01-02 03:04:05.000001\n"),
        "{names}"
    );
    assert!(
        names.contains("UPDATE users SET name = split_part(email, '@', 1);"),
        "{names}"
    );
    let merge = std::fs::read_to_string(dir.join("db/versions/d4_merge.sql")).unwrap();
    assert!(merge.contains("-- down_revision: b2, c3\n"), "{merge}");

    // A production database Python Alembic upgraded half way.
    let db = server().database().unwrap();
    let url = db.url();
    python::alembic_cli(dir, url, &["upgrade", "b2"]);
    let upgrade = alembic(dir, &["upgrade", "head"], Some(url));
    assert_eq!(upgrade.status.code(), Some(0), "{}", text(&upgrade));
    assert!(
        String::from_utf8_lossy(&upgrade.stderr).contains("not verified: a1, b2"),
        "{}",
        text(&upgrade)
    );
    // The same schema as Python Alembic's own upgrade to head.
    let reference = server().database().unwrap();
    python::alembic_cli(dir, reference.url(), &["upgrade", "head"]);
    assert_eq!(schema(url), schema(reference.url()));
    // And back to nothing.
    ok(alembic(dir, &["downgrade", "base"], Some(url)));
    python::alembic_cli(dir, reference.url(), &["downgrade", "base"]);
    assert_eq!(schema(url), schema(reference.url()));
    assert!(
        schema(url).iter().all(|l| !l.starts_with("column")),
        "{:?}",
        schema(url)
    );
}

#[test]
fn a_revision_that_reads_the_database_needs_allow_manual() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let reads = revision(
        "f6",
        "'e5'",
        "branch_labels = None\ndepends_on = None",
        "    rows = op.get_bind().execute(sa.text('SELECT id FROM users')).fetchall()\n    for row in rows:\n        pass",
        "    pass",
    );
    project(dir, &[("f6_reads.py", reads)]);
    let python = py();
    let python = python.to_str().unwrap();
    let out = alembic(
        dir,
        &["import", "alembic", "migrations", "--python", python],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("revision f6 upgrade (migrations/versions/f6_reads.py:17)"),
        "{}",
        text(&out)
    );
    assert!(!dir.join("db/versions").exists(), "nothing written");

    let out = alembic(
        dir,
        &[
            "import",
            "alembic",
            "migrations",
            "--python",
            python,
            "--allow-manual",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let f6 = std::fs::read_to_string(dir.join("db/versions/f6_reads.sql")).unwrap();
    assert!(
        f6.contains("RAISE EXCEPTION 'revision f6 needs its SQL written by hand"),
        "{f6}"
    );
    let check = alembic(dir, &["check"], None);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));
    assert!(
        String::from_utf8_lossy(&check.stderr).contains("revision f6 (db/versions/f6_reads.sql:"),
        "{}",
        text(&check)
    );
    let verify = alembic(dir, &["verify", "--local"], None);
    assert_eq!(verify.status.code(), Some(1), "{}", text(&verify));
    assert!(
        String::from_utf8_lossy(&verify.stderr).contains("revision f6 (db/versions/f6_reads.sql:"),
        "{}",
        text(&verify)
    );
}

/// The project's folder (its alembic.ini names the script location) and a
/// pyproject.toml with `[tool.alembic]` (Alembic 1.16 and later) are a PATH
/// too; a place without revisions is an error. `import alembic .` read the
/// folder as the script location, imported 0 revisions and said it had
/// succeeded.
#[test]
fn a_projects_folder_or_pyproject_names_its_script_location() {
    let python = py();
    let python = python.to_str().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir, &[]);
    let out = ok(alembic(
        dir,
        &["import", "alembic", ".", "--python", python],
        None,
    ));
    assert!(
        out.contains("Imported 5 Alembic revisions into db/versions; head: e5"),
        "{out}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir, &[]);
    std::fs::remove_file(dir.join("alembic.ini")).unwrap();
    std::fs::write(
        dir.join("pyproject.toml"),
        "[project]\nname = \"app\"\n\n[tool.alembic]\nscript_location = \"%(here)s/migrations\"\nrecursive_version_locations = true\n",
    )
    .unwrap();
    for path in [".", "pyproject.toml"] {
        let out = ok(alembic(
            dir,
            &["import", "alembic", path, "--python", python],
            None,
        ));
        assert!(
            out.contains("Imported 5 Alembic revisions"),
            "{path}: {out}"
        );
        std::fs::remove_dir_all(dir.join("db")).unwrap();
    }
    // A Flask app's folder without either: its one sub-folder holding
    // env.py and versions/ (Flask-Migrate's `migrations`).
    std::fs::remove_file(dir.join("pyproject.toml")).unwrap();
    let out = ok(alembic(
        dir,
        &["import", "alembic", ".", "--python", python],
        None,
    ));
    assert!(out.contains("Imported 5 Alembic revisions"), "{out}");

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("migrations/versions")).unwrap();
    std::fs::write(dir.join("migrations/env.py"), "").unwrap();
    let out = alembic(
        dir,
        &["import", "alembic", "migrations", "--python", python],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("no Alembic revisions in "),
        "{}",
        text(&out)
    );
    assert!(!dir.join("db").exists(), "nothing written");
}

#[test]
fn a_broken_alembic_project_is_an_error_naming_the_file_and_line() {
    let python = py();
    let python = python.to_str().unwrap();
    let cases: [(&str, String, &str); 3] = [
        (
            "f6_syntax.py",
            "revision = 'f6'\ndown_revision = 'e5'\ndef upgrade(:\n    pass\n".into(),
            "migrations/versions/f6_syntax.py:3: cannot load the Alembic project: SyntaxError",
        ),
        (
            "f6_twin.py",
            revision(
                "e5",
                "'d4'",
                "branch_labels = None\ndepends_on = None",
                "    pass",
                "    pass",
            ),
            "present more than once",
        ),
        (
            "f6_orphan.py",
            revision(
                "f6",
                "'zz'",
                "branch_labels = None\ndepends_on = None",
                "    pass",
                "    pass",
            ),
            "zz",
        ),
    ];
    for (name, body, expected) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        project(dir, &[(name, body)]);
        let out = alembic(
            dir,
            &["import", "alembic", "migrations", "--python", python],
            None,
        );
        assert_eq!(out.status.code(), Some(1), "{name}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(expected),
            "{name}: expected `{expected}`: {}",
            text(&out)
        );
        assert!(!dir.join("db/versions").exists(), "{name}: nothing written");
    }
    // A revision that imports the application, which this Python lacks.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let app = "from myapp.models import User\nrevision = 'f6'\ndown_revision = 'e5'\ndef upgrade():\n    pass\n";
    project(dir, &[("f6_app.py", app.into())]);
    let out = alembic(
        dir,
        &["import", "alembic", "migrations", "--python", python],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "migrations/versions/f6_app.py:1: cannot load the Alembic project: ModuleNotFoundError"
        ) && stderr.contains("the revision imports `myapp`")
            && stderr.contains("PYTHONPATH"),
        "{}",
        text(&out)
    );
    // No such interpreter.
    let out = alembic(
        dir,
        &[
            "import",
            "alembic",
            "migrations",
            "--python",
            "/nonexistent/python",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot run /nonexistent/python"),
        "{}",
        text(&out)
    );
    // An alembic.ini without script_location: bad usage.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir, &[]);
    std::fs::write(dir.join("plain.ini"), "[alembic]\nsqlalchemy.url = x\n").unwrap();
    let out = alembic(
        dir,
        &["import", "alembic", "plain.ini", "--python", python],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("plain.ini has no script_location"),
        "{}",
        text(&out)
    );
    // A Python without Alembic: a bare virtual environment.
    let bare = dir.join("bare");
    let made = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&bare)
        .status()
        .unwrap();
    assert!(made.success());
    let bare = bare.join("bin/python");
    let out = alembic(
        dir,
        &[
            "import",
            "alembic",
            "migrations",
            "--python",
            bare.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("-m pip install alembic"),
        "{}",
        text(&out)
    );
    assert!(!dir.join("db/versions").exists());
}
