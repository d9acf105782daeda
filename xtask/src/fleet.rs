//! `cargo xtask bench fleet [--schemas N] [--databases M] [--signups K]`:
//! one chain of 20 revisions on N tenant schemas (default 1,000) and on M
//! databases (default 100) of one local server: `cargo alembic upgrade
//! head --each-schema` / `--each-database` beside the way users do it
//! today, a shell loop calling `cargo alembic upgrade head` once per
//! target; the server's floor (the same SQL through `psql`, one session per
//! worker); the deploy that follows, with nothing to apply, both ways; and
//! the embedded sign-up path, `runner().schema(..).upgrade(..)` of K new
//! tenants (default 200) from a release binary.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use crate::embed::write_project;
use crate::{
    chain, python_alembic, release_binary, replace_section, write_python_chain, write_sql_chain,
    Shape,
};

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

/// What the parts of the benchmark share: the release binary, the chain,
/// one local server.
struct Bench {
    exe: String,
    dir: std::path::PathBuf,
    chain_dir: std::path::PathBuf,
    jobs: usize,
    server: alembic_throwaway::Server,
}

impl Bench {
    /// `cargo alembic` on the chain, with `DATABASE_URL`.
    fn cli(&self, url: &str) -> Command {
        let mut c = Command::new(&self.exe);
        c.args(["alembic", "--script-location"])
            .arg(&self.chain_dir)
            .env("DATABASE_URL", url);
        c
    }

    /// `upgrade head` over a fleet (`--each-schema` or `--each-database`).
    fn fleet(&self, url: &str, each: &str, pattern: &str) -> Result<Duration> {
        let jobs = self.jobs.to_string();
        run(self
            .cli(url)
            .args(["upgrade", "head", each, pattern, "-j", &jobs]))
    }

    fn database(&self) -> Result<alembic_throwaway::Database> {
        self.server.database().map_err(|e| anyhow!("{e}"))
    }

    /// Tenant schemas: the first migration (fleet, floor, loop), then the
    /// next deploy with nothing to apply (three interleaved pairs, the
    /// median of each side: one pair is seconds long on a shared machine).
    fn tenants(&self, schemas: usize) -> Result<Vec<Row>> {
        let (fleet_db, loop_db, floor_db) = (self.database()?, self.database()?, self.database()?);
        let create: String = (0..schemas)
            .map(|i| format!("CREATE SCHEMA tenant_{i:05};"))
            .collect();
        for db in [&fleet_db, &loop_db, &floor_db] {
            sql(db.url(), &create)?;
        }
        eprintln!("{schemas} schemas: fleet");
        let fleet = self.fleet(fleet_db.url(), "--each-schema", "tenant\\_%")?;
        eprintln!("{schemas} schemas: the server's floor");
        let floor = floor(
            &self.dir,
            &self.chain_dir,
            floor_db.url(),
            schemas,
            self.jobs,
        )?;
        eprintln!("{schemas} schemas: shell loop");
        // The throwaway URL may hold a query already (`sslmode=disable`).
        let tenant_url = |i: usize| {
            let url = loop_db.url();
            let join = if url.contains('?') { '&' } else { '?' };
            format!("{url}{join}options=-csearch_path%3Dtenant_{i:05}")
        };
        let each = || -> Result<Duration> {
            let start = Instant::now();
            for i in 0..schemas {
                run(self.cli(&tenant_url(i)).args(["upgrade", "head"]))?;
            }
            Ok(start.elapsed())
        };
        let first = Row {
            label: format!("{schemas} tenant schemas × {REVISIONS} revisions"),
            n: schemas,
            fleet,
            looped: each()?,
            floor: Some(floor),
        };
        eprintln!("{schemas} schemas: the next deploy, nothing to apply (3 pairs)");
        let (mut fleets, mut loops) = (Vec::new(), Vec::new());
        for _ in 0..3 {
            fleets.push(self.fleet(fleet_db.url(), "--each-schema", "tenant\\_%")?);
            loops.push(each()?);
        }
        fleets.sort();
        loops.sort();
        let again = Row {
            label: format!(
                "{schemas} tenant schemas, nothing to apply (the next deploy; median of 3 pairs)"
            ),
            n: schemas,
            fleet: fleets[1],
            looped: loops[1],
            floor: None,
        };
        Ok(vec![first, again])
    }

