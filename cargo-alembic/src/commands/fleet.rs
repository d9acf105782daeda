//! Fleets: one command on many targets, `-j N` at a time, one line per
//! target as it finishes and a summary. A target is a database (the URL's,
//! each database matching `--each-database`, or each line of `--targets`)
//! and, with `--each-schema`, each matching schema in it: a tenant, whose
//! version table and ledger live in its schema and whose revisions run with
//! `search_path` set to it. Each target takes its own advisory lock, as a
//! single migrator does, so a fleet run and any other migrator never
//! collide.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use alembic_chain::RevisionMap;
use alembic_embed::cli_engine::commands::{
    self, ChainSource, CommandError, CurrentView, Database, Output, Ran,
};
use alembic_embed::{EngineError, Report, Step};
use serde::Serialize;

use crate::args::{Command, FleetArgs, Format};
use crate::errors::CliError;
use crate::output::{emit, escape, print, to_json, xml};
use crate::Ctx;

/// One database, or one tenant schema in it.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    name: String,
    url: String,
    schema: Option<String>,
}

/// The chain, loaded once for every target.
struct Loaded<'a>(&'a RevisionMap);

impl<'a> ChainSource for Loaded<'a> {
    type Map = &'a RevisionMap;

    fn load(&self) -> Result<&'a RevisionMap, CommandError> {
        Ok(self.0)
    }
}

/// What one target's command outcomes, kept for its line.
#[derive(Default)]
struct Capture {
    report: Option<Report>,
    current: Option<Vec<String>>,
    steps: usize,
}

impl Output for Capture {
    fn text(&mut self, _text: &str) -> Result<(), CommandError> {
        Ok(())
    }

    fn note(&mut self, _line: &str) {}

    fn step(&mut self, _step: &Step) {
        self.steps += 1;
    }

    fn report(
        &mut self,
        report: &Report,
        _ran: Ran,
        _tag: Option<&str>,
    ) -> Result<(), CommandError> {
        self.report = Some(report.clone());
        Ok(())
    }

    fn current(&mut self, view: &CurrentView<'_>) -> Result<(), CommandError> {
        self.current = Some(view.status.heads.clone());
        Ok(())
    }
}

fn at(rows: &[String]) -> String {
    if rows.is_empty() {
        "base".into()
    } else {
        rows.join(", ")
    }
}

/// The URL with another database name: the path of a URL, or a later
/// `dbname` key in a key/value string (libpq takes the last one).
fn with_dbname(url: &str, name: &str) -> String {
    let Some(rest) = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
    else {
        return format!(
            "{url} dbname='{}'",
            name.replace('\\', "\\\\").replace('\'', "\\'")
        );
    };
    let scheme = &url[..url.len() - rest.len()];
    let (before_query, query) = rest
        .split_once('?')
        .map_or((rest, None), |(a, q)| (a, Some(q)));
    let authority = before_query
        .split_once('/')
        .map_or(before_query, |(a, _)| a);
    let encoded: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect();
    match query {
        Some(q) => format!("{scheme}{authority}/{encoded}?{q}"),
        None => format!("{scheme}{authority}/{encoded}"),
    }
}

fn names(
    client: &mut postgres::Client,
    sql: &str,
    patterns: &[String],
) -> Result<Vec<String>, CliError> {
    let rows = client.query(sql, &[&patterns]).map_err(|e| {
        let reason = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |db| db.message().to_owned());
        CliError::failed(format!("cannot list the fleet's targets: {reason}"), None)
    })?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Expands `$NAME` and `${NAME}` from the environment, so that a targets
/// file holds no passwords.
fn expand(value: &str, file: &str, line: usize) -> Result<String, CliError> {
    let Some(var) = value.strip_prefix('$') else {
        return Ok(value.to_owned());
    };
    let var = var.trim_start_matches('{').trim_end_matches('}');
    std::env::var(var)
        .map_err(|_| CliError::usage(format!("{file}:{line}: ${var} is not set"), None))
}

