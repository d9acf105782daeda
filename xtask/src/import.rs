//! `cargo xtask bench import`: `cargo alembic import alembic` on a generated
//! Alembic project of 500 revisions, whole, beside the importer's Python
//! alone (the same script, same project), interleaved.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{ms, python_alembic, release_binary, replace_section, summarize, BenchOptions};

const COUNT: usize = 500;

/// The importer `cargo alembic` runs.
const SCRIPT: &str = include_str!("../../cargo-alembic/src/commands/import_alembic.py");

/// A linear Alembic project: tables, columns and indexes, as autogenerate
/// writes them.
fn write_project(dir: &Path) -> Result<()> {
    let versions = dir.join("versions");
    std::fs::create_dir_all(&versions)?;
    std::fs::write(dir.join("script.py.mako"), "")?;
    std::fs::write(dir.join("env.py"), "")?;
    let mut down = "None".to_owned();
    for n in 0..COUNT {
        let id = format!("{:012x}", 0xb000_0000_0000u64 + n as u64);
        let (up, back) = match n % 3 {
            0 => (
                format!("    op.create_table('t{n}', sa.Column('id', sa.Integer(), primary_key=True), sa.Column('name', sa.String(80), nullable=False))"),
                format!("    op.drop_table('t{n}')"),
            ),
            1 => (
                format!("    op.add_column('t{}', sa.Column('note', sa.Text(), server_default='none'))", n - 1),
                format!("    op.drop_column('t{}', 'note')", n - 1),
            ),
            _ => (
                format!("    op.create_index('ix_t{}_name', 't{}', ['name'])", n - 2, n - 2),
                format!("    op.drop_index('ix_t{}_name', table_name='t{}')", n - 2, n - 2),
            ),
        };
        let text = format!(
            "\"\"\"revision {n}\n\nRevision ID: {id}\nRevises: {down}\nCreate Date: 2024-01-01 00:00:00\n\n\"\"\"\n\
             from alembic import op\nimport sqlalchemy as sa\n\nrevision = '{id}'\ndown_revision = {quoted}\n\
             branch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n{up}\n\n\ndef downgrade():\n{back}\n",
            quoted = if down == "None" { down.clone() } else { format!("'{down}'") },
        );
        std::fs::write(versions.join(format!("{id}_revision_{n}.py")), text)?;
        down = id;
    }
    Ok(())
}

fn timed(cmd: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    let out = cmd.output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

pub(crate) fn bench_import(root: &Path, args: &[String]) -> Result<()> {
    let BenchOptions { runs, write, .. } = BenchOptions::parse(args, 10)?;
    let exe = release_binary(root)?;
    let bench = root.join("target/bench");
    let alembic = python_alembic(&bench).context("Python Alembic is needed")?;
    let python = alembic.with_file_name("python");
    let dir = bench.join("import");
    let project = dir.join("alembic-500");
    if !project.join("versions").is_dir() {
        write_project(&project)?;
    }
    let request = format!("{{\"path\": {:?}}}", project.display().to_string());
    let out = dir.join("out");
    let whole = |out: &Path| -> Result<Duration> {
        let _ = std::fs::remove_dir_all(out);
        timed(
            Command::new(&exe)
                .arg("--script-location")
                .arg(out)
                .args(["import", "alembic"])
                .arg(&project)
                .arg("--python")
                .arg(&python),
        )
    };
    let alone = || timed(Command::new(&python).args(["-c", SCRIPT, "render", &request]));
    whole(&out)?;
    alone()?;
    let (mut all, mut py, mut shares) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let (a, p) = (whole(&out)?, alone()?);
        shares.push(p.as_secs_f64() / a.as_secs_f64());
        all.push(a);
        py.push(p);
    }
    shares.sort_by(f64::total_cmp);
    let (all, py) = (summarize(all), summarize(py));
    let mut section = String::new();
    writeln!(
        section,
        "`cargo alembic import alembic` on a generated Alembic project of {COUNT} revisions (`create_table`, `add_column`, \
         `create_index`, each with its downgrade), Python 3 with Alembic 1.20; beside it, the importer's Python alone on the \
         same project (loading the revision modules and rendering every upgrade and downgrade offline), interleaved, {runs} runs.\n"
    )?;
    writeln!(section, "| | median | min |\n| --- | --- | --- |")?;
    writeln!(
        section,
        "| whole import (render, check, write {COUNT} files) | {} | {} |",
        ms(all.median),
        ms(all.min)
    )?;
    writeln!(
        section,
        "| of which Python alone | {} | {} |",
        ms(py.median),
        ms(py.min)
    )?;
    writeln!(
        section,
        "\nShare of the import spent in Python (paired per run): median {:.0}%. Every revision renders in one Python process.",
        crate::median(&shares) * 100.0
    )?;
    print!("{section}");
    if write {
        replace_section(&root.join("BENCHMARKS.md"), "import", &section)?;
    }
    Ok(())
}