    /// Databases on the server: the fleet beside the loop.
    fn databases(&self, databases: usize) -> Result<Row> {
        let admin = self.database()?;
        let mut c = postgres::Client::connect(admin.url(), postgres::NoTls)?;
        for prefix in ["fleetdb", "loopdb"] {
            for i in 0..databases {
                c.batch_execute(&format!("CREATE DATABASE {prefix}_{i:04}"))?;
            }
        }
        eprintln!("{databases} databases: fleet");
        let fleet = self.fleet(admin.url(), "--each-database", "fleetdb\\_%")?;
        eprintln!("{databases} databases: shell loop");
        let start = Instant::now();
        for i in 0..databases {
            run(self
                .cli(&other(admin.url(), &format!("loopdb_{i:04}")))
                .args(["upgrade", "head"]))?;
        }
        Ok(Row {
            label: format!("{databases} databases × {REVISIONS} revisions"),
            n: databases,
            fleet,
            looped: start.elapsed(),
            floor: None,
        })
    }
}

pub(crate) fn bench_fleet(root: &Path, args: &[String]) -> Result<()> {
    use alembic_throwaway::{Choice, Server};
    let write = args.iter().any(|a| a == "--write");
    let dir = root.join("target/bench/fleet");
    let chain_dir = dir.join("chain");
    if !chain_dir.join("versions").is_dir() {
        write_sql_chain(&chain_dir, &chain(Shape::Linear, REVISIONS))?;
    }
    let bench = Bench {
        exe: release_binary(root)?,
        dir,
        chain_dir,
        jobs: flag(args, "-j", 4)?,
        server: Server::start(Choice::Local).map_err(|e| anyhow!("{e}"))?,
    };
    let mut rows = bench.tenants(flag(args, "--schemas", 1000)?)?;
    rows.push(bench.databases(flag(args, "--databases", 100)?)?);
    let python_tenants = flag(args, "--python-schemas", 100)?;
    let python = if python_tenants > 0 {
        eprintln!("{python_tenants} schemas: Python Alembic's per-tenant loop");
        python_loop(root, &bench.dir, &bench.server, python_tenants)?
            .map(|took| (python_tenants, took))
    } else {
        None
    };
    let signups = flag(args, "--signups", 200)?;
    eprintln!("{signups} sign-ups: the embedded per-schema upgrade");
    let signup_db = bench.database()?;
    let signup = signup(root, &bench.dir, &bench.chain_dir, signup_db.url(), signups)?;
    let section = section(bench.jobs, &rows, python, &signup)?;
    print!("{section}");
    if write {
        replace_section(&root.join("BENCHMARKS.md"), "fleet", &section)?;
    }
    Ok(())
}