/// The databases: the lines of `--targets`, the ones `--each-database`
/// matches on the URL's server, or the URL's own.
fn bases(ctx: &Ctx, fleet: &FleetArgs) -> Result<Vec<Target>, CliError> {
    if let Some(file) = &fleet.targets {
        let shown = file.display().to_string();
        let text = std::fs::read_to_string(ctx.cwd.join(file))
            .map_err(|e| CliError::usage(format!("cannot read {shown}: {e}"), None))?;
        let mut out = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split_once('#').map_or(line, |(a, _)| a).trim();
            if line.is_empty() {
                continue;
            }
            let (name, url) = match line.split_once('=') {
                Some((name, url)) if !name.contains("://") && !name.trim().contains(' ') => {
                    (name.trim().to_owned(), url.trim())
                }
                _ => (String::new(), line),
            };
            let url = expand(url, &shown, n + 1)?;
            let name = if name.is_empty() {
                alembic_embed::tls::describe_target(&url)
            } else {
                name
            };
            out.push(Target {
                name,
                url,
                schema: None,
            });
        }
        return Ok(out);
    }
    let url = ctx
        .config
        .database_url
        .as_ref()
        .ok_or_else(|| CliError::usage("no database URL", Some("a fleet starts from the server the URL names: pass --database-url or set DATABASE_URL".into())))?
        .expose()
        .to_owned();
    if fleet.each_database.is_empty() {
        return Ok(vec![Target {
            name: String::new(),
            url,
            schema: None,
        }]);
    }
    let mut client = alembic_embed::tls::connect(&url)
        .map_err(|e| CliError::by_code(e.exit_code(), e.to_string()))?;
    let dbs = names(
        &mut client,
        "SELECT datname::text FROM pg_catalog.pg_database WHERE NOT datistemplate AND datallowconn \
         AND datname LIKE ANY($1) ORDER BY 1",
        &fleet.each_database,
    )?;
    Ok(dbs
        .into_iter()
        .map(|db| Target {
            url: with_dbname(&url, &db),
            name: db,
            schema: None,
        })
        .collect())
}

/// Every target: the databases, and with `--each-schema` the matching
/// schemas of each; then this shard's share.
pub(crate) fn targets(ctx: &Ctx, fleet: &FleetArgs) -> Result<Vec<Target>, CliError> {
    let mut out = Vec::new();
    for base in bases(ctx, fleet)? {
        if fleet.each_schema.is_empty() {
            out.push(base);
            continue;
        }
        let mut client = alembic_embed::tls::connect(&base.url)
            .map_err(|e| CliError::by_code(e.exit_code(), e.to_string()))?;
        let schemas = names(
            &mut client,
            "SELECT nspname::text FROM pg_catalog.pg_namespace WHERE nspname LIKE ANY($1) \
             AND nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema' ORDER BY 1",
            &fleet.each_schema,
        )?;
        for schema in schemas {
            let name = if base.name.is_empty() {
                schema.clone()
            } else {
                format!("{}/{schema}", base.name)
            };
            out.push(Target {
                name,
                url: base.url.clone(),
                schema: Some(schema),
            });
        }
    }
    if let Some(shard) = &fleet.shard {
        let (i, n) = parse_shard(shard)?;
        out.retain(|t| stable_hash(&t.name) % n == i - 1);
    }
    Ok(out)
}

