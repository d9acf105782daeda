//! `cargo xtask bench autogenerate [--runs N] [--write]`: a chain whose head
//! is a schema of 300 tables (each with an index and a foreign key), 30
//! views and 30 functions, and a desired schema 40 changes away (columns
//! added, types changed, tables, indexes and checks added, function bodies
//! and views changed). Each run is `cargo alembic migrate` from a cold
//! start: a new throwaway server, the chain applied, both catalogs read,
//! diffed, the plan proven, the file written; its own figures split the
//! time. Beside it, migra (PyPI, deprecated) diffs the same two databases,
//! when it installs.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::replace_section;

const TABLES: usize = 300;
const VIEWS: usize = 30;
const FUNCTIONS: usize = 30;

/// The head schema, or the desired one (`changed`).
fn schema(changed: bool) -> String {
    let mut sql = String::new();
    for i in 0..TABLES {
        // The tables the first five views read change a column's type.
        let name_type = if changed && (50..75).contains(&i) && i % 5 == 0 {
            "varchar(200)"
        } else {
            "text"
        };
        let extra = if changed && i < 10 {
            ",\n    extra integer"
        } else {
            ""
        };
        let check = if changed && (30..35).contains(&i) {
            format!(",\n    CONSTRAINT t{i:03}_id_positive CHECK (id > 0)")
        } else {
            String::new()
        };
        let reference = if i == 0 {
            String::new()
        } else {
            format!(",\n    parent_id bigint REFERENCES t{:03} (id)", i - 1)
        };
        let _ = writeln!(
            sql,
            "CREATE TABLE t{i:03} (\n    id bigint PRIMARY KEY,\n    name {name_type} NOT NULL,\n    created_at timestamptz NOT NULL DEFAULT now(){reference}{extra}{check}\n);\nCREATE INDEX t{i:03}_name ON t{i:03} (name);"
        );
        if changed && (20..25).contains(&i) {
            let _ = writeln!(sql, "CREATE INDEX t{i:03}_created ON t{i:03} (created_at);");
        }
    }
    for i in 0..VIEWS {
        let more = if changed && (5..10).contains(&i) {
            ", a.created_at"
        } else {
            ""
        };
        let _ = writeln!(
            sql,
            "CREATE VIEW v{i:02} AS SELECT a.id, a.name, b.name AS next_name{more} FROM t{a:03} a JOIN t{b:03} b ON b.parent_id = a.id;",
            a = i * 5 + 50,
            b = i * 5 + 51
        );
    }
    for i in 0..FUNCTIONS {
        let body = if changed && i < 5 {
            "SELECT count(*) + 0 FROM"
        } else {
            "SELECT count(*) FROM"
        };
        let _ = writeln!(
            sql,
            "CREATE FUNCTION f{i:02}() RETURNS bigint LANGUAGE sql STABLE AS $$ {body} t{t:03} $$;",
            t = i + 200
        );
    }
    if changed {
        for i in 0..5 {
            let _ = writeln!(sql, "CREATE TABLE n{i} (id bigint PRIMARY KEY, t_id bigint REFERENCES t{i:03} (id), note text);");
        }
    }
    sql
}

/// One run's figures, from the command's own line.
#[derive(Default, Clone, Copy)]
struct Run {
    total: f64,
    server: f64,
    applying: f64,
    catalogs: f64,
    reading: f64,
    diffing: f64,
    proving: f64,
}

fn parse(stdout: &str, total: Duration) -> Result<Run> {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("autogenerate: "))
        .context("the timing line")?;
    let figure = |name: &str| -> Result<f64> {
        let at = line
            .find(name)
            .with_context(|| format!("{name} in {line}"))?
            + name.len();
        let rest = line[at..].trim_start();
        Ok(rest
            .split_whitespace()
            .next()
            .context("a number")?
            .parse()?)
    };
    Ok(Run {
        total: total.as_secs_f64() * 1000.0,
        server: figure("server")?,
        applying: figure("apply+read")?,
        catalogs: figure("(catalogs")?,
        reading: figure("renames")?,
        diffing: figure("diff")?,
        proving: figure("proof")?,
    })
}

pub(crate) fn bench_autogenerate(root: &Path, args: &[String]) -> Result<()> {
    let runs: usize = match args.iter().position(|a| a == "--runs") {
        Some(i) => args.get(i + 1).context("--runs takes a number")?.parse()?,
        None => 5,
    };
    let write = args.iter().any(|a| a == "--write");
    let exe = crate::release_binary(root)?;
    let dir = root.join("target/bench/autogenerate");
    let versions = dir.join("chain/versions");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&versions)?;
    std::fs::write(
        versions.join("h1_head.sql"),
        format!("-- the head\n-- revision: h1\n-- down_revision: None\n\n-- alembic:upgrade\n{}\n-- alembic:downgrade\n", schema(false)),
    )?;
    std::fs::write(dir.join("desired.sql"), schema(true))?;
    let figures = cold_runs(&exe, &dir, runs)?;
    let pick = |f: fn(&Run) -> f64| crate::median(&figures.iter().map(f).collect::<Vec<_>>());
    let changes = count_changes(&exe, &dir)?;
    let migra = migra(root, &exe, &dir)?;
    let mut section = String::new();
    writeln!(
        section,
        "A chain whose head has {TABLES} tables (each with an index and a foreign key), {VIEWS} views and {FUNCTIONS} \
         functions; a desired schema 40 changes away ({changes} statements planned). `cargo alembic migrate` from a \
         cold start (a new throwaway PostgreSQL 15 each time, 2 cores), median of {runs} runs, split by the \
         command's own figures:\n"
    )?;
    writeln!(section, "| part | median |\n| --- | --- |")?;
    for (name, value) in [
        ("server start", pick(|r| r.server)),
        (
            "applying the chain and, at the same time, the schema files; both catalogs read",
            pick(|r| r.applying),
        ),
        (
            "(of which the two catalog reads, added up)",
            pick(|r| r.catalogs),
        ),
        (
            "declared renames (tried in a rolled-back transaction)",
            pick(|r| r.reading),
        ),
        ("diffing", pick(|r| r.diffing)),
        (
            "proving, both ways (two catalog reads)",
            pick(|r| r.proving),
        ),
        ("**command to written, proven file**", pick(|r| r.total)),
    ] {
        writeln!(section, "| {name} | {value:.0} ms |")?;
    }
    match migra {
        Some((ours, theirs)) => writeln!(
            section,
            "\nmigra 3.0 (PyPI) on the same two databases, already made, median of 5 interleaved pairs: \
             {theirs:.0} ms for its whole run (introspecting both, diffing), beside {ours:.0} ms for the same \
             work in ours (`cargo alembic migrate --from-database` on the desired database: both catalog reads \
             and the diff, from the command's own figures). Ours then proves the plan; migra proves nothing."
        )?,
        None => writeln!(section, "\nmigra did not install here; it is left out.")?,
    }
    print!("{section}");
    if write {
        replace_section(&root.join("BENCHMARKS.md"), "autogenerate", &section)?;
    }
    Ok(())
}