/// The BENCHMARKS.md section: the table, Python Alembic's loop, the
/// sign-up.
fn section(
    jobs: usize,
    rows: &[Row],
    python: Option<(usize, Duration)>,
    signup: &Signup,
) -> Result<String> {
    let mut section = String::new();
    writeln!(
        section,
        "One local PostgreSQL 15 server, 2 cores. `cargo alembic upgrade head --each-schema/--each-database -j {jobs}` \
         beside a shell loop calling `cargo alembic upgrade head` once per target (a tenant through \
         `options=-csearch_path=...` in its URL), in one run. The floor is the server's own work: the same \
         statements and Alembic's version table through `psql`, {jobs} sessions each taking a share of the \
         tenants, one transaction per tenant, no ledger, no lock, no check.\n"
    )?;
    writeln!(section, "| fleet | `cargo alembic` fleet | shell loop | targets/s (fleet / loop) | speed-up | the server's floor |\n| --- | --- | --- | --- | --- | --- |")?;
    for row in rows {
        let floor = row.floor.map_or("".to_owned(), |f| {
            format!(
                "{:.1} s (fleet / floor {:.2}×)",
                f.as_secs_f64(),
                row.fleet.as_secs_f64() / f.as_secs_f64()
            )
        });
        writeln!(
            section,
            "| {} | {:.1} s | {:.1} s | {:.0} / {:.0} | {:.1}× | {floor} |",
            row.label,
            row.fleet.as_secs_f64(),
            row.looped.as_secs_f64(),
            row.n as f64 / row.fleet.as_secs_f64(),
            row.n as f64 / row.looped.as_secs_f64(),
            row.looped.as_secs_f64() / row.fleet.as_secs_f64()
        )?;
    }
    if let Some((tenants, took)) = python {
        let fleet_rate = rows[0].n as f64 / rows[0].fleet.as_secs_f64();
        let rate = tenants as f64 / took.as_secs_f64();
        writeln!(
            section,
            "\nPython Alembic 1.20 the way its cookbook migrates tenant schemas, one `alembic -x tenant=NAME \
             upgrade head` a tenant (an `env.py` that sets `search_path` and `version_table_schema`), on \
             {tenants} of the tenants in the same run: {:.1} s, {rate:.1} tenants/s; the fleet's \
             {fleet_rate:.0} tenants/s is {:.0}× that.",
            took.as_secs_f64(),
            fleet_rate / rate
        )?;
    }
    let p90 = |v: &[f64]| v[v.len() * 9 / 10];
    let max = |v: &[f64]| v[v.len() - 1];
    let s = signup;
    writeln!(
        section,
        "\nThe embedded sign-up path, `migrations::runner().schema(name).upgrade(&mut client)` on one open \
         connection (release build), {} new tenants one after another, {REVISIONS} revisions each, each paired \
         with the server's floor for the same work on the same connection (the statements and Alembic's \
         version table in one transaction, one round trip, no ledger, no lock):\n\n\
         | sign-up of one tenant | median | p90 | max |\n| --- | --- | --- | --- |\n\
         | `runner().schema(..).upgrade(..)` | {:.1} ms | {:.1} ms | {:.1} ms |\n\
         | the server's floor | {:.1} ms | {:.1} ms | {:.1} ms |\n\
         | paired ratio, ours / floor | {:.2}× | {:.2}× | {:.2}× |",
        s.ours.len(),
        crate::median(&s.ours),
        p90(&s.ours),
        max(&s.ours),
        crate::median(&s.floor),
        p90(&s.floor),
        max(&s.floor),
        crate::median(&s.ratios),
        p90(&s.ratios),
        max(&s.ratios),
    )?;
    Ok(section)
}

