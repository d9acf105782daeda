//! `cargo xtask bench embed`: a binary carrying 1,000 embedded revisions,
//! side by side with the same 1,000 migrations under `sqlx::migrate!`.
//!
//! - Startup check: each binary connects, then times its first
//!   "upgrade to head" over a database where all 1,000 are applied
//!   (building the chain, locking, reading, verifying every checksum).
//! - Build cost: after touching one of the 1,000 files, `cargo build`
//!   (dev and release) of each project, interleaved.
//!
//! Both projects live in `target/bench/embed/` with a build script that
//! watches the migrations folder, and their own target folders.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{chain, ms, replace_section, summarize, write_sql_chain, BenchOptions, Shape};

const COUNT: usize = 1000;
/// The file touched before each incremental build.
const TOUCHED: usize = 500;

struct Project {
    name: &'static str,
    dir: PathBuf,
    /// Its lock file is the workspace's: nothing to fetch.
    offline: bool,
    /// The migration file touched before a rebuild.
    touched: PathBuf,
}

impl Project {
    fn build(&self, release: bool) -> Result<Duration> {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.arg("build").arg("--quiet").current_dir(&self.dir);
        if self.offline {
            cmd.arg("--offline");
        }
        if release {
            cmd.arg("--release");
        }
        let start = Instant::now();
        let out = cmd.stderr(Stdio::piped()).output()?;
        let elapsed = start.elapsed();
        if !out.status.success() {
            bail!(
                "building {} failed: {}",
                self.dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(elapsed)
    }

    fn binary(&self, release: bool) -> PathBuf {
        self.dir
            .join("target")
            .join(if release { "release" } else { "debug" })
            .join("bench-service")
    }

    /// Rewrites the touched file unchanged: a new modification time, as an
    /// editor's save gives.
    fn touch(&self) -> Result<()> {
        let text = std::fs::read(&self.touched)?;
        std::fs::write(&self.touched, text)?;
        Ok(())
    }

    /// Runs the binary once; it prints the milliseconds of its startup check.
    fn startup(&self, url: &str) -> Result<(f64, Duration)> {
        let start = Instant::now();
        let out = Command::new(self.binary(true))
            .env("DATABASE_URL", url)
            .output()?;
        let wall = start.elapsed();
        if !out.status.success() {
            bail!(
                "{} failed: {}",
                self.name,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let ms: f64 = text
            .split_whitespace()
            .next()
            .context("a duration")?
            .parse()?;
        Ok((ms, wall))
    }
}

fn ours(root: &Path, dir: &Path) -> Result<Project> {
    let migrations = dir.join("migrations");
    if !migrations.join("versions").is_dir() {
        write_sql_chain(&migrations, &chain(Shape::Linear, COUNT))?;
    }
    let manifest = format!(
        "[package]\nname = \"bench-service\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n\n\
         [dependencies]\nalembic-embed = {{ path = {:?} }}\n\n[profile.release]\ndebug = \"line-tables-only\"\n",
        root.join("alembic-embed").display().to_string()
    );
    let main = r#"alembic_embed::embed_migrations!("migrations");

fn main() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let mut client = alembic_embed::tls::connect(&url).expect("connect");
    let start = std::time::Instant::now();
    let report = migrations::runner().upgrade(&mut client).expect("upgrade");
    println!("{} {}", start.elapsed().as_secs_f64() * 1000.0, report.steps.len());
}
"#;
    write_project(dir, &manifest, main)?;
    if !dir.join("Cargo.lock").is_file() {
        std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock"))?;
    }
    let touched = std::fs::read_dir(migrations.join("versions"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().ends_with(&format!("_t{TOUCHED}.sql")))
        })
        .context("the touched revision")?;
    Ok(Project {
        name: "alembic-embed",
        dir: dir.to_owned(),
        offline: true,
        touched,
    })
}

fn sqlx(dir: &Path) -> Result<Project> {
    let migrations = dir.join("migrations");
    if !migrations.is_dir() {
        std::fs::create_dir_all(&migrations)?;
        for n in 0..COUNT {
            std::fs::write(
                migrations.join(format!("{:04}_create_table_t{n}.sql", n + 1)),
                format!("-- create table t{n}\nCREATE TABLE t{n} (\n    id bigint PRIMARY KEY,\n    name text NOT NULL\n);\n"),
            )?;
        }
    }
    let manifest = "[package]\nname = \"bench-service\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n\n\
         [dependencies]\nsqlx = { version = \"0.8\", default-features = false, features = [\"postgres\", \"runtime-tokio\", \"tls-rustls\", \"migrate\", \"macros\"] }\n\
         tokio = { version = \"1\", features = [\"rt\", \"macros\"] }\n\n[profile.release]\ndebug = \"line-tables-only\"\n";
    let main = r#"#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect(&url)
        .await
        .expect("connect");
    let start = std::time::Instant::now();
    sqlx::migrate!("./migrations").run(&pool).await.expect("migrate");
    println!("{} 0", start.elapsed().as_secs_f64() * 1000.0);
}
"#;
    write_project(dir, manifest, main)?;
    Ok(Project {
        name: "sqlx 0.8",
        dir: dir.to_owned(),
        offline: false,
        touched: migrations.join(format!("{:04}_create_table_t{TOUCHED}.sql", TOUCHED + 1)),
    })
}

/// What the megabytes of a release binary are: its symbols' sizes (`nm`),
/// by the crate at the head of each demangled name (a generic function is
/// counted under the crate that defines it), the largest first.
fn size_by_crate(name: &str, binary: &Path) -> Result<String> {
    let out = Command::new("nm")
        .args(["--size-sort", "-S", "-C"])
        .arg(binary)
        .output()?;
    if !out.status.success() {
        bail!("nm {} failed", binary.display());
    }
    let mut sizes: std::collections::HashMap<String, u64> = Default::default();
    let mut total = 0;
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut parts = line.splitn(4, ' ');
        let (_, size, _, symbol) = (parts.next(), parts.next(), parts.next(), parts.next());
        let (Some(size), Some(symbol)) = (size, symbol) else {
            continue;
        };
        let Ok(size) = u64::from_str_radix(size, 16) else {
            continue;
        };
        let path = symbol
            .trim_start_matches(['<', '&', '*', ' '])
            .trim_start_matches("dyn ");
        let krate = match path.split_once("::") {
            Some((head, _)) if !head.contains([' ', '(', '.']) => head.to_owned(),
            _ => "(C and unnamed)".to_owned(),
        };
        *sizes.entry(krate).or_default() += size;
        total += size;
    }
    let mut sorted: Vec<(String, u64)> = sizes.into_iter().collect();
    sorted.sort_by_key(|e| std::cmp::Reverse(e.1));
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let top: Vec<String> = sorted
        .iter()
        .take(10)
        .map(|(k, b)| format!("{k} {:.2}", mib(*b)))
        .collect();
    Ok(format!(
        "{name}: {:.2} MiB of symbols; the largest, in MiB: {}.",
        mib(total),
        top.join(", ")
    ))
}

