//! `cargo xtask bench link --before REV`: what a service pays for the
//! runtime. The example service is built cold (an empty target folder) in
//! release from two commits, alternating, and its stripped binary and the
//! crates it links are compared.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{replace_section, summarize, BenchOptions};

/// One commit of the workspace, checked out beside the work tree.
pub(crate) struct Side {
    label: String,
    pub(crate) rev: String,
    pub(crate) tree: PathBuf,
}

impl Side {
    pub(crate) fn checkout(root: &Path, bench: &Path, label: &str, rev: &str) -> Result<Side> {
        let tree = bench.join(label);
        if tree.exists() {
            let _ = Command::new("git")
                .args(["worktree", "remove", "--force"])
                .arg(&tree)
                .current_dir(root)
                .status();
            let _ = std::fs::remove_dir_all(&tree);
        }
        let ok = Command::new("git")
            .args(["worktree", "add", "--detach", "--force", "--quiet"])
            .arg(&tree)
            .arg(rev)
            .current_dir(root)
            .status()?
            .success();
        if !ok {
            bail!("git worktree add {} {rev} failed", tree.display());
        }
        let out = Command::new("git")
            .args(["rev-parse", "--short", rev])
            .current_dir(root)
            .output()?;
        Ok(Side {
            label: label.to_owned(),
            rev: String::from_utf8_lossy(&out.stdout).trim().to_owned(),
            tree,
        })
    }

    /// Removes the work tree.
    pub(crate) fn remove(&self, root: &Path) {
        let _ = Command::new("git")
            .args(["worktree", "remove", "--force"])
            .arg(&self.tree)
            .current_dir(root)
            .status();
    }

    fn target(&self) -> PathBuf {
        self.tree.with_extension("target")
    }

    /// A release build of the example service into an empty target folder.
    fn cold_build(&self) -> Result<Duration> {
        let _ = std::fs::remove_dir_all(self.target());
        let start = Instant::now();
        let out = Command::new("cargo")
            .args(["build", "--release", "--locked", "-p", "example-service"])
            .env("CARGO_TARGET_DIR", self.target())
            .current_dir(&self.tree)
            .output()?;
        let took = start.elapsed();
        if !out.status.success() {
            bail!(
                "{}: cargo build failed:\n{}",
                self.label,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(took)
    }

    fn stripped_size(&self) -> Result<u64> {
        let stripped = self.target().join("example-service.stripped");
        let ok = Command::new("strip")
            .arg("-o")
            .arg(&stripped)
            .arg(self.target().join("release/example-service"))
            .status()?
            .success();
        if !ok {
            bail!("strip failed");
        }
        Ok(std::fs::metadata(&stripped)?.len())
    }

    /// The packages linked into the binary (normal dependencies without
    /// proc-macros), each counted once.
    fn linked(&self) -> Result<Vec<String>> {
        let out = Command::new("cargo")
            .args(["tree", "--locked", "-p", "example-service"])
            .args(["-e", "normal,no-proc-macro", "--prefix", "none"])
            .args(["--format", "{p}", "--no-dedupe"])
            .current_dir(&self.tree)
            .output()?;
        let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }
}

pub(crate) fn bench_link(root: &Path, args: &[String]) -> Result<()> {
    let BenchOptions { runs, write, .. } = BenchOptions::parse(args, 2)?;
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let before = value("--before").context("--before REV: the commit to compare with")?;
    let after = value("--after").unwrap_or_else(|| "HEAD".to_owned());
    let bench = root.join("target/bench/link");
    std::fs::create_dir_all(&bench)?;
    let sides = [
        Side::checkout(root, &bench, "before", &before)?,
        Side::checkout(root, &bench, "after", &after)?,
    ];
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut ratios = Vec::new();
    for run in 0..runs {
        // Alternate which side goes first, so that drift in the machine's
        // load falls on both.
        let order = if run % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut this = [Duration::ZERO; 2];
        for k in order {
            eprintln!("run {}/{runs}: cold build of {}", run + 1, sides[k].label);
            this[k] = sides[k].cold_build()?;
            times[k].push(this[k]);
        }
        ratios.push(this[1].as_secs_f64() / this[0].as_secs_f64());
    }
    let sizes = [sides[0].stripped_size()?, sides[1].stripped_size()?];
    let linked = [sides[0].linked()?, sides[1].linked()?];
    let gone: Vec<&String> = linked[0]
        .iter()
        .filter(|c| !linked[1].contains(c))
        .collect();

    let mut section = String::new();
    writeln!(
        section,
        "The example service (`examples/service`: `embed_migrations!`, the `cli` feature, TLS), built in release into an \
         empty target folder at two commits, alternating, {runs} builds each, in one run.\n"
    )?;
    writeln!(
        section,
        "| commit | cold release build (median / min) | release binary, stripped | packages linked |\n| --- | --- | --- | --- |"
    )?;
    for k in 0..2 {
        let t = summarize(times[k].clone());
        writeln!(
            section,
            "| {} ({}) | {:.1} s / {:.1} s | {:.2} MiB ({} bytes) | {} |",
            sides[k].label,
            sides[k].rev,
            t.median.as_secs_f64(),
            t.min.as_secs_f64(),
            sizes[k] as f64 / (1024.0 * 1024.0),
            sizes[k],
            linked[k].len()
        )?;
    }
    ratios.sort_by(f64::total_cmp);
    writeln!(
        section,
        "\nPaired build-time ratio after/before: median {:.3} (each: {}). No longer linked: {}.",
        crate::median(&ratios),
        ratios
            .iter()
            .map(|r| format!("{r:.3}"))
            .collect::<Vec<_>>()
            .join(", "),
        if gone.is_empty() {
            "nothing".to_owned()
        } else {
            gone.iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        }
    )?;
    print!("{section}");
    if write {
        replace_section(&root.join("BENCHMARKS.md"), "link", &section)?;
    }
    for side in &sides {
        side.remove(root);
    }
    Ok(())
}