/// Python Alembic's cookbook recipe for tenant schemas: one process a
/// tenant, `-x tenant=NAME`. `None` when Python Alembic cannot be installed.
fn python_loop(
    root: &Path,
    dir: &Path,
    server: &alembic_throwaway::Server,
    tenants: usize,
) -> Result<Option<Duration>> {
    let bench = root.join("target/bench");
    let Some(alembic) = python_alembic(&bench) else {
        eprintln!("Python Alembic is not available: its loop is left out");
        return Ok(None);
    };
    let pip = alembic.with_file_name("pip");
    if !Command::new(pip)
        .args(["install", "-q", "psycopg2-binary"])
        .status()
        .is_ok_and(|s| s.success())
    {
        return Ok(None);
    }
    let project = dir.join("python");
    if !project.join("alembic/versions").is_dir() {
        write_python_chain(&project, &chain(Shape::Linear, REVISIONS))?;
    }
    std::fs::write(
        project.join("alembic/env.py"),
        "import os\nfrom alembic import context\nfrom sqlalchemy import create_engine, text\n\n\
         tenant = context.get_x_argument(as_dictionary=True)['tenant']\n\
         engine = create_engine(os.environ['ALEMBIC_URL'])\n\
         with engine.connect() as connection:\n    \
         connection.execute(text('SET search_path TO \"%s\"' % tenant))\n    connection.commit()\n    \
         connection.dialect.default_schema_name = tenant\n    \
         context.configure(connection=connection, target_metadata=None, version_table_schema=tenant)\n    \
         with context.begin_transaction():\n        context.run_migrations()\n",
    )?;
    let db = server.database().map_err(|e| anyhow!("{e}"))?;
    let create: String = (0..tenants)
        .map(|i| format!("CREATE SCHEMA tenant_{i:05};"))
        .collect();
    sql(db.url(), &create)?;
    let url = format!(
        "postgresql+psycopg2://{}",
        db.url()
            .split_once("://")
            .map_or(db.url(), |(_, rest)| rest)
    );
    let start = Instant::now();
    for i in 0..tenants {
        run(Command::new(&alembic)
            .args(["-x", &format!("tenant=tenant_{i:05}"), "upgrade", "head"])
            .current_dir(&project)
            .env("ALEMBIC_URL", &url))?;
    }
    let took = start.elapsed();
    let applied: usize = {
        let mut c = postgres::Client::connect(db.url(), postgres::NoTls)?;
        c.query_one(
            "SELECT count(*)::int FROM pg_tables WHERE tablename = 't19'",
            &[],
        )?
        .get::<_, i32>(0)
        .try_into()?
    };
    if applied != tenants {
        bail!("Python Alembic migrated {applied} of {tenants} tenants");
    }
    Ok(Some(took))
}

/// One row of the table.
struct Row {
    label: String,
    n: usize,
    fleet: Duration,
    looped: Duration,
    floor: Option<Duration>,
}

/// The upgrade statements of the chain's files, in order.
pub(crate) fn chain_sql(chain_dir: &Path) -> Result<String> {
    let mut files: Vec<_> = std::fs::read_dir(chain_dir.join("versions"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut sql = String::new();
    for file in files {
        let text = std::fs::read_to_string(&file)?;
        let upgrade = text
            .split_once("-- alembic:upgrade\n")
            .and_then(|(_, rest)| rest.split("-- alembic:downgrade").next())
            .ok_or_else(|| anyhow!("{}: no upgrade section", file.display()))?;
        sql.push_str(upgrade);
    }
    Ok(sql)
}

/// The server's floor: each tenant's statements and Alembic's version
/// table in one transaction, through `psql`, `jobs` sessions at once.
fn floor(dir: &Path, chain_dir: &Path, url: &str, schemas: usize, jobs: usize) -> Result<Duration> {
    let body = chain_sql(chain_dir)?;
    let mut parts = vec![String::new(); jobs];
    for i in 0..schemas {
        write!(
            parts[i % jobs],
            "BEGIN;\nSET LOCAL search_path TO tenant_{i:05};\n\
             CREATE TABLE alembic_version (version_num varchar(32) NOT NULL, \
             CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));\n{body}\
             INSERT INTO alembic_version VALUES ('a00000000019');\nCOMMIT;\n"
        )?;
    }
    let mut files = Vec::new();
    for (k, part) in parts.iter().enumerate() {
        let file = dir.join(format!("floor-{k}.sql"));
        std::fs::write(&file, part)?;
        files.push(file);
    }
    let psql = crate::psql()?;
    let start = Instant::now();
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            Command::new(&psql)
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f"])
                .arg(f)
                .stdout(std::process::Stdio::null())
                .spawn()
        })
        .collect::<Result<_, _>>()?;
    for mut child in children {
        if !child.wait()?.success() {
            bail!("psql failed on the floor's script");
        }
    }
    Ok(start.elapsed())
}