pub(crate) fn write_project(dir: &Path, manifest: &str, main: &str) -> Result<()> {
    std::fs::create_dir_all(dir.join("src"))?;
    // Unchanged files keep their times, so that a rerun starts warm.
    let write = |path: PathBuf, text: &str| -> Result<()> {
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            std::fs::write(path, text)?;
        }
        Ok(())
    };
    write(dir.join("Cargo.toml"), manifest)?;
    write(dir.join("src/main.rs"), main)?;
    write(
        dir.join("build.rs"),
        "fn main() {\n    println!(\"cargo::rerun-if-changed=migrations\");\n}\n",
    )?;
    Ok(())
}

pub(crate) fn bench_embed(root: &Path, args: &[String]) -> Result<()> {
    use alembic_throwaway::{Choice, Server};
    let BenchOptions { runs, write, .. } = BenchOptions::parse(args, 5)?;
    let with_sqlx = !args.iter().any(|a| a == "--no-sqlx");
    let bench = root.join("target/bench/embed");
    let mut projects = vec![ours(root, &bench.join("alembic-embed"))?];
    if with_sqlx {
        projects.push(sqlx(&bench.join("sqlx"))?);
    }
    for p in &projects {
        for release in [false, true] {
            eprintln!(
                "building {} ({})",
                p.name,
                if release { "release" } else { "dev" }
            );
            p.build(release)?;
        }
    }

    // Build cost: touch one file, rebuild; interleaved.
    let mut builds: Vec<[Vec<Duration>; 2]> =
        projects.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    for run in 0..runs {
        for (p, times) in projects.iter().zip(&mut builds) {
            for (k, release) in [false, true].into_iter().enumerate() {
                p.touch()?;
                times[k].push(p.build(release)?);
            }
        }
        eprintln!("build run {}/{runs}", run + 1);
    }
    // Release binaries, stripped (the projects keep line tables, as this
    // workspace does).
    let sizes: Vec<u64> = projects
        .iter()
        .map(|p| {
            let stripped = bench.join(format!(
                "{}.stripped",
                p.dir.file_name().unwrap_or_default().to_string_lossy()
            ));
            let ok = Command::new("strip")
                .arg("-o")
                .arg(&stripped)
                .arg(p.binary(true))
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                std::fs::metadata(&stripped).map_or(0, |m| m.len())
            } else {
                0
            }
        })
        .collect();

    // Startup check over a database with everything applied.
    let server = Server::start(Choice::Local).map_err(|e| anyhow::anyhow!("{e}"))?;
    eprintln!("server: {}", server.description());
    let mut startups = Vec::new();
    for p in &projects {
        let db = server.database().map_err(|e| anyhow::anyhow!("{e}"))?;
        p.startup(db.url())?; // applies the 1,000
        startups.push((db, Vec::new(), Vec::new()));
    }
    let samples = 30;
    for _ in 0..samples {
        for (p, (db, checks, walls)) in projects.iter().zip(&mut startups) {
            let (check, wall) = p.startup(db.url())?;
            checks.push(Duration::from_secs_f64(check / 1000.0));
            walls.push(wall);
        }
    }

    // Paired: sample i of each binary ran one after the other.
    let paired = match startups.as_slice() {
        [(_, ours, _), (_, theirs, _), ..] => {
            let r: Vec<f64> = ours
                .iter()
                .zip(theirs)
                .map(|(a, b)| a.as_secs_f64() / b.as_secs_f64())
                .collect();
            Some(crate::median(&r))
        }
        _ => None,
    };
    let mut section = String::new();
    writeln!(
        section,
        "A service binary embedding {COUNT} revisions (one `CREATE TABLE` each), beside `sqlx::migrate!` on the same {COUNT} \
         migrations; both projects have a build script watching the folder. Measured side by side, interleaved, in one run; {}.\n",
        crate::machine_and_date()?
    )?;
    writeln!(
        section,
        "| | startup check, all applied (median / min of {samples}) | whole process | incremental dev build (median / min of {runs}) | incremental release build | release binary, stripped |\n| --- | --- | --- | --- | --- | --- |"
    )?;
    for (((p, times), (_, checks, walls)), size) in
        projects.iter().zip(builds).zip(startups).zip(&sizes)
    {
        let [dev, release] = times;
        let (dev, release) = (summarize(dev), summarize(release));
        let (check, wall) = (summarize(checks), summarize(walls));
        writeln!(
            section,
            "| {} | {} / {} | {} | {:.1} s / {:.1} s | {:.1} s / {:.1} s | {:.1} MiB |",
            p.name,
            ms(check.median),
            ms(check.min),
            ms(wall.median),
            dev.median.as_secs_f64(),
            dev.min.as_secs_f64(),
            release.median.as_secs_f64(),
            release.min.as_secs_f64(),
            *size as f64 / (1024.0 * 1024.0)
        )?;
    }
    writeln!(
        section,
        "\nStartup check: from an open connection to \"up to date\": alembic-embed reads the version table and the ledger in \
         one statement and compares all {COUNT} revisions' checksums, upgrade and downgrade, with the binary's (with nothing \
         to do, it takes no lock and builds no graph); sqlx takes its lock, reads `_sqlx_migrations` and compares its \
         checksums. Both run on a new connection, whose first queries load the server's catalog caches. \
         Build: the time of `cargo build` after one migration file was saved unchanged. Both binaries carry a TLS stack \
         (rustls with ring; sqlx with `tls-rustls`)."
    )?;
    if let Some(r) = paired {
        writeln!(
            section,
            "\nStartup check, paired (each sample of alembic-embed over the sqlx sample beside it), median of {samples}: {r:.2}×."
        )?;
    }
    for p in &projects {
        writeln!(section, "\n{}", size_by_crate(p.name, &p.binary(true))?)?;
    }
    println!("{section}");
    if write {
        replace_section(&root.join("BENCHMARKS.md"), "embed", &section)?;
        eprintln!("BENCHMARKS.md updated");
    }
    Ok(())
}
