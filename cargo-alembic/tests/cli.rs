//! End-to-end tests of `cargo alembic` without a database: what users type,
//! what they see, and the exit code. One fixture folder per scenario under
//! `tests/fixtures/`; expected output in `tests/snapshots/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cargo-alembic")
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// Runs `cargo-alembic <args>` in `dir`, with a clean environment for the
/// variables it reads.
fn run_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("VISUAL")
        .env_remove("EDITOR")
        .env("NO_COLOR", "1")
        .output()
        .expect("run cargo-alembic")
}

/// Exit code, stdout and stderr in one text for a snapshot.
/// Runs `cargo-alembic --script-location db <args>` in `dir`.
fn in_db(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--script-location", "db"];
    all.extend_from_slice(args);
    run_in(dir, &all)
}

fn render(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs in a fixture folder with `--script-location .`.
fn fixture(name: &str, args: &[&str]) -> Output {
    let mut all = vec!["--script-location", "."];
    all.extend_from_slice(args);
    run_in(&fixtures().join(name), &all)
}

macro_rules! snapshot {
    ($name:expr, $out:expr) => {
        insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
            insta::assert_snapshot!($name, render(&$out));
        })
    };
}

// Bad input: each names the file and line or the revisions, with exit code 1.

#[test]
fn non_utf8_file_names_file_and_line() {
    snapshot!("non_utf8", fixture("non_utf8", &["heads"]));
}

#[test]
fn missing_revision_key() {
    snapshot!("missing_revision", fixture("missing_revision", &["heads"]));
}

#[test]
fn missing_down_revision_key() {
    snapshot!(
        "missing_down_revision",
        fixture("missing_down_revision", &["heads"])
    );
}

#[test]
fn duplicate_header_key() {
    snapshot!("duplicate_key", fixture("duplicate_key", &["heads"]));
}

#[test]
fn unknown_header_key_lists_the_allowed_keys() {
    snapshot!("unknown_key", fixture("unknown_key", &["heads"]));
}

#[test]
fn two_upgrade_sections() {
    snapshot!(
        "two_upgrade_sections",
        fixture("two_upgrade_sections", &["heads"])
    );
}

#[test]
fn no_upgrade_section() {
    snapshot!(
        "no_upgrade_section",
        fixture("no_upgrade_section", &["heads"])
    );
}

#[test]
fn unterminated_dollar_quote_names_its_line() {
    snapshot!(
        "unterminated_dollar",
        fixture("unterminated_dollar", &["check"])
    );
}

#[test]
fn missing_parent_names_revision_and_file() {
    snapshot!("missing_parent", fixture("missing_parent", &["history"]));
}

#[test]
fn cycle_is_printed() {
    snapshot!("cycle", fixture("cycle", &["heads"]));
}

#[test]
fn duplicate_id_names_both_files() {
    snapshot!("duplicate_id", fixture("duplicate_id", &["heads"]));
}

/// A file that cannot be read or written is named, with the operating
/// system's reason shown once (it was shown again as the report's cause).
#[cfg(unix)]
#[test]
fn a_file_that_cannot_be_read_or_written_is_named_with_its_reason_once() {
    let dir = tempdir();
    let versions = dir.path().join("migrations/versions");
    std::fs::create_dir_all(&versions).unwrap();
    std::os::unix::fs::symlink(dir.path().join("gone.sql"), versions.join("a1_gone.sql")).unwrap();
    snapshot!("unreadable_revision_file", run_in(dir.path(), &["heads"]));

    let blocked = tempdir();
    std::fs::write(blocked.path().join("migrations"), "a file, not a folder").unwrap();
    snapshot!(
        "unwritable_versions_folder",
        run_in(blocked.path(), &["init"])
    );
}