/// `I/N`, 1 ≤ I ≤ N.
fn parse_shard(text: &str) -> Result<(u64, u64), CliError> {
    let bad = || {
        CliError::usage(
            format!("--shard {text}: expected I/N with 1 ≤ I ≤ N, e.g. 2/4"),
            None,
        )
    };
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (i, n): (u64, u64) = (
        i.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if i == 0 || n == 0 || i > n {
        return Err(bad());
    }
    Ok((i, n))
}

/// FNV-1a: a target's shard depends on its name only, so adding targets
/// never moves the others.
fn stable_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How one target ended: its line, and its JSON object.
struct Outcome {
    failed: bool,
    line: String,
    json: TargetJson,
}

/// A target in `--format json`.
#[derive(Serialize)]
struct TargetJson {
    name: String,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    schema: Option<String>,
    before: Vec<String>,
    after: Vec<String>,
    revisions: Vec<StepJson>,
    duration_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorJson>,
}

#[derive(Serialize)]
struct StepJson {
    revision: String,
    duration_ms: f64,
}

/// A failed target's error: the message, and for a failing statement its
/// revision, file, line and SQLSTATE.
#[derive(Serialize)]
struct ErrorJson {
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sqlstate: Option<String>,
}

fn error_json(e: &CommandError) -> ErrorJson {
    let mut json = ErrorJson {
        message: e.message_and_help().0,
        revision: None,
        file: None,
        line: None,
        sqlstate: None,
    };
    if let CommandError::Engine(EngineError::Sql(f)) = e {
        json.revision = Some(f.revision.clone());
        json.file = Some(f.file.display().to_string());
        json.line = Some(f.line);
        json.sqlstate = f.code.clone();
    }
    json
}

fn run_one(ctx: &Ctx, map: &RevisionMap, target: &Target, command: &Command) -> Outcome {
    let mut settings = super::database::settings(ctx);
    if let Some(schema) = &target.schema {
        settings.version_table_schema = Some(schema.clone());
        settings.search_path = Some(schema.clone());
    }
    let db = Database {
        settings,
        url: Some(&target.url),
        no_url_help: String::new(),
    };
    let source = Loaded(map);
    let mut out = Capture::default();
    let started = Instant::now();
    let result = match command {
        Command::Upgrade(a) => commands::upgrade(&db, &source, &mut out, a),
        Command::Downgrade(a) => commands::downgrade(&db, &source, &mut out, a),
        Command::Stamp(a) => commands::stamp(&db, &source, &mut out, a),
        Command::Current(a) => commands::current(&db, &source, &mut out, a),
        _ => Err(CommandError::Usage {
            message: "not a fleet command".into(),
            help: None,
        }),
    };
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut json = TargetJson {
        name: target.name.clone(),
        status: "done",
        schema: target.schema.clone(),
        before: Vec::new(),
        after: Vec::new(),
        revisions: Vec::new(),
        duration_ms: ms,
        error: None,
    };
    if let Some(r) = &out.report {
        json.before = r.before.clone();
        json.after = r.after.clone();
        json.revisions = r
            .steps
            .iter()
            .map(|s| StepJson {
                revision: s.revision.clone(),
                duration_ms: s.duration.as_secs_f64() * 1000.0,
            })
            .collect();
    }
    if let Some(heads) = &out.current {
        json.after = heads.clone();
    }
    let line = match &result {
        Err(e) => {
            json.status = "failed";
            let error = error_json(e);
            let line = format!("error: {}", error.message.lines().next().unwrap_or(""));
            json.error = Some(error);
            line
        }
        Ok(()) => match (&out.report, &out.current) {
            (Some(r), _) => format!(
                "{} -> {} ({} revision{}, {ms:.0} ms)",
                at(&r.before),
                at(&r.after),
                out.steps,
                if out.steps == 1 { "" } else { "s" }
            ),
            (None, Some(heads)) => at(heads),
            (None, None) => format!("done ({ms:.0} ms)"),
        },
    };
    Outcome {
        failed: result.is_err(),
        line: format!("{}: {line}\n", target.name),
        json,
    }
}

/// `--format github`: an error annotation per failed target, on the
/// revision's file and line when a statement failed.
fn annotations(finished: &[TargetJson]) -> String {
    let mut out = String::new();
    for t in finished {
        let Some(e) = &t.error else { continue };
        let mut props = Vec::new();
        if let Some(file) = &e.file {
            props.push(format!("file={}", escape(file, true)));
        }
        if let Some(line) = e.line {
            props.push(format!("line={line}"));
        }
        props.push(format!(
            "title={}",
            escape(&format!("cargo alembic fleet: {}", t.name), true)
        ));
        out.push_str(&format!(
            "::error {}::{}\n",
            props.join(","),
            escape(&e.message, false)
        ));
    }
    out
}

/// `--format junit`: a test case per target; a failure for a failed one, a
/// skipped case for one that was not started.
fn junit(finished: &[TargetJson], not_started: &[Target], took: std::time::Duration) -> String {
    let mut cases = String::new();
    for t in finished {
        cases.push_str(&format!(
            "    <testcase classname=\"fleet\" name=\"{}\" time=\"{:.3}\"",
            xml(&t.name),
            t.duration_ms / 1000.0
        ));
        match &t.error {
            None => cases.push_str("/>\n"),
            Some(e) => cases.push_str(&format!(
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                xml(e.message.lines().next().unwrap_or("")),
                xml(&e.message)
            )),
        }
    }
    for t in not_started {
        cases.push_str(&format!(
            "    <testcase classname=\"fleet\" name=\"{}\">\n      <skipped message=\"not started after a failure\"/>\n    </testcase>\n",
            xml(&t.name)
        ));
    }
    let failed = finished.iter().filter(|t| t.error.is_some()).count();
    let n = finished.len() + not_started.len();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"cargo alembic fleet\" tests=\"{n}\" failures=\"{failed}\" \
         skipped=\"{}\" time=\"{:.3}\">\n  <testsuite name=\"cargo alembic fleet\" tests=\"{n}\" failures=\"{failed}\" skipped=\"{}\">\n{cases}  </testsuite>\n</testsuites>\n",
        not_started.len(),
        took.as_secs_f64(),
        not_started.len()
    )
}

