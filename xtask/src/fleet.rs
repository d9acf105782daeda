//! `cargo xtask bench fleet [--schemas N] [--databases M]`: one chain of 20
//! revisions on N tenant schemas (default 1,000) and on M databases
//! (default 100) of one local server: `cargo alembic upgrade head
//! --each-schema` / `--each-database` beside the way users do it today, a
//! shell loop calling `cargo alembic upgrade head` once per target.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use crate::{chain, release_binary, replace_section, write_sql_chain, Shape};

const REVISIONS: usize = 20;

fn flag(args: &[String], name: &str, default: usize) -> Result<usize> {
    match args.iter().position(|a| a == name) {
        Some(i) => Ok(args
            .get(i + 1)
            .ok_or_else(|| anyhow!("{name} takes a number"))?
            .parse()?),
        None => Ok(default),
    }
}

fn run(cmd: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    let out = cmd.output()?;
    if !out.status.success() {
        bail!("{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(start.elapsed())
}

fn sql(url: &str, text: &str) -> Result<()> {
    let mut c = postgres::Client::connect(url, postgres::NoTls)?;
    c.batch_execute(text)?;
    Ok(())
}

/// The URL of another database on the same server.
fn other(url: &str, db: &str) -> String {
    let (base, _) = url.rsplit_once('/').unwrap_or((url, ""));
    format!("{base}/{db}")
}

pub(crate) fn bench_fleet(root: &Path, args: &[String]) -> Result<()> {
    use alembic_throwaway::{Choice, Server};
    let schemas = flag(args, "--schemas", 1000)?;
    let databases = flag(args, "--databases", 100)?;
    let jobs = flag(args, "-j", 4)?;
    let write = args.iter().any(|a| a == "--write");
    let exe = release_binary(root)?;
    let dir = root.join("target/bench/fleet");
    let chain_dir = dir.join("chain");
    if !chain_dir.join("versions").is_dir() {
        write_sql_chain(&chain_dir, &chain(Shape::Linear, REVISIONS))?;
    }
    let script = chain_dir.to_str().ok_or_else(|| anyhow!("utf-8 path"))?;
    let server = Server::start(Choice::Local).map_err(|e| anyhow!("{e}"))?;
    let cli = |url: &str| {
        let mut c = Command::new(&exe);
        c.args(["alembic", "--script-location", script])
            .env("DATABASE_URL", url);
        c
    };
    let mut rows = Vec::new();

    // Tenant schemas: the fleet in one database, the loop in another.
    let (fleet_db, loop_db) = (
        server.database().map_err(|e| anyhow!("{e}"))?,
        server.database().map_err(|e| anyhow!("{e}"))?,
    );
    let create: String = (0..schemas)
        .map(|i| format!("CREATE SCHEMA tenant_{i:05};"))
        .collect();
    sql(fleet_db.url(), &create)?;
    sql(loop_db.url(), &create)?;
    eprintln!("{schemas} schemas: fleet");
    let fleet = run(cli(fleet_db.url()).args([
        "upgrade",
        "head",
        "--each-schema",
        "tenant\\_%",
        "-j",
        &jobs.to_string(),
    ]))?;
    eprintln!("{schemas} schemas: shell loop");
    let start = Instant::now();
    for i in 0..schemas {
        let url = format!("{}?options=-csearch_path%3Dtenant_{i:05}", loop_db.url());
        run(cli(&url).args(["upgrade", "head"]))?;
    }
    rows.push((
        format!("{schemas} tenant schemas × {REVISIONS} revisions"),
        schemas,
        fleet,
        start.elapsed(),
    ));

    // Databases.
    let admin = server.database().map_err(|e| anyhow!("{e}"))?;
    let create = |prefix: &str| -> Result<()> {
        let mut c = postgres::Client::connect(admin.url(), postgres::NoTls)?;
        for i in 0..databases {
            c.batch_execute(&format!("CREATE DATABASE {prefix}_{i:04}"))?;
        }
        Ok(())
    };
    create("fleetdb")?;
    create("loopdb")?;
    eprintln!("{databases} databases: fleet");
    let fleet = run(cli(admin.url()).args([
        "upgrade",
        "head",
        "--each-database",
        "fleetdb\\_%",
        "-j",
        &jobs.to_string(),
    ]))?;
    eprintln!("{databases} databases: shell loop");
    let start = Instant::now();
    for i in 0..databases {
        run(cli(&other(admin.url(), &format!("loopdb_{i:04}"))).args(["upgrade", "head"]))?;
    }
    rows.push((
        format!("{databases} databases × {REVISIONS} revisions"),
        databases,
        fleet,
        start.elapsed(),
    ));

    let mut section = String::new();
    writeln!(
        section,
        "One local PostgreSQL 15 server, 2 cores. `cargo alembic upgrade head --each-schema/--each-database -j {jobs}` \
         beside a shell loop calling `cargo alembic upgrade head` once per target (a tenant through \
         `options=-csearch_path=...` in its URL), in one run.\n"
    )?;
    writeln!(section, "| fleet | `cargo alembic` fleet | shell loop | targets/s (fleet / loop) | speed-up |\n| --- | --- | --- | --- | --- |")?;
    for (label, n, fleet, looped) in &rows {
        writeln!(
            section,
            "| {label} | {:.1} s | {:.1} s | {:.0} / {:.0} | {:.1}× |",
            fleet.as_secs_f64(),
            looped.as_secs_f64(),
            *n as f64 / fleet.as_secs_f64(),
            *n as f64 / looped.as_secs_f64(),
            looped.as_secs_f64() / fleet.as_secs_f64()
        )?;
    }
    print!("{section}");
    if write {
        replace_section(&root.join("BENCHMARKS.md"), "fleet", &section)?;
    }
    Ok(())
}