/// A URL that cannot be used says why, exit code 2: given empty (a CI
/// variable that is not set), another database's, or neither form; an
/// empty one in `.env` is not set, as in the environment.
#[test]
fn an_unusable_database_url_says_why() {
    let dir = tempdir();
    std::fs::create_dir_all(dir.path().join("migrations/versions")).unwrap();
    let current = |url: &str| run_in(dir.path(), &["--database-url", url, "current"]);
    snapshot!("database_url_empty", current(""));
    snapshot!(
        "database_url_other_scheme",
        current("mysql://app:s3cret@db/app")
    );
    snapshot!("database_url_neither_form", current("db.example/app"));
    std::fs::write(dir.path().join(".env"), "DATABASE_URL=\n").unwrap();
    snapshot!(
        "database_url_empty_in_dotenv",
        run_in(dir.path(), &["current"])
    );
}

#[test]
fn ambiguous_prefix_lists_candidates() {
    snapshot!("ambiguous_prefix", fixture("two_heads", &["show", "abcd"]));
}

#[test]
fn head_with_two_heads_is_an_error_with_advice() {
    snapshot!(
        "head_with_two_heads",
        fixture("two_heads", &["show", "head"])
    );
}

#[test]
fn check_refuses_two_heads_unless_allowed() {
    snapshot!("check_two_heads", fixture("two_heads", &["check"]));
    let allowed = fixture("two_heads", &["check", "--allow-multiple-heads"]);
    assert_eq!(allowed.status.code(), Some(0), "{}", render(&allowed));
}

