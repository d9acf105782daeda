//! A copy of the example service, built with cargo as a user builds it:
//! editing an applied revision rebuilds the binary, which then refuses to
//! start until the edit is accepted (with its own `migrate accept`);
//! adding a revision file rebuilds it with the new revision in; removing
//! one rebuilds it without.
//!
//! The copy lives under cargo's test scratch folder with a target folder of
//! its own (kept between runs, so only the first run compiles the
//! dependencies).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use alembic_throwaway::{Choice, Server};

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(Choice::Local).expect("a throwaway PostgreSQL"))
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

struct Project {
    /// Holds `migrations/` and `examples/service/`, as the workspace does.
    root: PathBuf,
    target: PathBuf,
}

impl Project {
    fn new() -> Project {
        let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rebuild");
        let root = scratch.join("project");
        let _ = std::fs::remove_dir_all(&root);
        let ws = workspace();
        copy_dir(&ws.join("migrations"), &root.join("migrations"));
        let service = root.join("examples/service");
        copy_dir(&ws.join("examples/service/src"), &service.join("src"));
        std::fs::copy(
            ws.join("examples/service/build.rs"),
            service.join("build.rs"),
        )
        .unwrap();
        std::fs::copy(ws.join("Cargo.lock"), service.join("Cargo.lock")).unwrap();
        let manifest = format!(
            r#"[package]
name = "example-service"
version = "0.1.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
alembic-embed = {{ path = {embed:?}, features = ["cli"] }}
clap = {{ version = "4", features = ["derive", "env"] }}
log = "0.4"
env_logger = {{ version = "0.11", default-features = false, features = ["humantime"] }}

[build-dependencies]
alembic-chain = {{ path = {core:?} }}
"#,
            embed = ws.join("alembic-embed").display().to_string(),
            core = ws.join("alembic-chain").display().to_string(),
        );
        std::fs::write(service.join("Cargo.toml"), manifest).unwrap();
        Project {
            root,
            target: scratch.join("target"),
        }
    }

    fn build(&self) {
        let out = Command::new(env!("CARGO"))
            .args(["build", "--offline", "--quiet", "--manifest-path"])
            .arg(self.root.join("examples/service/Cargo.toml"))
            .env("CARGO_TARGET_DIR", &self.target)
            // No debug information: it is 0.8 GB of disk here otherwise.
            .env("CARGO_PROFILE_DEV_DEBUG", "false")
            .output()
            .unwrap();
        assert!(out.status.success(), "cargo build: {}", text(&out));
    }

    fn binary(&self) -> PathBuf {
        self.target
            .join("debug")
            .join(format!("example-service{}", std::env::consts::EXE_SUFFIX))
    }

    fn run(&self, url: &str, args: &[&str]) -> Output {
        Command::new(self.binary())
            .args(args)
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "info")
            .output()
            .unwrap()
    }

    fn versions(&self) -> PathBuf {
        self.root.join("migrations/versions")
    }

    fn history(&self) -> String {
        let out = self.run("", &["migrate", "history"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        String::from_utf8(out.stdout).unwrap()
    }
}

#[test]
fn edits_additions_and_removals_rebuild_the_binary() {
    let project = Project::new();
    project.build();
    let db = server().database().unwrap();
    let url = db.url();
    assert_eq!(project.history().lines().count(), 10);
    let out = project.run(url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Edit an applied revision: the binary is rebuilt with the edit, and
    // refuses to start, naming the revision and both checksums.
    let file = project.versions().join("c1a0e5b2d3f4_create_accounts.sql");
    let before = alembic_embed::cli_engine::load_versions(&project.versions()).unwrap();
    let recorded = before
        .get("c1a0e5b2d3f4")
        .unwrap()
        .upgrade
        .checksum()
        .to_string();
    let original = std::fs::read_to_string(&file).unwrap();
    let edited = original.replacen(
        "-- alembic:downgrade",
        "COMMENT ON TABLE accounts IS 'edited after it ran';\n\n-- alembic:downgrade",
        1,
    );
    assert_ne!(original, edited);
    std::fs::write(&file, edited).unwrap();
    let after = alembic_embed::cli_engine::load_versions(&project.versions()).unwrap();
    let now = after
        .get("c1a0e5b2d3f4")
        .unwrap()
        .upgrade
        .checksum()
        .to_string();
    project.build();
    let out = project.run(url, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("revision c1a0e5b2d3f4")
            && stderr.contains("was edited after it was applied")
            && stderr.contains(&recorded)
            && stderr.contains(&now),
        "{stderr}"
    );
    // It names the binary's own command to accept the edit.
    assert!(
        stderr.contains("`example-service migrate accept c1a0e5b2d3f4 --reason"),
        "{stderr}"
    );

    // That command records the edit; the binary starts.
    let out = project.run(
        url,
        &[
            "migrate",
            "accept",
            "c1a0",
            "--reason",
            "comment added after review",
            "--by",
            "ops@example.com",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .starts_with("Accepted the edit of c1a0e5b2d3f4 by ops@example.com: "),
        "{}",
        text(&out)
    );
    let out = project.run(url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Add a revision file: rebuilt with it, and it is applied at start.
    let added = project.versions().join("9a9b9c9d9e9f_add_notes.sql");
    std::fs::write(
        &added,
        "-- add notes\n--\n-- revision: 9a9b9c9d9e9f\n-- down_revision: f0d9b4e1a2c3\n\n\
         -- alembic:upgrade\nCREATE TABLE notes (id bigint PRIMARY KEY);\n\n-- alembic:downgrade\nDROP TABLE notes;\n",
    )
    .unwrap();
    project.build();
    let history = project.history();
    assert!(
        history.starts_with("f0d9b4e1a2c3 -> 9a9b9c9d9e9f (audit) (head), add notes"),
        "{history}"
    );
    let out = project.run(url, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("database at 9a9b9c9d9e9f"));

    // Undo it and remove the file: rebuilt without it.
    let out = project.run(url, &["migrate", "downgrade", "-1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    std::fs::remove_file(&added).unwrap();
    project.build();
    let history = project.history();
    assert!(!history.contains("9a9b9c9d9e9f"), "{history}");
    assert_eq!(history.lines().count(), 10);
}
