//! `cargo xtask bench install [--before REV] [--runs N]`: what a new user
//! waits for. `cargo install --locked --path cargo-alembic` into an empty
//! target folder, beside `cargo install sqlx-cli --locked
//! --no-default-features --features postgres,rustls` measured the same
//! way, in one run, alternating; with `--before`, the same install at an
//! older commit too. Sources are fetched once before timing (the registry
//! cache is warm for every side), so the figures are compile time.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::link::Side;
use crate::{replace_section, summarize, BenchOptions};

/// One thing to install.
struct Install {
    label: String,
    /// `cargo install` arguments after `--root` and `--locked`.
    args: Vec<String>,
    /// Where cargo runs (a work tree, or anywhere for a registry crate).
    dir: PathBuf,
    target: PathBuf,
    root: PathBuf,
}

impl Install {
    /// An install into an empty target folder; its time and the number of
    /// crates cargo compiled.
    fn cold(&self) -> Result<(Duration, usize)> {
        let _ = std::fs::remove_dir_all(&self.target);
        let start = Instant::now();
        let out = Command::new("cargo")
            .arg("install")
            .arg("--root")
            .arg(&self.root)
            .args(["--locked", "--force"])
            .args(&self.args)
            .env("CARGO_TARGET_DIR", &self.target)
            .current_dir(&self.dir)
            .output()?;
        let took = start.elapsed();
        // A cold build is a gigabyte or two: not kept.
        let _ = std::fs::remove_dir_all(&self.target);
        if !out.status.success() {
            bail!(
                "{}: cargo install failed:\n{}",
                self.label,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let compiled = String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.trim_start().starts_with("Compiling "))
            .count();
        Ok((took, compiled))
    }
}

pub(crate) fn bench_install(root: &Path, args: &[String]) -> Result<()> {
    let BenchOptions { runs, write, .. } = BenchOptions::parse(args, 1)?;
    let before = args
        .iter()
        .position(|a| a == "--before")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let bench = root.join("target/bench/install");
    std::fs::create_dir_all(&bench)?;
    let ours = |label: &str, tree: &Path| Install {
        label: label.to_owned(),
        args: vec!["--path".into(), "cargo-alembic".into()],
        dir: tree.to_owned(),
        target: bench.join(format!("{label}.target")),
        root: bench.join(format!("{label}.root")),
    };
    let mut installs = vec![ours("cargo-alembic", root)];
    // What the Docker provider costs: the same install without it.
    let mut without_docker = ours("cargo-alembic --no-default-features (no Docker)", root);
    without_docker.args.push("--no-default-features".into());
    without_docker.target = bench.join("no-docker.target");
    without_docker.root = bench.join("no-docker.root");
    installs.push(without_docker);
    let mut sides = Vec::new();
    // Where the install at the older commit is, if there is one.
    let mut older = None;
    if let Some(rev) = &before {
        let side = Side::checkout(root, &bench, "before", rev)?;
        older = Some(installs.len());
        installs.push(ours(&format!("cargo-alembic at {}", side.rev), &side.tree));
        sides.push(side);
    }
    let (version, sqlx_dir) = sqlx_cli_source()?;
    installs.push(Install {
        label: format!("sqlx-cli {version}"),
        args: [
            "sqlx-cli",
            "--version",
            &format!("={version}"),
            "--no-default-features",
            "--features",
            "postgres,rustls",
        ]
        .map(String::from)
        .to_vec(),
        dir: bench.clone(),
        target: bench.join("sqlx.target"),
        root: bench.join("sqlx.root"),
    });
    // The sources of every side, fetched before anything is timed.
    for manifest in installs[..installs.len() - 1]
        .iter()
        .map(|i| i.dir.join("Cargo.toml"))
        .chain([sqlx_dir.join("Cargo.toml")])
    {
        let ok = Command::new("cargo")
            .args(["fetch", "--locked", "--quiet", "--manifest-path"])
            .arg(&manifest)
            .status()?
            .success();
        if !ok {
            bail!("cargo fetch {} failed", manifest.display());
        }
    }
    let mut times: Vec<Vec<Duration>> = installs.iter().map(|_| Vec::new()).collect();
    let mut crates = vec![0; installs.len()];
    let mut ratios = Vec::new();
    let mut before_ratios = Vec::new();
    for run in 0..runs {
        let mut this = vec![Duration::ZERO; installs.len()];
        let mut order: Vec<usize> = (0..installs.len()).collect();
        order.rotate_left(run % installs.len());
        for k in order {
            eprintln!("run {}/{runs}: {}", run + 1, installs[k].label);
            let (took, compiled) = installs[k].cold()?;
            eprintln!("  {:.1} s, {compiled} crates", took.as_secs_f64());
            this[k] = took;
            times[k].push(took);
            crates[k] = compiled;
        }
        ratios.push(this[0].as_secs_f64() / this[installs.len() - 1].as_secs_f64());
        if let Some(k) = older {
            before_ratios.push(this[0].as_secs_f64() / this[k].as_secs_f64());
        }
    }
    let mut section = table(&installs, times, &crates, ratios)?;
    if let Some(k) = older {
        writeln!(
            section,
            "Paired ratio cargo-alembic / {}: {}.",
            installs[k].label,
            paired(before_ratios)
        )?;
    }
    print!("{section}");
    if write {
        replace_section(&root.join("BENCHMARKS.md"), "install", &section)?;
    }
    for side in &sides {
        side.remove(root);
    }
    Ok(())
}

/// The newest sqlx-cli: its version, and its source in the registry cache
/// (`cargo info` downloads it), whose lock file says what to fetch.
fn sqlx_cli_source() -> Result<(String, PathBuf)> {
    let out = Command::new("cargo").args(["info", "sqlx-cli"]).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("version: "))
        .and_then(|v| v.split_whitespace().next())
        .context("`cargo info sqlx-cli` names no version")?
        .to_owned();
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .context("no CARGO_HOME or HOME")?;
    let name = format!("sqlx-cli-{version}");
    let dir = std::fs::read_dir(home.join("registry/src"))?
        .filter_map(|e| e.ok().map(|e| e.path().join(&name)))
        .find(|p| p.join("Cargo.toml").is_file())
        .with_context(|| format!("{name} is not in the registry cache"))?;
    Ok((version, dir))
}