/// `-q` (Alembic's): nothing on stdout, errors still on stderr.
#[test]
fn quiet_prints_nothing_but_errors() {
    let out = fixture("two_heads", &["-q", "heads"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert!(out.stdout.is_empty(), "{}", render(&out));
    let out = fixture("two_heads", &["show", "nope", "--quiet"]);
    assert_eq!(out.status.code(), Some(1), "{}", render(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such revision or branch `nope`"),
        "{}",
        render(&out)
    );
}

#[test]
fn bad_identifier_syntax_is_a_usage_error() {
    let out = fixture("two_heads", &["show", "a@b@c"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
}

/// `current` in a range is the database's revision, as in Alembic: without
/// a URL, say so (and not only "no database URL").
#[test]
fn current_in_a_history_range_without_a_database_says_why() {
    snapshot!(
        "history_current_without_database",
        fixture("two_heads", &["history", "-r", "-1:current"])
    );
}

#[test]
fn an_online_range_is_refused_by_upgrade_and_downgrade_alike() {
    // Both directions, before any connection: the shared command layer
    // (the embedded `migrate` says the same; see the example service's test).
    for command in ["upgrade", "downgrade"] {
        let out = fixture("two_heads", &[command, "a1:b1"]);
        assert_eq!(out.status.code(), Some(2), "{}", render(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("a range `from:to` needs --sql")
                && stderr.contains(&format!("online, `{command}` starts from")),
            "{}",
            render(&out)
        );
    }
}

/// An offline range from `heads` starts from the rows a database upgraded
/// to `heads` has, as Alembic's does: a head another revision depends on is
/// not one of them. (Both were taken: `upgrade --sql heads:a1` failed on
/// rows that overlap.)
#[test]
fn offline_ranges_from_heads_leave_out_a_head_another_depends_on() {
    let dir = a1_b2_depends_on_c3();
    let steps = |args: &[&str]| offline_steps(dir.path(), args);
    assert_eq!(
        steps(&["upgrade", "--sql", "heads:a1"]),
        Vec::<String>::new()
    );
    assert_eq!(
        steps(&["downgrade", "--sql", "heads:a1"]),
        [
            "-- Running downgrade b2 -> a1, b2",
            "INSERT INTO alembic_version (version_num) VALUES ('a1');",
            "UPDATE alembic_version SET version_num = 'c3' WHERE version_num = 'b2';",
        ]
    );
}

/// `a1 <- b2`, and `c3`, which `b2` depends on, in `db/versions`.
fn a1_b2_depends_on_c3() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let versions = dir.path().join("db/versions");
    std::fs::create_dir_all(&versions).unwrap();
    for (id, down, depends) in [
        ("a1", "None", "None"),
        ("b2", "a1", "c3"),
        ("c3", "None", "None"),
    ] {
        std::fs::write(
            versions.join(format!("{id}.sql")),
            format!("-- {id}\n-- revision: {id}\n-- down_revision: {down}\n-- depends_on: {depends}\n\n-- alembic:upgrade\nSELECT 1;\n\n-- alembic:downgrade\nSELECT 1;\n"),
        )
        .unwrap();
    }
    dir
}

/// An offline script's `-- Running` lines (without the path) and its
/// version-table statements.
fn offline_steps(dir: &Path, args: &[&str]) -> Vec<String> {
    let out = in_db(dir, args);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("-- Running") || l.contains("alembic_version "))
        .map(|l| l.split(" (db/").next().unwrap_or(l).to_owned())
        .collect()
}

/// `stamp --sql` takes Alembic's `from:to` (one `from` for all), and
/// `stamp` takes `-1` as Alembic's command line does (both were refused:
/// "no such revision or branch `a1:b2`", and `-1` as an unknown option).
#[test]
fn stamp_takes_alembics_offline_ranges_and_relative_steps() {
    let dir = a1_b2_depends_on_c3();
    assert_eq!(
        offline_steps(dir.path(), &["stamp", "--sql", "a1:b2"]),
        [
            "DELETE FROM alembic_version WHERE version_num = 'a1';",
            "INSERT INTO alembic_version (version_num) VALUES ('b2');",
        ]
    );
    assert_eq!(
        offline_steps(dir.path(), &["stamp", "--sql", "-1", "--purge"]),
        [
            "CREATE TABLE IF NOT EXISTS alembic_version (",
            "INSERT INTO alembic_version (version_num) VALUES ('a1');",
        ],
        "one below the head b2, from base"
    );
    let two = in_db(dir.path(), &["stamp", "--sql", "a1:b2", "c3:a1"]);
    assert_eq!(two.status.code(), Some(2), "{}", render(&two));
    assert!(
        String::from_utf8_lossy(&two.stderr)
            .contains("offline stamp starts from one revision at a time (given `a1:` and `c3:`)"),
        "{}",
        render(&two)
    );
    let online = in_db(dir.path(), &["stamp", "a1:b2"]);
    assert_eq!(online.status.code(), Some(2), "{}", render(&online));
    assert!(
        String::from_utf8_lossy(&online.stderr).contains("a range `from:to` needs --sql"),
        "{}",
        render(&online)
    );
}

// Line endings and BOM never change a checksum.

#[test]
fn crlf_bom_and_cr_files_have_the_lf_checksums() {
    let checksums = |variant: &str| {
        let out = fixture(
            &format!("line_endings/{variant}"),
            &["show", "a1", "--format", "json"],
        );
        assert_eq!(out.status.code(), Some(0), "{}", render(&out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            v[0]["upgrade_checksum"].as_str().unwrap().to_owned(),
            v[0]["downgrade_checksum"].as_str().unwrap().to_owned(),
            v[0]["message"].clone(),
        )
    };
    let lf = checksums("lf");
    assert_eq!(checksums("crlf_bom"), lf);
    assert_eq!(checksums("cr"), lf);
}

/// Python Alembic's options that pick an `alembic.ini` or feed `env.py`
/// get a tip on what takes their place here; other unknown options get
/// clap's usual error alone. Both are usage errors (2).
#[test]
fn alembic_options_say_what_takes_their_place() {
    let dir = tempdir();
    for (args, says) in [
        (&["-c", "alembic.ini", "heads"][..], "has no alembic.ini"),
        (&["--config=alembic.ini", "heads"], "has no alembic.ini"),
        (&["-n", "db2", "heads"], "-p/--package picks the package"),
        (&["--raiseerr", "heads"], "no traceback to raise"),
        (&["-x", "tenant=a", "upgrade", "head"], "Alembic's env.py"),
        (
            &["upgrade", "head", "-xtenant=a"],
            "options=-csearch_path%3DNAME",
        ),
    ] {
        let out = run_in(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", render(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("unexpected argument"), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    let other = run_in(dir.path(), &["-y", "heads"]);
    assert_eq!(other.status.code(), Some(2), "{}", render(&other));
    assert!(!String::from_utf8_lossy(&other.stderr).contains("tip:"));
}

#[test]
fn check_counts_one_revision_in_the_singular() {
    let out = fixture("line_endings/lf", &["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("1 revision in ") && stdout.contains("1 head (a1), 0 branch points"),
        "{stdout}"
    );
}

// The repository's own chain: branch, label, merge, depends_on.

fn repo(args: &[&str]) -> Output {
    run_in(&workspace(), args)
}

#[test]
fn example_chain_heads() {
    snapshot!("example_heads", repo(&["heads"]));
    snapshot!("example_heads_verbose", repo(&["heads", "-v"]));
}

#[test]
fn example_chain_history() {
    snapshot!("example_history", repo(&["history"]));
    snapshot!(
        "example_history_range",
        repo(&["history", "-r", "e3c2:audit@head"])
    );
}

#[test]
fn example_chain_branches() {
    snapshot!("example_branches", repo(&["branches"]));
}

#[test]
fn example_chain_show_label_head() {
    snapshot!("example_show", repo(&["show", "audit@base"]));
}

#[test]
fn example_chain_checks_clean() {
    snapshot!("example_check", repo(&["check"]));
}

#[test]
fn json_outputs_parse() {
    for args in [
        &["heads", "--format", "json"][..],
        &["history", "--format", "json"],
        &["branches", "--format", "json"],
        &["show", "heads", "--format", "json"],
        &["check", "--format", "json"],
    ] {
        let out = repo(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", render(&out));
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"));
        assert!(v.is_array() || v.is_object());
    }
    let history: serde_json::Value =
        serde_json::from_slice(&repo(&["history", "--format", "json"]).stdout).unwrap();
    assert_eq!(history.as_array().unwrap().len(), 10);
    let merge = history
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["is_merge_point"] == true)
        .unwrap();
    assert_eq!(
        merge["down_revisions"],
        serde_json::json!(["a5e4c9f6b7d8", "d8b7f2c9e0a1"])
    );
    let broken = fixture("cycle", &["check", "--format", "json"]);
    assert_eq!(broken.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&broken.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(
        report["problems"][0]["message"],
        "the revision graph has a cycle: a1 -> c3 -> b2 -> a1"
    );
}

// Commands that write.

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("alembic-cli-")
        .tempdir()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// The path printed by `revision`: `  Generating <path> ...  done`.
fn generated(stdout: &str) -> PathBuf {
    let line = stdout.lines().find(|l| l.contains("Generating")).unwrap();
    PathBuf::from(
        line.trim()
            .trim_start_matches("Generating ")
            .trim_end_matches(" ...  done"),
    )
}

/// `revision --head heads` builds on every head (in file order), as
/// Alembic writes it: a revision that merges them. It was refused as "multiple
/// heads are present".
#[test]
fn revision_on_heads_builds_on_every_head() {
    let dir = tempdir();
    let d = dir.path();
    ok(run_in(d, &["init", "db"]));
    let run = |args: &[&str]| in_db(d, args);
    ok(run(&["revision", "-m", "root", "--rev-id", "r1"]));
    ok(run(&["revision", "-m", "b", "--rev-id", "zz2"]));
    ok(run(&[
        "revision", "-m", "a", "--rev-id", "aa2", "--head", "r1", "--splice",
    ]));
    // A head on which nothing can build without --splice is still refused.
    let refused = run(&["revision", "-m", "x", "--head", "r1"]);
    assert_eq!(refused.status.code(), Some(2), "{}", render(&refused));
    ok(run(&[
        "revision", "-m", "on both", "--rev-id", "both", "--head", "heads",
    ]));
    let text = std::fs::read_to_string(d.join("db/versions/both_on_both.sql")).unwrap();
    assert!(text.contains("-- down_revision: aa2, zz2\n"), "{text}");
    assert_eq!(ok(run(&["heads"])), "both (head)\n");
}

/// `merge` takes heads, as Alembic's does; `--splice` allows others. A
/// non-head was merged silently, leaving a new head beside its
/// descendants. `list_templates` is Alembic's command too.
#[test]
fn merge_takes_heads_unless_spliced() {
    let dir = tempdir();
    let d = dir.path();
    ok(run_in(d, &["init", "db"]));
    let run = |args: &[&str]| in_db(d, args);
    ok(run(&["revision", "-m", "root", "--rev-id", "r1"]));
    ok(run(&["revision", "-m", "b", "--rev-id", "b1"]));
    ok(run(&["revision", "-m", "b", "--rev-id", "b2"]));
    ok(run(&[
        "revision", "-m", "a", "--rev-id", "a1", "--head", "r1", "--splice",
    ]));
    let refused = run(&["merge", "a1", "b1", "--rev-id", "m"]);
    assert_eq!(refused.status.code(), Some(2), "{}", render(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("revision `b1` is not a head revision"),
        "{}",
        render(&refused)
    );
    ok(run(&["merge", "--splice", "b1", "a1", "--rev-id", "m"]));
    let text = std::fs::read_to_string(d.join("db/versions/m_merge.sql")).unwrap();
    assert!(text.contains("-- down_revision: b1, a1\n"), "{text}");
    assert!(ok(run_in(d, &["list_templates"])).contains("generic - "));
}

#[test]
fn init_revision_merge_check() {
    let dir = tempdir();
    let d = dir.path();
    let out = ok(run_in(d, &["init", "db"]));
    assert!(out.contains("Generating db/README.md"), "{out}");
    assert!(d.join("db/versions").is_dir());
    // Outside a cargo project, --script-location points at the chain.
    let run = |args: &[&str]| in_db(d, args);
    let first = generated(&ok(run(&["revision", "-m", "Create users table"])));
    let name = first.file_name().unwrap().to_str().unwrap().to_owned();
    let id = &name[..12];
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
        "{name}"
    );
    assert_eq!(&name[12..], "_create_users_table.sql");
    let text = std::fs::read_to_string(d.join(&first)).unwrap();
    assert!(
        text.starts_with(&format!(
            "-- Create users table\n--\n-- revision: {id}\n-- down_revision: None\n"
        )),
        "{text}"
    );
    assert!(text.contains("\n-- alembic:upgrade\n") && text.contains("\n-- alembic:downgrade\n"));

    ok(run(&["revision", "-m", "add email", "--rev-id", "email01"]));
    ok(run(&[
        "revision",
        "-m",
        "side branch",
        "--rev-id",
        "side01",
        "--head",
        id,
        "--splice",
        "--branch-label",
        "side",
    ]));
    // Two heads: a new revision must say which one.
    let refused = run(&["revision", "-m", "x"]);
    assert_eq!(refused.status.code(), Some(2), "{}", render(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("multiple heads are present (email01, side01)"),
        "{}",
        render(&refused)
    );
    // Building on a non-head needs --splice.
    let no_splice = run(&["revision", "-m", "x", "--head", id]);
    assert!(
        String::from_utf8_lossy(&no_splice.stderr).contains("is not a head revision"),
        "{}",
        render(&no_splice)
    );
    ok(run(&[
        "revision",
        "-m",
        "on side",
        "--rev-id",
        "side02",
        "--head",
        "side@head",
        "--depends-on",
        "emai",
    ]));
    let side02 = std::fs::read_to_string(d.join("db/versions/side02_on_side.sql")).unwrap();
    assert!(
        side02
            .contains("-- down_revision: side01\n-- branch_labels: None\n-- depends_on: email01\n"),
        "{side02}"
    );

    let check = run(&["check"]);
    assert_eq!(check.status.code(), Some(1), "{}", render(&check));
    ok(run(&[
        "merge",
        "heads",
        "-m",
        "join side",
        "--rev-id",
        "join01",
    ]));
    let merged = std::fs::read_to_string(d.join("db/versions/join01_join_side.sql")).unwrap();
    assert!(
        merged.contains("-- down_revision: email01, side02\n"),
        "{merged}"
    );
    assert_eq!(ok(run(&["heads"])), "join01 (side) (head)\n");
    ok(run(&["check"]));
    let nothing = run(&["merge", "heads"]);
    assert_eq!(nothing.status.code(), Some(2), "{}", render(&nothing));

    // A duplicate id and a bad id are refused before anything is written.
    let files_before = std::fs::read_dir(d.join("db/versions")).unwrap().count();
    assert_eq!(
        run(&["revision", "-m", "again", "--rev-id", "join01", "--head", "join01"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        run(&[
            "revision",
            "-m",
            "bad",
            "--rev-id",
            "no spaces",
            "--head",
            "join01"
        ])
        .status
        .code(),
        Some(2)
    );
    assert_eq!(
        std::fs::read_dir(d.join("db/versions")).unwrap().count(),
        files_before
    );

    // A new root in a sub-folder.
    ok(run(&[
        "revision",
        "-m",
        "reports root",
        "--rev-id",
        "rep01",
        "--head",
        "base",
        "--branch-label",
        "reports",
        "--version-path",
        "db/versions/reports",
    ]));
    assert!(d
        .join("db/versions/reports/rep01_reports_root.sql")
        .is_file());
    let outside = run(&[
        "revision",
        "-m",
        "x",
        "--head",
        "reports@head",
        "--version-path",
        "elsewhere",
    ]);
    assert_eq!(outside.status.code(), Some(2), "{}", render(&outside));
    assert_eq!(
        ok(run(&["heads"])),
        "join01 (side) (head)\nrep01 (reports) (head)\n"
    );

    // init refuses a folder that is not empty.
    let again = run_in(d, &["init", "db"]);
    assert_eq!(again.status.code(), Some(1), "{}", render(&again));
}

#[test]
fn file_template_from_workspace_metadata() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(
        d.join("Cargo.toml"),
        "[workspace]\nmembers = []\n\n[workspace.metadata.alembic]\nscript_location = \"db\"\nfile_template = \"%(year)d_%(month).2d_%(day).2d_%(rev)s_%(slug)s\"\n",
    )
    .unwrap();
    ok(run_in(d, &["init"]));
    let path = generated(&ok(run_in(
        d,
        &["revision", "-m", "first", "--rev-id", "r1"],
    )));
    let name = path.file_name().unwrap().to_str().unwrap();
    assert!(
        name.ends_with("_r1_first.sql") && name.len() == "2026_11_21_r1_first.sql".len(),
        "{name}"
    );
    assert!(path.starts_with("db/versions"), "{}", path.display());
}

#[test]
fn package_metadata_overrides_workspace_metadata() {
    let dir = tempdir();
    let d = dir.path();
    std::fs::write(d.join("Cargo.toml"), "[workspace]\nmembers = [\"svc\"]\n\n[workspace.metadata.alembic]\nscript_location = \"shared\"\n").unwrap();
    std::fs::create_dir_all(d.join("svc/src")).unwrap();
    std::fs::write(d.join("svc/Cargo.toml"), "[package]\nname = \"svc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[package.metadata.alembic]\nscript_location = \"db\"\n").unwrap();
    std::fs::write(d.join("svc/src/lib.rs"), "").unwrap();
    // At the workspace root: the workspace table.
    assert!(ok(run_in(d, &["init"])).contains("shared/versions"));
    // Inside the package: its own table, relative to the package.
    assert!(ok(run_in(&d.join("svc"), &["init"])).contains("db/versions"));
    assert!(d.join("svc/db/versions").is_dir());
    // -p selects the package from the root.
    ok(run_in(
        d,
        &["-p", "svc", "revision", "-m", "in svc", "--rev-id", "s1"],
    ));
    assert!(d.join("svc/db/versions/s1_in_svc.sql").is_file());
    let bad = run_in(d, &["-p", "nope", "heads"]);
    assert_eq!(bad.status.code(), Some(2), "{}", render(&bad));
}

#[test]
fn unknown_metadata_key_is_a_configuration_error() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        "[workspace]\nmembers = []\n\n[workspace.metadata.alembic]\nscript_locaton = \"db\"\n",
    )
    .unwrap();
    snapshot!("unknown_metadata_key", run_in(dir.path(), &["check"]));
}

#[test]
fn autogenerate_without_a_schema_says_what_to_configure() {
    snapshot!("migrate", repo(&["migrate", "-m", "x"]));
    let out = repo(&["revision", "--autogenerate", "-m", "x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--schema PATH"),
        "{}",
        render(&out)
    );
    // The flags of autogenerate are refused without it.
    let out = repo(&["revision", "-m", "x", "--schema", "s.sql"]);
    assert_eq!(out.status.code(), Some(2), "{}", render(&out));
}

#[test]
fn edit_runs_the_editor_on_the_file() {
    let dir = tempdir();
    let log = dir.path().join("opened");
    let out = Command::new(bin())
        .args(["--script-location", "."])
        .args(["edit", "abcd1111"])
        .current_dir(fixtures().join("two_heads"))
        .env("EDITOR", format!("echo >{}", log.display()))
        .env_remove("VISUAL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap().trim(),
        "versions/abcd1111_left.sql"
    );
    let none = fixture("two_heads", &["edit", "abcd1111"]);
    assert_eq!(none.status.code(), Some(2), "{}", render(&none));
    // `heads` opens every head, one after the other, as Alembic's `edit`
    // does; it was refused as several heads.
    let out = Command::new(bin())
        .args(["--script-location", ".", "edit", "heads"])
        .current_dir(fixtures().join("two_heads"))
        .env("EDITOR", format!("echo >>{}", log.display()))
        .env_remove("VISUAL")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "versions/abcd1111_left.sql\nversions/abcd1111_left.sql\nversions/abcd2222_right.sql\n"
    );
}

#[test]
fn works_as_cargo_subcommand_and_directly() {
    let direct = repo(&["heads"]);
    let via_cargo = repo(&["alembic", "heads"]);
    assert_eq!(render(&direct), render(&via_cargo));
    assert_eq!(repo(&["--help"]).status.code(), Some(0));
    assert_eq!(repo(&["no-such-command"]).status.code(), Some(2));
}

#[test]
fn closed_stdout_is_not_an_error() {
    let mut child = Command::new(bin())
        .args(["history", "-v"])
        .current_dir(workspace())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", render(&out));
}

#[test]
fn manifest_path_from_outside_the_project() {
    let dir = tempdir();
    let manifest = workspace().join("Cargo.toml");
    let out = ok(run_in(
        dir.path(),
        &["--manifest-path", manifest.to_str().unwrap(), "check"],
    ));
    assert!(
        out.starts_with("10 revisions in ") && out.contains("migrations/versions"),
        "{out}"
    );
}

// The GitHub workflow and the reusable action.

fn yaml(path: &str) -> (String, serde_yaml::Value) {
    let text =
        std::fs::read_to_string(workspace().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    let value: serde_yaml::Value =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path} does not parse: {e}"));
    (text, value)
}

#[test]
fn the_action_parses_and_uses_every_input() {
    let (text, action) = yaml(".github/actions/verify/action.yml");
    assert_eq!(action["runs"]["using"], "composite");
    let inputs = action["inputs"].as_mapping().expect("inputs");
    assert!(!inputs.is_empty());
    for (name, spec) in inputs {
        let name = name.as_str().unwrap();
        assert!(
            spec["description"].as_str().is_some_and(|d| !d.is_empty()),
            "input {name} has a description"
        );
        assert!(
            text.contains(&format!("inputs.{name} }}}}")),
            "input {name} is used"
        );
    }
    let steps = action["runs"]["steps"].as_sequence().unwrap();
    assert!(steps.iter().any(|s| s["run"]
        .as_str()
        .is_some_and(|r| r.contains("cargo alembic") && r.contains("--format github"))));
}

#[test]
fn the_workflow_parses_and_runs_the_test_command_and_the_action() {
    let (_, ci) = yaml(".github/workflows/ci.yml");
    let jobs = ci["jobs"].as_mapping().expect("jobs");
    let steps = |job: &str| -> Vec<serde_yaml::Value> {
        ci["jobs"][job]["steps"]
            .as_sequence()
            .unwrap_or_else(|| panic!("job {job}"))
            .clone()
    };
    assert!(
        steps("test").iter().any(|s| s["run"] == "bash .ci/run"),
        "the test job runs .ci/run"
    );
    assert!(
        steps("chain")
            .iter()
            .any(|s| s["uses"] == "./.github/actions/verify"),
        "the chain job runs the action"
    );
    assert!(steps("docker").iter().any(|s| s["run"]
        .as_str()
        .is_some_and(|r| r.contains("--features docker-tests"))));
    for (name, job) in jobs {
        assert!(
            job["timeout-minutes"].as_u64().is_some(),
            "job {name:?} has a timeout"
        );
    }
}

/// No configuration or error type prints the database password, in its
/// `Debug` or `Display` form (a log line, an error's debug form, a `dbg!`).
#[test]
fn no_configuration_or_error_type_prints_the_password() {
    use clap::Parser as _;
    const SECRET: &str = "pw-Zq81x";
    let urls = [
        format!("postgresql://app:{SECRET}@127.0.0.1:1/db?sslmode=disable"),
        format!("postgresql://127.0.0.1:1/db?user=app&password={SECRET}"),
        format!("host=127.0.0.1 port=1 user=app password={SECRET} dbname=db"),
        format!("postgresql://app:{SECRET}@127.0.0.1:1/db?sslmode=bogus"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for url in &urls {
        let mut shown: Vec<String> = Vec::new();
        let mut both = |d: &dyn std::fmt::Debug, s: Option<&dyn std::fmt::Display>| {
            shown.push(format!("{d:?}"));
            shown.push(format!("{d:#?}"));
            if let Some(s) = s {
                shown.push(s.to_string());
            }
        };
        let db_url = alembic_chain::DatabaseUrl::from(url.as_str());
        both(&db_url, Some(&db_url));
        let overrides = alembic_chain::Overrides {
            database_url: Some(db_url.clone()),
            script_location: Some(dir.path().to_owned()),
            ..Default::default()
        };
        both(&overrides, None);
        let config = alembic_chain::Config::resolve(&overrides, dir.path()).unwrap();
        both(&config, None);
        let cli = cargo_alembic::Cli::try_parse_from([
            "cargo-alembic",
            "--database-url",
            url,
            "verify",
            "--against",
            url,
        ])
        .unwrap();
        both(&cli, None);
        match alembic_embed::tls::parse(url) {
            Ok(parsed) => both(&parsed, None),
            Err(e) => both(&e, Some(&e)),
        }
        let Err(e) = alembic_embed::tls::connect(url) else {
            panic!("nothing listens on port 1")
        };
        both(&e, Some(&e));
        both(&alembic_throwaway::Choice::Url(url.clone()), None);
        both(&alembic_throwaway::Choice::Auto(Some(url.clone())), None);
        let cli = cargo_alembic::Cli::try_parse_from([
            "cargo-alembic",
            "--database-url",
            url,
            "--script-location",
            &dir.path().display().to_string(),
            "current",
        ])
        .unwrap();
        let e = cargo_alembic::run(cli).unwrap_err();
        both(&e, Some(&e));
        for text in &shown {
            assert!(!text.contains(SECRET), "{url}: {text}");
        }
    }
}

/// A mistyped option where a revision may start with `-` (`-1`,
/// `-1:base`) is a usage error naming it, not a revision looked up: the
/// value `--sqll` was reported as "no such revision or branch", exit 1.
#[test]
fn a_mistyped_option_is_a_usage_error_not_a_revision() {
    let dir = a1_b2_depends_on_c3();
    for args in [
        &["upgrade", "--sqll"][..],
        &["downgrade", "--sqll"],
        &["show", "--hed"],
        &["edit", "--hed"],
        &["history", "-r", "--verbose"],
    ] {
        let out = in_db(dir.path(), args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", render(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("no revision starts with `--`: `--")
                && !stderr.contains("no such revision"),
            "{args:?}: {stderr}"
        );
    }
    // Values that start with one `-` are still Alembic's relative steps.
    assert!(!offline_steps(dir.path(), &["downgrade", "--sql", "-1:base"]).is_empty());
    let history = in_db(dir.path(), &["history", "-r", "-1:"]);
    assert_eq!(history.status.code(), Some(0), "{}", render(&history));
}
