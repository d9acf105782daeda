//! Python Alembic and cargo alembic take turns on one database.
//!
//! The repository's chain is written out as Alembic Python revisions (same
//! ids, parents, labels and dependencies); Python Alembic 1.x is installed
//! into a virtual environment under the target folder on first use.

#[path = "support/python.rs"]
mod python;

use std::path::{Path, PathBuf};
use std::process::Command;

use python::tuple;

use alembic_chain::load_versions;
use alembic_throwaway::{Choice, Server};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// Writes the repository's chain as an Alembic project and returns its folder.
fn python_project(root: &Path) -> PathBuf {
    let map = load_versions(&workspace().join("migrations/versions")).unwrap();
    let project = root.join("pyproject");
    let versions = project.join("alembic/versions");
    std::fs::create_dir_all(&versions).unwrap();
    std::fs::write(
        project.join("alembic.ini"),
        "[alembic]\nscript_location = %(here)s/alembic\n",
    )
    .unwrap();
    std::fs::write(
        project.join("alembic/env.py"),
        "import os\nfrom alembic import context\nfrom sqlalchemy import create_engine\n\n\
         engine = create_engine(os.environ['ALEMBIC_URL'])\nwith engine.connect() as connection:\n    \
         context.configure(connection=connection, target_metadata=None)\n    with context.begin_transaction():\n        \
         context.run_migrations()\n",
    )
    .unwrap();
    std::fs::write(project.join("alembic/script.py.mako"), "").unwrap();
    for r in map.revisions() {
        let body = |statements: Option<&[alembic_chain::Statement]>| -> String {
            let statements = statements.unwrap_or(&[]);
            if statements.is_empty() {
                return "    pass\n".to_owned();
            }
            let calls: String = statements
                .iter()
                .map(|s| format!("        op.execute({:?})\n", s.sql))
                .collect();
            if r.transactional {
                format!("    if True:\n{calls}")
            } else {
                format!("    with op.get_context().autocommit_block():\n{calls}")
            }
        };
        let text = format!(
            "from alembic import op\n\nrevision = {:?}\ndown_revision = {}\nbranch_labels = {}\ndepends_on = {}\n\n\ndef upgrade():\n{}\n\ndef downgrade():\n{}",
            r.id,
            tuple(&r.down_revisions),
            tuple(&r.branch_labels),
            tuple(&r.depends_on),
            body(Some(r.upgrade_statements().unwrap())),
            body(r.downgrade_statements().unwrap()),
        );
        std::fs::write(versions.join(format!("{}.py", r.id)), text).unwrap();
    }
    project
}

fn cargo_alembic(url: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cargo-alembic"))
        .args(["--database-url", url])
        .args(args)
        .current_dir(workspace())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo alembic {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn version_rows(url: &str) -> Vec<String> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut v: Vec<String> = c
        .query("SELECT version_num FROM alembic_version", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    v.sort();
    v
}

#[test]
fn python_alembic_and_cargo_alembic_take_turns() {
    // Python Alembic first, so that a failure to install it is reported first.
    python::venv();
    let tmp = tempfile::tempdir().unwrap();
    let project = python_project(tmp.path());
    let server = Server::start(Choice::Local).unwrap();

    // 1. The same steps with each tool on its own database: the version
    //    table must be identical after every step (branch, dependency,
    //    merge, unmerge).
    let (ours, theirs) = (server.database().unwrap(), server.database().unwrap());
    let steps: &[(&str, &str)] = &[
        ("upgrade", "b6f5d0a7c8e9"),
        ("upgrade", "f4d3b8e5a6c7"),
        ("upgrade", "d8b7f2c9e0a1"),
        ("upgrade", "a5e4c9f6b7d8"),
        ("upgrade", "head"),
        ("downgrade", "a5e4c9f6b7d8"),
        ("downgrade", "e3c2a7d4f5b6"),
        ("upgrade", "heads"),
        ("downgrade", "base"),
    ];
    for (verb, target) in steps {
        cargo_alembic(ours.url(), &[verb, target]);
        python::alembic_cli(&project, theirs.url(), &[verb, target]);
        assert_eq!(
            version_rows(ours.url()),
            version_rows(theirs.url()),
            "after {verb} {target}"
        );
    }

    // 2. One database, the tools in turn.
    let shared = server.database().unwrap();
    python::alembic_cli(&project, shared.url(), &["upgrade", "f4d3b8e5a6c7"]);
    assert_eq!(cargo_alembic(shared.url(), &["current"]), "f4d3b8e5a6c7\n");
    let out = cargo_alembic(shared.url(), &["upgrade", "head"]);
    assert!(
        out.contains("Running upgrade e3c2a7d4f5b6 -> b6f5d0a7c8e9, create audit log"),
        "{out}"
    );
    assert!(
        !out.contains("create accounts"),
        "what Alembic applied is not run again: {out}"
    );
    assert_eq!(version_rows(shared.url()), ["f0d9b4e1a2c3"]);
    python::alembic_cli(&project, shared.url(), &["downgrade", "-1"]);
    assert_eq!(
        cargo_alembic(shared.url(), &["current"]),
        "e9c8a3d0f1b2 (audit)\n"
    );
    let theirs_current =
        String::from_utf8(python::alembic_cli(&project, shared.url(), &["current"]).stdout)
            .unwrap();
    assert!(theirs_current.contains("e9c8a3d0f1b2"), "{theirs_current}");
    cargo_alembic(shared.url(), &["downgrade", "base"]);
    assert!(version_rows(shared.url()).is_empty());
}
