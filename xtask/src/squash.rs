//! `cargo xtask bench squash`: a new database from empty, `upgrade head`
//! with 500 revisions replayed against the same chain squashed at revision
//! 490 (the replaced files kept aside, as `squash` leaves them), whole
//! process, side by side on fresh databases of one throwaway server.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alembic_throwaway::{Choice, Server};
use anyhow::{anyhow, bail, Context, Result};

use crate::{ms, release_binary, replace_section, write_verify_chain, BenchOptions};

const COUNT: usize = 500;
const POINT: usize = 490;

/// The id `write_verify_chain` gives revision `n`.
fn id(n: usize) -> String {
    format!("{:012x}", 0xb000_0000_0000u64 + n as u64)
}

pub(crate) fn bench_squash(root: &Path, args: &[String]) -> Result<()> {
    let BenchOptions { runs, write, .. } = BenchOptions::parse(args, 9)?;
    let exe = release_binary(root)?;
    let bench = root.join("target/bench/squash");
    let (full, squashed) = (bench.join("full"), bench.join("squashed"));
    prepare(&exe, &bench)?;
    let server = Server::start(Choice::Local).map_err(|e| anyhow!("{e}"))?;
    eprintln!("server: {}", server.description());
    let upgrade = |dir: &Path| -> Result<Duration> {
        let db = server.database().map_err(|e| anyhow!("{e}"))?;
        let start = Instant::now();
        let out = Command::new(&exe)
            .arg("--script-location")
            .arg(dir)
            .args(["--database-url", db.url(), "upgrade", "head"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()?;
        let took = start.elapsed();
        if !out.status.success() {
            bail!("upgrade failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(took)
    };
    let floor_sql = bench.join("floor.sql");
    std::fs::write(&floor_sql, crate::fleet::chain_sql(&full)?)?;
    let psql_exe = crate::psql()?;
    let psql = || -> Result<Duration> {
        let db = server.database().map_err(|e| anyhow!("{e}"))?;
        let start = Instant::now();
        let out = Command::new(&psql_exe)
            .args([db.url(), "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(&floor_sql)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()?;
        let took = start.elapsed();
        if !out.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(took)
    };
    upgrade(&full)?;
    upgrade(&squashed)?;
    psql()?;
    let (mut replayed, mut collapsed, mut floor, mut ratios) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for run in 0..runs {
        // Alternate which goes first, so that neither always follows the other.
        let (a, b) = if run % 2 == 0 {
            let a = upgrade(&full)?;
            (a, upgrade(&squashed)?)
        } else {
            let b = upgrade(&squashed)?;
            (upgrade(&full)?, b)
        };
        floor.push(psql()?);
        ratios.push(a.as_secs_f64() / b.as_secs_f64());
        replayed.push(a);
        collapsed.push(b);
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        crate::median_duration(v)
    };
    ratios.sort_by(f64::total_cmp);
    let (a, b, f) = (
        median(&mut replayed),
        median(&mut collapsed),
        median(&mut floor),
    );
    let section = format!(
        "A new database from empty, `cargo alembic upgrade head` (release build, whole process, fresh database each run) on {COUNT} revisions \
         (tables, indexes, views with grants, functions, enum types), replayed one by one or squashed at revision {POINT} \
         (`squash --no-data`, the replaced files kept aside as `squash` leaves them, so both load {COUNT} files); \
         {runs} interleaved pairs on one throwaway PostgreSQL 15, 2 cores, {}.\n\n\
         | chain | median | min |\n| --- | --- | --- |\n\
         | {COUNT} revisions replayed | {} | {} |\n\
         | squashed at {POINT}: 1 squash + {} revisions | {} | {} |\n\
         | the {COUNT} upgrade sections alone, `psql -1 -f` (one round trip per statement) | {} | {} |\n\n\
         **Paired ratio (replayed / squashed), median of {runs} pairs: {:.2}×** (range {:.2}× to {:.2}×).\n",
        today()?,
        ms(a),
        ms(replayed[0]),
        COUNT - POINT,
        ms(b),
        ms(collapsed[0]),
        ms(f),
        ms(floor[0]),
        crate::median(&ratios),
        ratios[0],
        ratios[ratios.len() - 1],
    );
    println!("{section}");
    if write {
        replace_section(&root.join("BENCHMARKS.md"), "squash", &section)?;
        eprintln!("BENCHMARKS.md updated");
    }
    Ok(())
}

/// The two chains, made once: 500 revisions, and the same squashed at 490
/// by the release binary.
fn prepare(exe: &str, bench: &Path) -> Result<()> {
    let (full, squashed) = (bench.join("full"), bench.join("squashed"));
    if !squashed.join("versions/replaced").is_dir() {
        let _ = std::fs::remove_dir_all(bench);
        write_verify_chain(&full, COUNT)?;
        write_verify_chain(&squashed, COUNT)?;
        let out = Command::new(exe)
            .arg("--script-location")
            .arg(&squashed)
            .args([
                "squash",
                &id(POINT - 1),
                "--no-data",
                "--rev-id",
                "squash490",
                "-m",
                "squash at 490",
            ])
            .output()?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&squashed);
            bail!("squash failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(())
}

pub(crate) fn today() -> Result<String> {
    let out = Command::new("date").arg("+%Y-%m-%d").output()?;
    Ok(String::from_utf8(out.stdout)
        .context("date prints UTF-8")?
        .trim()
        .to_owned())
}