fn table(
    installs: &[Install],
    times: Vec<Vec<Duration>>,
    crates: &[usize],
    ratios: Vec<f64>,
) -> Result<String> {
    let mut section = String::new();
    let runs = ratios.len();
    writeln!(
        section,
        "`cargo install --locked` into an empty target folder, 2 cores, sources already downloaded, {runs} install{} of each, \
         alternating, in one run on {}.\n",
        if runs == 1 { "" } else { "s" },
        crate::squash::today()?
    )?;
    writeln!(
        section,
        "| what | wall time (median / min) | crates compiled |\n| --- | --- | --- |"
    )?;
    for (k, t) in times.into_iter().enumerate() {
        let t = summarize(t);
        writeln!(
            section,
            "| {} | {:.0} s / {:.0} s | {} |",
            installs[k].label,
            t.median.as_secs_f64(),
            t.min.as_secs_f64(),
            crates[k]
        )?;
    }
    writeln!(
        section,
        "\nPaired ratio cargo-alembic / sqlx-cli: {}.",
        paired(ratios)
    )
    .context("format")?;
    Ok(section)
}

/// The median of paired ratios, with each run's beside it.
fn paired(mut ratios: Vec<f64>) -> String {
    ratios.sort_by(f64::total_cmp);
    format!(
        "median {:.2} (each: {})",
        crate::median(&ratios),
        ratios
            .iter()
            .map(|r| format!("{r:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