/// Runs `command` on every target of the fleet.
pub(crate) fn run(ctx: &Ctx, fleet: &FleetArgs, command: &Command) -> Result<(), CliError> {
    if !matches!(
        command,
        Command::Upgrade(_) | Command::Downgrade(_) | Command::Stamp(_) | Command::Current(_)
    ) {
        return Err(CliError::usage(
            "--each-schema, --each-database and --targets work with upgrade, downgrade, stamp and current",
            None,
        ));
    }
    let sql = match command {
        Command::Upgrade(a) => a.run.sql,
        Command::Downgrade(a) => a.run.sql,
        Command::Stamp(a) => a.sql,
        _ => false,
    };
    if sql {
        return Err(CliError::usage(
            "--sql prints one script; it takes no fleet",
            None,
        ));
    }
    let map = ctx.load()?;
    let targets = targets(ctx, fleet)?;
    if targets.is_empty() {
        return Err(CliError::failed(
            "the fleet has no targets: no database or schema matches",
            None,
        ));
    }
    let started = Instant::now();
    let (next, stop) = (AtomicUsize::new(0), AtomicBool::new(false));
    // Ctrl-C (or SIGTERM) stops starting targets; the running ones finish
    // (or roll back their transaction), release their locks, and the
    // summary names what was not started.
    let interrupted: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let _ = ctrlc::set_handler(move || interrupted.store(true, Ordering::SeqCst));
    let (failed, outcomes) = (AtomicUsize::new(0), Mutex::new(Vec::new()));
    let json = ctx.format != Format::Human;
    let jobs = fleet.jobs.clamp(1, targets.len());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                if stop.load(Ordering::SeqCst) || interrupted.load(Ordering::SeqCst) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(target) = targets.get(i) else { return };
                let outcome = run_one(ctx, &map, target, command);
                if outcome.failed {
                    failed.fetch_add(1, Ordering::SeqCst);
                    if !fleet.keep_going {
                        stop.store(true, Ordering::SeqCst);
                    }
                }
                let mut done = outcomes.lock().unwrap_or_else(|p| p.into_inner());
                if !json {
                    let _ = emit(&outcome.line);
                }
                done.push(outcome.json);
            });
        }
    });
    let started_count = next.load(Ordering::SeqCst).min(targets.len());
    let failed = failed.load(Ordering::SeqCst);
    let not_started = targets.len() - started_count;
    let summary = format!(
        "fleet: {} target{}, {} done, {failed} failed, {not_started} not started ({} ms, {jobs} at a time)\n",
        targets.len(),
        if targets.len() == 1 { "" } else { "s" },
        started_count - failed,
        started.elapsed().as_millis()
    );
    let text = if matches!(ctx.format, Format::Github | Format::Junit) {
        let mut finished = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
        finished.sort_by(|a, b| a.name.cmp(&b.name));
        let not_started = &targets[started_count..];
        if ctx.format == Format::Github {
            annotations(&finished) + &summary
        } else {
            junit(&finished, not_started, started.elapsed())
        }
    } else if json {
        #[derive(Serialize)]
        struct FleetJson {
            targets: Vec<TargetJson>,
            done: usize,
            failed: usize,
            not_started: Vec<String>,
        }
        let mut finished = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
        finished.sort_by(|a, b| a.name.cmp(&b.name));
        to_json(&FleetJson {
            targets: finished,
            done: started_count - failed,
            failed,
            not_started: targets[started_count..]
                .iter()
                .map(|t| t.name.clone())
                .collect(),
        })
    } else {
        summary
    };
    print(&text)?;
    ctx.discard(map);
    if interrupted.load(Ordering::SeqCst) {
        return Err(CliError::failed(
            format!(
                "interrupted: {not_started} target{} not started",
                if not_started == 1 { "" } else { "s" }
            ),
            Some("the targets that ran finished; run the command again for the rest".into()),
        ));
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(CliError::failed(
            format!("{failed} target{} failed", if failed == 1 { "" } else { "s" }),
            (!fleet.keep_going && not_started > 0)
                .then(|| "the run stopped starting targets at the first failure; --keep-going runs every target".into()),
        ))
    }
}
