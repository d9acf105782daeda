//! Project automation: `cargo xtask <task>`.
//!
//! - `bench`: times `cargo alembic heads` and `history` as whole processes on
//!   generated chains, side by side with Python Alembic on the same chains,
//!   and writes the figures into BENCHMARKS.md.
//! - `bench engine`: applying 1,000 revisions (psql, cargo-alembic, Python
//!   Alembic) and a no-op upgrade.
//! - `bench verify`: `verify --local` on a 100-revision chain.
//! - `bench embed`: a binary with 1,000 embedded revisions beside
//!   `sqlx::migrate!`: startup check and incremental build cost.
//! - `bench import`: `import alembic` of 500 generated revisions, and the
//!   share spent in Python.
//! - `bench fleet`: tenant schemas and databases, a fleet run beside a
//!   shell loop.
//! - `bench autogenerate`: `migrate` of a 300-table schema 40 changes away,
//!   split into its parts, beside migra's diff.
//! - `bench link --before REV`: the example service's cold release build
//!   and stripped binary at two commits.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

mod autogen;
mod embed;
mod fleet;
mod import;
mod install;
mod link;
mod sqlx_cli;
mod squash;

fn main() -> Result<()> {
    // Work from the project root, wherever cargo was run.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("xtask lives in the workspace")?
        .to_owned();
    std::env::set_current_dir(&root)?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") if args.get(1).map(String::as_str) == Some("engine") => {
            bench_engine(&root, &args[2..])
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("verify") => {
            bench_verify(&root, &args[2..])
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("embed") => {
            embed::bench_embed(&root, &args[2..])
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("autogenerate") => {
            autogen::bench_autogenerate(&root, &args[2..])
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("fleet") => {
            fleet::bench_fleet(&root, &args[2..])
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("install") => {
            install::bench_install(&root, &args[2..])
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("squash") => {
            squash::bench_squash(&root, &args[2..])
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("import") => {
            import::bench_import(&root, &args[2..])
        }
        Some("bench") if args.get(1).map(String::as_str) == Some("link") => {
            link::bench_link(&root, &args[2..])
        }
        Some("bench") => bench(&root, &args[1..]),
        // The floor of the loading benchmark, run as its own process.
        Some("__read-all") => read_all(Path::new(args.get(1).context("a folder")?)),
        _ => {
            eprintln!(
                "usage: cargo xtask bench [engine|verify|embed|link|import|fleet|autogenerate|squash|install] [--runs N] [--no-python] [--no-sqlx] [--before REV] [--write]"
            );
            bail!("unknown task")
        }
    }
}

/// Chain shapes the benchmark generates.
#[derive(Clone, Copy)]
enum Shape {
    Linear,
    /// Blocks of 20: a branch point, two branches of 9, a merge.
    Branchy,
}

impl Shape {
    fn name(self) -> &'static str {
        match self {
            Shape::Linear => "linear",
            Shape::Branchy => "branchy",
        }
    }
}

/// One revision of a generated chain: id, parents, index.
struct Rev {
    id: String,
    parents: Vec<String>,
    n: usize,
}

fn chain(shape: Shape, count: usize) -> Vec<Rev> {
    let id = |n: usize| format!("{:012x}", 0xa000_0000_0000u64 + n as u64);
    let mut revs: Vec<Rev> = Vec::with_capacity(count);
    match shape {
        Shape::Linear => {
            for n in 0..count {
                let parents = if n == 0 { vec![] } else { vec![id(n - 1)] };
                revs.push(Rev {
                    id: id(n),
                    parents,
                    n,
                });
            }
        }
        Shape::Branchy => {
            let mut tip: Option<String> = None;
            let mut n = 0;
            while n < count {
                let start = n;
                let bp = id(n);
                revs.push(Rev {
                    id: bp.clone(),
                    parents: tip.iter().cloned().collect(),
                    n,
                });
                n += 1;
                let mut ends = Vec::new();
                for _branch in 0..2 {
                    let mut prev = bp.clone();
                    for _ in 0..9 {
                        if n >= count {
                            break;
                        }
                        revs.push(Rev {
                            id: id(n),
                            parents: vec![prev.clone()],
                            n,
                        });
                        prev = id(n);
                        n += 1;
                    }
                    ends.push(prev);
                }
                ends.dedup();
                if n < count && n - start == 19 {
                    revs.push(Rev {
                        id: id(n),
                        parents: ends.clone(),
                        n,
                    });
                    tip = Some(id(n));
                    n += 1;
                } else {
                    // A short last block: join what is there so that the
                    // chain keeps one head.
                    if ends.len() > 1 && n < count {
                        revs.push(Rev {
                            id: id(n),
                            parents: ends.clone(),
                            n,
                        });
                        n += 1;
                    }
                    tip = revs.last().map(|r| r.id.clone());
                }
            }
        }
    }
    revs
}

fn write_sql_chain(dir: &Path, revs: &[Rev]) -> Result<()> {
    let versions = dir.join("versions");
    std::fs::create_dir_all(&versions)?;
    for r in revs {
        let down = if r.parents.is_empty() {
            "None".to_owned()
        } else {
            r.parents.join(", ")
        };
        let text = format!(
            "-- create table t{n}\n--\n-- revision: {id}\n-- down_revision: {down}\n-- branch_labels: None\n-- depends_on: None\n\
             -- create_date: 2026-11-21 10:00:00.000000\n\n-- alembic:upgrade\nCREATE TABLE t{n} (\n    id bigint PRIMARY KEY,\n    \
             name text NOT NULL\n);\n\n-- alembic:downgrade\nDROP TABLE t{n};\n",
            n = r.n,
            id = r.id
        );
        std::fs::write(
            versions.join(format!("{}_create_table_t{}.sql", r.id, r.n)),
            text,
        )?;
    }
    Ok(())
}

pub(crate) fn write_python_chain(dir: &Path, revs: &[Rev]) -> Result<()> {
    let versions = dir.join("alembic/versions");
    std::fs::create_dir_all(&versions)?;
    std::fs::write(
        dir.join("alembic.ini"),
        "[alembic]\nscript_location = %(here)s/alembic\n",
    )?;
    for r in revs {
        let down = match r.parents.as_slice() {
            [] => "None".to_owned(),
            [one] => format!("'{one}'"),
            many => format!(
                "({})",
                many.iter()
                    .map(|p| format!("'{p}'"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let text = format!(
            "\"\"\"create table t{n}\n\nRevision ID: {id}\nRevises: {revises}\nCreate Date: 2026-11-21 10:00:00.000000\n\n\"\"\"\n\
             from alembic import op\n\nrevision = '{id}'\ndown_revision = {down}\nbranch_labels = None\ndepends_on = None\n\n\n\
             def upgrade():\n    op.execute(\"CREATE TABLE t{n} (id bigint PRIMARY KEY, name text NOT NULL)\")\n\n\n\
             def downgrade():\n    op.execute(\"DROP TABLE t{n}\")\n",
            n = r.n,
            id = r.id,
            revises = r.parents.join(", ")
        );
        std::fs::write(
            versions.join(format!("{}_create_table_t{}.py", r.id, r.n)),
            text,
        )?;
    }
    Ok(())
}

/// Timing of one command: median and minimum wall time over `runs`.
struct Timing {
    median: Duration,
    min: Duration,
    runs: usize,
}

fn run_once(cmd: &[&str], cwd: &Path) -> Result<Duration> {
    let start = Instant::now();
    let out = Command::new(cmd[0])
        .args(&cmd[1..])
        .current_dir(cwd)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(elapsed)
}

/// The median of some figures: the middle one, or the mean of the two in
/// the middle when there is an even number of them.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// [`median`] of durations.
pub(crate) fn median_duration(values: &[Duration]) -> Duration {
    let secs: Vec<f64> = values.iter().map(Duration::as_secs_f64).collect();
    Duration::from_secs_f64(median(&secs))
}

fn summarize(mut all: Vec<Duration>) -> Timing {
    all.sort();
    Timing {
        median: median_duration(&all),
        min: all[0],
        runs: all.len(),
    }
}

fn time(cmd: &[&str], cwd: &Path, runs: usize, warmup: usize) -> Result<Timing> {
    Ok(time_interleaved(&[cmd], cwd, runs, warmup)?.remove(0))
}

/// Times several commands in turn (A B C A B C ...), so that the machine's
/// load at any moment weighs on all of them alike.
fn time_interleaved(
    cmds: &[&[&str]],
    cwd: &Path,
    runs: usize,
    warmup: usize,
) -> Result<Vec<Timing>> {
    for _ in 0..warmup {
        for cmd in cmds {
            run_once(cmd, cwd)?;
        }
    }
    let mut all: Vec<Vec<Duration>> = vec![Vec::with_capacity(runs); cmds.len()];
    for _ in 0..runs {
        for (i, cmd) in cmds.iter().enumerate() {
            all[i].push(run_once(cmd, cwd)?);
        }
    }
    Ok(all.into_iter().map(summarize).collect())
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// psql from the server's own binaries: Debian's `/usr/bin/psql`, first on
/// PATH, is a Perl script that picks a cluster and then runs this one,
/// about 38 ms more per start (measured), which a floor must not carry.
pub(crate) fn psql() -> Result<PathBuf> {
    let bindir = alembic_throwaway::find_bindir().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(bindir.join("psql"))
}

pub(crate) fn python_alembic(bench: &Path) -> Option<PathBuf> {
    python_tool(&bench.join("venv"), "alembic", &["alembic>=1.20,<1.21"])
}

/// A Python tool installed with pip into its own virtual environment under
/// the target folder (once): its executable, or `None` when it does not
/// install here.
pub(crate) fn python_tool(venv: &Path, tool: &str, packages: &[&str]) -> Option<PathBuf> {
    let exe = venv.join("bin").join(tool);
    if exe.is_file() {
        return Some(exe);
    }
    eprintln!(
        "installing {} into {} (for comparison)",
        packages.join(" "),
        venv.display()
    );
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(venv.join("bin/pip"))
            .args(["install", "-q"])
            .args(packages)
            .status()
            .is_ok_and(|s| s.success());
    (ok && exe.is_file()).then_some(exe)
}

/// The options both benchmarks take.
struct BenchOptions {
    runs: usize,
    with_python: bool,
    write: bool,
}

impl BenchOptions {
    fn parse(args: &[String], default_runs: usize) -> Result<Self> {
        let runs = match args.iter().position(|a| a == "--runs") {
            Some(i) => args.get(i + 1).context("--runs takes a number")?.parse()?,
            None => default_runs,
        };
        Ok(BenchOptions {
            runs,
            with_python: !args.iter().any(|a| a == "--no-python"),
            write: args.iter().any(|a| a == "--write"),
        })
    }
}

/// Builds the release binary and returns the path of a copy of it, which
/// is what the benches run (see [`installed_copy`]).
pub(crate) fn release_binary(root: &Path) -> Result<String> {
    let status = Command::new("cargo")
        .args(["build", "--release", "--quiet", "-p", "cargo-alembic"])
        .status()?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    let copy = installed_copy(root, &root.join("target/release/cargo-alembic"))?;
    Ok(copy.to_str().context("utf-8 path")?.to_owned())
}

/// A new copy of a program in `target/bench/bin`, made as `cargo install`
/// places one in `~/.cargo/bin` (`std::fs::copy`), so that every program a
/// bench compares starts from a file in the same state.
///
/// Measured: the file the linker wrote in `target/release` started slower
/// than a copy of the same bytes (`--version` 1.07x paired, 407 against
/// 382 to 396 page faults: its pages sit in the page cache as the linker
/// wrote them), while a peer's binary ran from its install.
pub(crate) fn installed_copy(root: &Path, program: &Path) -> Result<PathBuf> {
    let bin = root.join("target/bench/bin");
    std::fs::create_dir_all(&bin)?;
    let copy = bin.join(program.file_name().context("a program's name")?);
    // A new file, not the old one's pages overwritten in place.
    let _ = std::fs::remove_file(&copy);
    std::fs::copy(program, &copy).with_context(|| format!("copying {}", program.display()))?;
    Ok(copy)
}

fn bench(root: &Path, args: &[String]) -> Result<()> {
    let BenchOptions {
        runs,
        with_python,
        write,
    } = BenchOptions::parse(args, 30)?;
    let exe = release_binary(root)?;
    let exe_s = exe.as_str();
    let bench = root.join("target/bench");
    let python = if with_python {
        python_alembic(&bench)
    } else {
        None
    };

    let mut table = String::new();
    writeln!(table, "| chain | command | cargo-alembic (median / min) | Python Alembic 1.20 (median) | speed-up |")?;
    writeln!(table, "| --- | --- | --- | --- | --- |")?;
    let mut notes = Vec::new();
    let xtask = std::env::current_exe()?;
    let xtask_s = xtask.to_str().context("utf-8 path")?.to_owned();
    for count in [1000usize, 10_000] {
        for shape in [Shape::Linear, Shape::Branchy] {
            let label = format!("{} × {count}", shape.name());
            let dir = bench.join(format!("chains/{}-{count}", shape.name()));
            let revs = chain(shape, count);
            if !dir.join("versions").is_dir() {
                write_sql_chain(&dir, &revs)?;
            }
            let dir_s = dir.to_str().context("utf-8 path")?;
            let versions_s = format!("{dir_s}/versions");
            let floor_cmd: [&str; 3] = [&xtask_s, "__read-all", &versions_s];
            let heads_cmd: [&str; 4] = [exe_s, "--script-location", dir_s, "heads"];
            let history_cmd: [&str; 4] = [exe_s, "--script-location", dir_s, "history"];
            let timings = time_interleaved(&[&floor_cmd, &heads_cmd, &history_cmd], root, runs, 3)?;
            writeln!(
                table,
                "| {label} | floor: open and read every file, one thread | {} / {} | | |",
                ms(timings[0].median),
                ms(timings[0].min)
            )?;
            for (command, ours) in ["heads", "history"].into_iter().zip(&timings[1..]) {
                // Python Alembic on 10,000 revisions takes seconds a run: 1,000 only.
                let theirs = match &python {
                    Some(alembic) if count == 1000 => {
                        let pdir = bench.join(format!("python/{}-{count}", shape.name()));
                        if !pdir.join("alembic/versions").is_dir() {
                            write_python_chain(&pdir, &revs)?;
                        }
                        Some(time(
                            &[alembic.to_str().context("utf-8")?, command],
                            &pdir,
                            5,
                            1,
                        )?)
                    }
                    _ => None,
                };
                let (theirs_s, ratio) = match &theirs {
                    Some(t) => (
                        ms(t.median),
                        format!("{:.0}×", t.median.as_secs_f64() / ours.median.as_secs_f64()),
                    ),
                    None => ("".to_owned(), "".to_owned()),
                };
                writeln!(
                    table,
                    "| {label} | `{command}` | {} / {} | {theirs_s} | {ratio} |",
                    ms(ours.median),
                    ms(ours.min)
                )?;
                eprintln!(
                    "{label:>16} {command:<8} {} (min {}, {} runs) {theirs_s}",
                    ms(ours.median),
                    ms(ours.min),
                    ours.runs
                );
            }
        }
    }

    // The everyday path: inside a cargo workspace, configuration read with
    // `cargo metadata`, and through cargo as `cargo alembic`.
    let ws = bench.join("workspace");
    std::fs::create_dir_all(&ws)?;
    std::fs::write(
        ws.join("Cargo.toml"),
        "[workspace]\nmembers = []\n\n[workspace.metadata.alembic]\nscript_location = \"../chains/branchy-10000\"\n",
    )?;
    let in_ws = time(&[exe_s, "heads"], &ws, runs, 3)?;
    let path = format!(
        "{}:{}",
        Path::new(exe_s).parent().context("a folder")?.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let via_cargo = {
        let start_env = std::env::var("PATH").ok();
        std::env::set_var("PATH", &path);
        let t = time(&["cargo", "alembic", "heads"], &ws, runs.min(20), 2);
        if let Some(p) = start_env {
            std::env::set_var("PATH", p);
        }
        t?
    };
    notes.push(format!(
        "Inside a cargo workspace (the configuration comes from its Cargo.toml), branchy × 10000: `cargo-alembic heads` {} (min {}); \
         through cargo, `cargo alembic heads` {} (min {}).",
        ms(in_ws.median),
        ms(in_ws.min),
        ms(via_cargo.median),
        ms(via_cargo.min)
    ));

    let machine = format!(
        "{}; {runs} runs per cargo-alembic figure after 3 warm-up runs, the floor, `heads` and `history` of a chain interleaved; 5 runs per Python figure; whole processes, wall time.",
        machine_and_date()?
    );
    let mut section = String::new();
    writeln!(section, "{machine}\n")?;
    section.push_str(&table);
    for n in &notes {
        writeln!(section, "\n{n}")?;
    }
    println!("{section}");
    std::fs::write(bench.join("graph.md"), &section)?;
    if write {
        replace_section(&root.join("BENCHMARKS.md"), "graph", &section)?;
        eprintln!("BENCHMARKS.md updated");
    }
    Ok(())
}

/// Applying 1,000 revisions from empty: `psql -1 -f` of the same statements
/// (the floor), cargo-alembic, and Python Alembic, each on a fresh database
/// of one throwaway server, interleaved; then a no-op `upgrade head`.
fn bench_engine(root: &Path, args: &[String]) -> Result<()> {
    use alembic_throwaway::{Choice, Server};
    let BenchOptions {
        runs,
        with_python,
        write,
    } = BenchOptions::parse(args, 10)?;
    let exe_s = release_binary(root)?;
    let bench = root.join("target/bench");
    let count = 1000;
    let revs = chain(Shape::Linear, count);
    let dir = bench.join(format!("chains/linear-{count}"));
    if !dir.join("versions").is_dir() {
        write_sql_chain(&dir, &revs)?;
    }
    let dir_s = dir.to_str().context("utf-8 path")?.to_owned();
    // The same statements for psql, as the chain's files have them: one
    // round trip each (psql's way, the reference), and two floors with
    // none of cargo alembic's bookkeeping, joined by `\;` (psql sends
    // them as one query): 16 to a round trip, as the engine groups
    // revisions, and all in one, the server's own work on them.
    let statement = |n: usize| {
        format!("CREATE TABLE t{n} (\n    id bigint PRIMARY KEY,\n    name text NOT NULL\n)")
    };
    let psql_file = |per: usize| -> Result<PathBuf> {
        let path = bench.join(format!("engine-psql-{per}.sql"));
        let mut sql = String::new();
        for group in revs.chunks(per) {
            let statements: Vec<String> = group.iter().map(|r| statement(r.n)).collect();
            writeln!(sql, "{};", statements.join(" \\;\n"))?;
        }
        std::fs::write(&path, sql)?;
        Ok(path)
    };
    let script = psql_file(1)?;
    // The engine's `GROUP_REVISIONS` (alembic-embed, engine/run.rs).
    const GROUP: usize = 16;
    let floors = [
        (
            format!("psql, the same statements {GROUP} to a round trip, as cargo alembic sends them, without its bookkeeping"),
            psql_file(GROUP)?,
        ),
        (
            "psql, all the statements in one round trip (the server's work alone)".to_owned(),
            psql_file(count)?,
        ),
    ];
    let mut floor_times: Vec<Vec<Duration>> = vec![Vec::new(); floors.len()];
    // `sqlx`, and `cargo-sqlx` beside it for `cargo sqlx`.
    let sqlx = sqlx_cli::binary(&bench)
        .map(|exe| {
            installed_copy(root, &exe.with_file_name("cargo-sqlx"))?;
            installed_copy(root, &exe)
        })
        .transpose()?;
    let sqlx_dir = bench.join(format!("chains/sqlx-linear-{count}"));
    sqlx_cli::write_migrations(&sqlx_dir, count)?;
    let mut sqlx_times = Vec::new();
    let python = if with_python {
        python_alembic(&bench)
    } else {
        None
    };
    let python_ready = match &python {
        Some(alembic) => {
            let pip = alembic.with_file_name("pip");
            Command::new(pip)
                .args(["install", "-q", "psycopg2-binary"])
                .status()
                .is_ok_and(|s| s.success())
        }
        None => false,
    };
    let pdir = bench.join(format!("python-engine/linear-{count}"));
    if python_ready && !pdir.join("alembic/versions").is_dir() {
        write_python_chain(&pdir, &revs)?;
        std::fs::write(
            pdir.join("alembic/env.py"),
            "import os\nfrom alembic import context\nfrom sqlalchemy import create_engine\n\n\
             engine = create_engine(os.environ['ALEMBIC_URL'])\nwith engine.connect() as connection:\n    \
             context.configure(connection=connection, target_metadata=None)\n    with context.begin_transaction():\n        \
             context.run_migrations()\n",
        )?;
    }

    let server = Server::start(Choice::Local).map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("server: {}", server.description());
    // A fresh database for each timed run, after a checkpoint, so that no
    // tool's run starts with the server still settling the last round's
    // dropped databases of 1,000 tables (measured once: psql right after
    // such a drop 1.4 and 1.8 s, after a checkpoint 0.68 s; whichever tool
    // runs first in a round would pay for it).
    let mut admin = postgres::Client::connect(server.admin_url(), postgres::NoTls)?;
    let mut fresh = || -> Result<alembic_throwaway::Database> {
        let db = server.database().map_err(|e| anyhow::anyhow!("{e}"))?;
        admin.batch_execute("CHECKPOINT")?;
        Ok(db)
    };
    let timed = |cmd: &mut Command| -> Result<Duration> {
        let start = Instant::now();
        let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output()?;
        let elapsed = start.elapsed();
        if !out.status.success() {
            bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(elapsed)
    };
    let psql_exe = psql()?;
    let mut psql_times = Vec::new();
    let mut ours = Vec::new();
    let mut ours_per = Vec::new();
    let mut theirs = Vec::new();
    for run in 0..runs {
        let db = fresh()?;
        psql_times.push(timed(
            Command::new(&psql_exe)
                .args([db.url(), "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f"])
                .arg(&script),
        )?);
        for ((_, file), times) in floors.iter().zip(&mut floor_times) {
            let db = fresh()?;
            times.push(timed(
                Command::new(&psql_exe)
                    .args([db.url(), "-X", "-q", "-1", "-v", "ON_ERROR_STOP=1", "-f"])
                    .arg(file),
            )?);
        }
        let db = fresh()?;
        ours.push(timed(Command::new(&exe_s).args([
            "--script-location",
            &dir_s,
            "--database-url",
            db.url(),
            "upgrade",
            "head",
        ]))?);
        let db = fresh()?;
        let mut per = Command::new(&exe_s);
        per.args([
            "--script-location",
            &dir_s,
            "--database-url",
            db.url(),
            "upgrade",
            "head",
            "--transaction-per-migration",
        ]);
        ours_per.push(timed(&mut per)?);
        if let Some(exe) = &sqlx {
            let db = fresh()?;
            sqlx_times.push(timed(&mut sqlx_cli::run(exe, &sqlx_dir, db.url()))?);
        }
        if python_ready && run < 3 {
            let db = fresh()?;
            let url = db
                .url()
                .replacen("postgresql://", "postgresql+psycopg2://", 1);
            let alembic = python.as_ref().context("python")?;
            theirs.push(timed(
                Command::new(alembic)
                    .args(["upgrade", "head"])
                    .current_dir(&pdir)
                    .env("ALEMBIC_URL", url),
            )?);
        }
    }
    // No-op: everything applied, checksums verified.
    let db = fresh()?;
    timed(Command::new(&exe_s).args([
        "--script-location",
        &dir_s,
        "--database-url",
        db.url(),
        "upgrade",
        "head",
    ]))?;
    let noop_cmd = [
        exe_s.as_str(),
        "--script-location",
        dir_s.as_str(),
        "--database-url",
        db.url(),
        "upgrade",
        "head",
    ];
    let heads_cmd = [exe_s.as_str(), "--script-location", dir_s.as_str(), "heads"];
    // Two floors in the same rotation: the same no-op on a chain of one
    // revision (process start, connection and state read, almost no
    // chain), and psql reading the same rows with the statement the
    // engine sends (`Settings::reads_sql`): a C client's connection and
    // read, nothing else.
    let one_dir = bench.join("chains/linear-1");
    if !one_dir.join("versions").is_dir() {
        write_sql_chain(&one_dir, &revs[..1])?;
    }
    let one_s = one_dir.to_str().context("utf-8 path")?.to_owned();
    let one_db = fresh()?;
    let one_cmd = [
        exe_s.as_str(),
        "--script-location",
        one_s.as_str(),
        "--database-url",
        one_db.url(),
        "upgrade",
        "head",
    ];
    timed(Command::new(one_cmd[0]).args(&one_cmd[1..]))?;
    let psql_s = psql_exe.to_str().context("utf-8 path")?.to_owned();
    let read_cmd = [
        psql_s.as_str(),
        "-X",
        "-q",
        "-A",
        "-t",
        "-d",
        db.url(),
        "-c",
        "SELECT NULL, version_num, NULL, NULL, NULL FROM alembic_version UNION ALL \
         SELECT revision, upgrade_checksum, downgrade_checksum, status, error \
         FROM alembic_version_ledger;",
    ];
    // sqlx-cli's no-op on a database it migrated, in the same rotation.
    let sqlx_db = fresh()?;
    let sqlx_noop: Vec<String> = match &sqlx {
        Some(exe) => {
            timed(&mut sqlx_cli::run(exe, &sqlx_dir, sqlx_db.url()))?;
            let c = sqlx_cli::run(exe, &sqlx_dir, sqlx_db.url());
            std::iter::once(c.get_program())
                .chain(c.get_args())
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        }
        None => Vec::new(),
    };
    let sqlx_noop: Vec<&str> = sqlx_noop.iter().map(String::as_str).collect();
    // The same two no-ops through cargo, as users type them (`cargo
    // alembic`, `cargo sqlx`), both programs found on PATH.
    let through_cargo: Vec<Vec<String>> = match &sqlx {
        Some(exe) => {
            let path = format!(
                "PATH={}:{}:{}",
                Path::new(&exe_s).parent().context("a folder")?.display(),
                exe.parent().context("a folder")?.display(),
                std::env::var("PATH").unwrap_or_default()
            );
            let sqlx_dir_s = sqlx_dir.to_string_lossy().into_owned();
            let with = |rest: &[&str]| -> Vec<String> {
                ["env", path.as_str(), "cargo"]
                    .iter()
                    .chain(rest)
                    .map(|s| (*s).to_owned())
                    .collect()
            };
            vec![
                with(&[
                    "alembic",
                    "--script-location",
                    &dir_s,
                    "--database-url",
                    db.url(),
                    "upgrade",
                    "head",
                ]),
                with(&[
                    "sqlx",
                    "migrate",
                    "run",
                    "--source",
                    &sqlx_dir_s,
                    "--database-url",
                    sqlx_db.url(),
                ]),
            ]
        }
        None => Vec::new(),
    };
    let through_cargo: Vec<Vec<&str>> = through_cargo
        .iter()
        .map(|c| c.iter().map(String::as_str).collect())
        .collect();
    // The direct commands in one rotation, the two through cargo in
    // another: a cargo run between two direct ones added 0.5 to 1.2 ms to
    // them (measured), and would weigh on the direct figures.
    let mut cmds: Vec<&[&str]> = vec![&noop_cmd, &heads_cmd, &one_cmd, &read_cmd];
    if !sqlx_noop.is_empty() {
        cmds.push(&sqlx_noop);
    }
    let mut all = time_interleaved(&cmds, root, runs * 5, 3)?;
    let cargo_pair = match through_cargo.as_slice() {
        [ours, theirs] => {
            let mut pair = time_interleaved(&[ours, theirs], root, runs * 5, 3)?;
            Some((pair.remove(0), pair.remove(0)))
        }
        _ => None,
    };
    let sqlx_idle = (all.len() == 5).then(|| all.remove(4));
    let read_only = all.remove(3);
    let one_revision = all.remove(2);
    let load_only = all.remove(1);
    let noop = all.remove(0);

    // Each run's ratio to the psql run just before it, so that the machine's
    // load weighs alike on both; the median of those ratios.
    let paired = |ours: &[Duration]| -> f64 {
        let r: Vec<f64> = ours
            .iter()
            .zip(&psql_times)
            .map(|(o, p)| o.as_secs_f64() / p.as_secs_f64())
            .collect();
        median(&r)
    };
    let (ratio_default, ratio_per) = (paired(&ours), paired(&ours_per));
    let (p, o, op) = (
        summarize(psql_times.clone()),
        summarize(ours),
        summarize(ours_per),
    );
    let ratio = |t: &Timing| t.median.as_secs_f64() / p.median.as_secs_f64();
    let mut section = String::new();
    // Where the server's files are decides much of an apply: each table
    // is files to create (alembic-throwaway puts them in memory when it can).
    let folder = match server.data_dir() {
        Some(d) if d.starts_with("/dev/shm") => "data folder in memory",
        _ => "data folder on disk",
    };
    writeln!(section, "{count} revisions, each creating a table, applied from empty on a fresh database of one throwaway server (local PostgreSQL 15, fsync off, {folder}); {runs} runs each, interleaved; whole processes, wall time; {}.\n", machine_and_date()?)?;
    writeln!(
        section,
        "| what | median | min | × psql (medians) | × psql (paired runs) |"
    )?;
    writeln!(section, "| --- | --- | --- | --- | --- |")?;
    writeln!(
        section,
        "| `psql -1 -f` of the same statements, one round trip each | {} | {} | 1.00 | 1.00 |",
        ms(p.median),
        ms(p.min)
    )?;
    for ((what, _), times) in floors.iter().zip(floor_times) {
        let pair = paired(&times);
        let t = summarize(times);
        writeln!(
            section,
            "| {what} | {} | {} | {:.2} | {pair:.2} |",
            ms(t.median),
            ms(t.min),
            ratio(&t)
        )?;
    }
    writeln!(
        section,
        "| `cargo alembic upgrade head` (one transaction, the default) | {} | {} | {:.2} | {:.2} |",
        ms(o.median),
        ms(o.min),
        ratio(&o),
        ratio_default
    )?;
    writeln!(
        section,
        "| `cargo alembic upgrade head` (`transaction_per_migration`) | {} | {} | {:.2} | {:.2} |",
        ms(op.median),
        ms(op.min),
        ratio(&op),
        ratio_per
    )?;
    if !sqlx_times.is_empty() {
        let ratio_sqlx = paired(&sqlx_times);
        let t = summarize(sqlx_times);
        writeln!(
            section,
            "| sqlx-cli `sqlx migrate run` (the same statements, one migration each) | {} | {} | {:.2} | {:.2} |",
            ms(t.median),
            ms(t.min),
            ratio(&t),
            ratio_sqlx
        )?;
    }
    if !theirs.is_empty() {
        let t = summarize(theirs);
        writeln!(
            section,
            "| Python Alembic 1.20 `alembic upgrade head` ({} runs) | {} | {} | {:.2} | |",
            t.runs,
            ms(t.median),
            ms(t.min),
            ratio(&t)
        )?;
    }
    writeln!(section, "\nNo-op `upgrade head` with all {count} revisions applied and every checksum verified: {} median, {} min ({} runs); of which loading the chain (`heads` alone): {} median.", ms(noop.median), ms(noop.min), noop.runs, ms(load_only.median))?;
    writeln!(section, "Floors in the same rotation: the same no-op on a chain of one revision {} median, {} min; psql reading the same rows with the same statement (a C client connecting and reading, nothing else) {} median, {} min.", ms(one_revision.median), ms(one_revision.min), ms(read_only.median), ms(read_only.min))?;
    if let Some(s) = sqlx_idle {
        writeln!(section, "sqlx-cli's no-op `sqlx migrate run` on a database it migrated, in the same rotation: {} median, {} min; cargo alembic / sqlx-cli (medians): {:.2}.", ms(s.median), ms(s.min), noop.median.as_secs_f64() / s.median.as_secs_f64())?;
    }
    if let Some((ours, theirs)) = cargo_pair {
        writeln!(section, "Through cargo, in a rotation of their own: `cargo alembic upgrade head` {} median, `cargo sqlx migrate run` {} median; cargo alembic / sqlx-cli (medians): {:.2}.", ms(ours.median), ms(theirs.median), ours.median.as_secs_f64() / theirs.median.as_secs_f64())?;
    }
    println!("{section}");
    if write {
        replace_section(&root.join("BENCHMARKS.md"), "engine", &section)?;
        eprintln!("BENCHMARKS.md updated");
    }
    Ok(())
}

/// A 100-revision chain of tables, indexes, views, functions and types,
/// each with an exact downgrade.
fn write_verify_chain(dir: &Path, count: usize) -> Result<()> {
    let versions = dir.join("versions");
    std::fs::create_dir_all(&versions)?;
    for n in 0..count {
        let id = format!("{:012x}", 0xb000_0000_0000u64 + n as u64);
        let down = if n == 0 {
            "None".to_owned()
        } else {
            format!("{:012x}", 0xb000_0000_0000u64 + n as u64 - 1)
        };
        let (up, undo) = match n % 5 {
            0 if n % 20 == 0 => (
                format!("CREATE TYPE mood{n} AS ENUM ('calm', 'busy');\nCREATE TABLE t{n} (id bigint PRIMARY KEY, name text, mood mood{n} NOT NULL DEFAULT 'calm');"),
                format!("DROP TABLE t{n};\nDROP TYPE mood{n};"),
            ),
            1 if n > 1 => (format!("CREATE INDEX t{p}_name_idx ON t{p} (name);", p = n - 1), format!("DROP INDEX t{p}_name_idx;", p = n - 1)),
            2 if n > 2 && n % 10 == 2 => (
                format!("CREATE VIEW v{n} AS SELECT id FROM t{p};\nGRANT SELECT ON v{n} TO PUBLIC;", p = n - 2),
                format!("REVOKE SELECT ON v{n} FROM PUBLIC;\nDROP VIEW v{n};"),
            ),
            3 if n % 15 == 3 => (
                format!("CREATE FUNCTION f{n}(x int) RETURNS int LANGUAGE plpgsql AS $$\nBEGIN\n  RETURN x + {n};\nEND;\n$$;"),
                format!("DROP FUNCTION f{n}(int);"),
            ),
            _ => (
                format!("CREATE TABLE t{n} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());"),
                format!("DROP TABLE t{n};"),
            ),
        };
        std::fs::write(
            versions.join(format!("{id}_step_{n}.sql")),
            format!("-- step {n}\n--\n-- revision: {id}\n-- down_revision: {down}\n\n-- alembic:upgrade\n{up}\n\n-- alembic:downgrade\n{undo}\n"),
        )?;
    }
    Ok(())
}

/// The machine and the day of a run, as each bench's table states them:
/// "2 cores (Intel(R) Xeon(R) Processor), 2026-12-04".
pub(crate) fn machine_and_date() -> Result<String> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    Ok(format!(
        "{} cores ({cpu}), {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        squash::today()?
    ))
}

/// `verify` on a 100-revision chain, cold (a new throwaway server each
/// run), with the time split reported by `verify --format json`.
fn bench_verify(root: &Path, args: &[String]) -> Result<()> {
    let BenchOptions { runs, write, .. } = BenchOptions::parse(args, 5)?;
    let exe = release_binary(root)?;
    let dir = root.join("target/bench/chains/verify-100");
    if !dir.join("versions").is_dir() {
        write_verify_chain(&dir, 100)?;
    }
    let mut rows = Vec::new();
    for _ in 0..runs {
        let start = Instant::now();
        let out = Command::new(&exe)
            .args(["--script-location"])
            .arg(&dir)
            .args(["--format", "json", "verify", "--local"])
            .output()?;
        let wall = start.elapsed();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .with_context(|| String::from_utf8_lossy(&out.stderr).into_owned())?;
        if report["ok"] != true {
            bail!(
                "verify failed on the benchmark chain: {}",
                report["problems"]
            );
        }
        rows.push((wall, report["run"]["timings"].clone()));
    }
    rows.sort_by_key(|r| r.0);
    let (wall, t) = &rows[rows.len() / 2];
    let get = |k: &str| t[k].as_u64().unwrap_or(0);
    let section = format!(
        "`cargo alembic verify --local` on 100 revisions (tables, indexes, views with grants, functions, enum types), cold: a new throwaway server each run; median of {runs} runs by wall time; {}.\n\n| phase | time |\n| --- | --- |\n| whole process (wall) | {} |\n| throwaway server start and database | {} ms |\n| stairway (300 revision steps: upgrade, downgrade, upgrade again; two halves at once) | {} ms |\n| {} schema snapshots, the two halves' time added up | {} ms ({:.1} ms each) |\n| static checks | {} ms |\n",
        machine_and_date()?,
        ms(*wall),
        get("server_ms"),
        get("stairway_ms"),
        get("snapshots"),
        get("snapshot_ms"),
        get("snapshot_ms") as f64 / get("snapshots").max(1) as f64,
        get("static_ms")
    );
    println!("{section}");
    if write {
        replace_section(&root.join("BENCHMARKS.md"), "verify", &section)?;
    }
    Ok(())
}

/// Opens and reads every file of a folder in one thread, nothing else: what
/// loading a chain costs before any parsing, on this machine, right now.
fn read_all(dir: &Path) -> Result<()> {
    use std::io::Read;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0usize;
    for entry in std::fs::read_dir(dir)? {
        let mut file = std::fs::File::open(entry?.path())?;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            total += n;
        }
    }
    std::hint::black_box(total);
    Ok(())
}

/// Replaces the text between `<!-- bench:NAME:start -->` and `<!-- bench:NAME:end -->`.
fn replace_section(file: &Path, name: &str, body: &str) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let (start, end) = (
        format!("<!-- bench:{name}:start -->"),
        format!("<!-- bench:{name}:end -->"),
    );
    let a = text
        .find(&start)
        .with_context(|| format!("{start} not in {}", file.display()))?
        + start.len();
    let b = text
        .find(&end)
        .with_context(|| format!("{end} not in {}", file.display()))?;
    let new = format!("{}\n{}\n{}", &text[..a], body.trim_end(), &text[b..]);
    std::fs::write(file, new)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two runs of a bench reported the slower of the two as the median.
    #[test]
    fn an_even_number_of_figures_has_the_mean_of_the_middle_two_as_median() {
        assert_eq!(median(&[1.10, 1.04]), 1.07);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(
            median_duration(&[Duration::from_millis(10), Duration::from_millis(20)]),
            Duration::from_millis(15)
        );
        assert_eq!(
            summarize(vec![Duration::from_secs(4), Duration::from_secs(2)]).median,
            Duration::from_secs(3)
        );
    }
}