/// Removes what a run wrote, keeping the head.
fn clean(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir.join("chain/versions"))? {
        let path = entry?.path();
        if !path.ends_with("h1_head.sql") {
            std::fs::remove_file(path)?;
        }
    }
    Ok(())
}

/// `cargo alembic migrate` of the desired schema on the bench chain, with
/// the given message and revision id.
fn migrate(exe: &str, dir: &Path, message: &str, id: &str) -> Command {
    let mut c = Command::new(exe);
    c.args([
        "alembic",
        "--script-location",
        "chain",
        "migrate",
        "-m",
        message,
    ])
    .args(["--schema", "desired.sql", "--rev-id", id])
    .current_dir(dir)
    .env_remove("DATABASE_URL");
    c
}

/// `runs` cold `migrate`s, each on a new throwaway server.
fn cold_runs(exe: &str, dir: &Path, runs: usize) -> Result<Vec<Run>> {
    let mut figures = Vec::new();
    for run in 0..runs {
        let start = Instant::now();
        let out = migrate(exe, dir, "bench", &format!("r{run}")).output()?;
        let took = start.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() || !stdout.contains("Proven:") {
            bail!(
                "migrate failed: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        figures.push(parse(&stdout, took)?);
        clean(dir)?;
        eprintln!("run {}: {:.0} ms", run + 1, took.as_secs_f64() * 1000.0);
    }
    Ok(figures)
}

/// The statements one run plans (from the file it writes).
fn count_changes(exe: &str, dir: &Path) -> Result<usize> {
    let out = migrate(exe, dir, "count", "count").output()?;
    if !out.status.success() {
        bail!("migrate failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut n = 0;
    for entry in std::fs::read_dir(dir.join("chain/versions"))? {
        let path = entry?.path();
        if path.ends_with("h1_head.sql") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        let upgrade = text
            .split("-- alembic:upgrade")
            .nth(1)
            .and_then(|t| t.split("-- alembic:downgrade").next())
            .unwrap_or_default();
        n += upgrade.matches(";\n").count();
        std::fs::remove_file(path)?;
    }
    Ok(n)
}

/// migra's diff of the head and desired databases, beside ours on the
/// same server (`--from-database`, the server given): medians in ms, or
/// `None` when migra does not install.
fn migra(root: &Path, ours_exe: &str, dir: &Path) -> Result<Option<(f64, f64)>> {
    use alembic_throwaway::{Choice, Server};
    let Some(exe) = crate::python_tool(
        &root.join("target/bench/migra-venv"),
        "migra",
        &["migra", "psycopg2-binary"],
    ) else {
        return Ok(None);
    };
    let server = Server::start(Choice::Local).map_err(|e| anyhow!("{e}"))?;
    let head = server.database().map_err(|e| anyhow!("{e}"))?;
    let desired = server.database().map_err(|e| anyhow!("{e}"))?;
    head.connect()?.batch_execute(&schema(false))?;
    desired.connect()?.batch_execute(&schema(true))?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 0..5 {
        let start = Instant::now();
        let sqlalchemy = |url: &str| {
            format!(
                "postgresql+psycopg2://{}",
                url.split_once("://").map_or(url, |(_, rest)| rest)
            )
        };
        let out = Command::new(&exe)
            .args([
                "--unsafe",
                &sqlalchemy(head.url()),
                &sqlalchemy(desired.url()),
            ])
            .output()?;
        // migra exits 2 when it found differences.
        if out.status.code() != Some(2) {
            bail!("migra failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        theirs.push(start.elapsed().as_secs_f64() * 1000.0);
        let out = Command::new(ours_exe)
            .args([
                "alembic",
                "--script-location",
                "chain",
                "--database-url",
                server.admin_url(),
                "migrate",
                "-m",
                "m",
                "--from-database",
                desired.url(),
                "--rev-id",
            ])
            .arg(format!("m{run}"))
            .current_dir(dir)
            .env_remove("DATABASE_URL")
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "migrate --from-database failed: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let r = parse(&stdout, Duration::ZERO)?;
        ours.push(r.catalogs + r.diffing);
        clean(dir)?;
    }
    Ok(Some((crate::median(&ours), crate::median(&theirs))))
}