/// The embedded sign-up: a release binary with the chain embedded creates
/// `count` schemas and times `runner().schema(..).upgrade(..)` for each, on
/// one connection. Milliseconds, sorted.
fn signup(root: &Path, dir: &Path, chain_dir: &Path, url: &str, count: usize) -> Result<Signup> {
    let project = dir.join("signup");
    let versions = project.join("chain/versions");
    if !versions.is_dir() {
        std::fs::create_dir_all(&versions)?;
        for entry in std::fs::read_dir(chain_dir.join("versions"))? {
            let path = entry?.path();
            std::fs::copy(&path, versions.join(path.file_name().unwrap_or_default()))?;
        }
    }
    let manifest = format!(
        "[package]\nname = \"bench-signup\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[workspace]\n\n\
         [dependencies]\nalembic-embed = {{ path = {:?} }}\n",
        root.join("alembic-embed").display().to_string()
    );
    let main = r#"alembic_embed::embed_migrations!("chain");

/// Each new tenant: the embedded upgrade of one schema, then the server's
/// floor for the same work (the statements and Alembic's version table in
/// one transaction, one round trip) in a twin schema, on one connection.
fn main() {
    let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let count: usize = std::env::args().nth(1).expect("count").parse().expect("a number");
    let body = std::env::var("FLOOR_SQL").expect("FLOOR_SQL");
    let mut client = alembic_embed::tls::connect(&url).expect("connect");
    for i in 0..count {
        let schema = format!("signup_{i:05}");
        client
            .batch_execute(&format!("CREATE SCHEMA {schema}; CREATE SCHEMA floor_{i:05}"))
            .expect("create schemas");
        let start = std::time::Instant::now();
        let report = migrations::runner().schema(schema).upgrade(&mut client).expect("upgrade");
        let ours = start.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(report.steps.len(), 20);
        let start = std::time::Instant::now();
        client
            .batch_execute(&format!(
                "BEGIN; SET LOCAL search_path TO floor_{i:05}; CREATE TABLE alembic_version \
                 (version_num varchar(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)); \
                 {body} INSERT INTO alembic_version VALUES ('a00000000019'); COMMIT"
            ))
            .expect("floor");
        println!("{ours} {}", start.elapsed().as_secs_f64() * 1000.0);
    }
}
"#;
    write_project(&project, &manifest, main)?;
    std::fs::copy(root.join("Cargo.lock"), project.join("Cargo.lock"))?;
    // The workspace's target folder: its release dependencies are reused.
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "--offline", "--target-dir"])
        .arg(root.join("target"))
        .current_dir(&project)
        .status()?;
    if !status.success() {
        bail!("building the sign-up binary failed");
    }
    let out = Command::new(root.join("target/release/bench-signup"))
        .arg(count.to_string())
        .env("DATABASE_URL", url)
        .env("FLOOR_SQL", chain_sql(chain_dir)?)
        .output()?;
    if !out.status.success() {
        bail!(
            "the sign-up binary failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut signup = Signup::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let (ours, floor) = line.split_once(' ').ok_or_else(|| anyhow!("{line}"))?;
        let (ours, floor): (f64, f64) = (ours.parse()?, floor.parse()?);
        signup.ours.push(ours);
        signup.floor.push(floor);
        signup.ratios.push(ours / floor);
    }
    if signup.ours.is_empty() {
        bail!("no sign-up was timed");
    }
    for list in [&mut signup.ours, &mut signup.floor, &mut signup.ratios] {
        list.sort_by(f64::total_cmp);
    }
    Ok(signup)
}

/// Sign-up times in milliseconds, sorted, and the paired ratios to the
/// floor.
#[derive(Default)]
struct Signup {
    ours: Vec<f64>,
    floor: Vec<f64>,
    ratios: Vec<f64>,
}
