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
use alembic_embed::cli_engine::Settings;
use alembic_embed::{EngineError, Report, Step};
use serde::Serialize;

use super::verify::{self, against};
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

/// libpq's connection keywords: a line that starts with one (`host=h
/// dbname=d`) is a URL in key/value form, not `name = url`.
const LIBPQ_KEYWORDS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "replication",
    "gssencmode",
    "sslmode",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

/// A line without its comment: `#` at its start or after a space (a `#`
/// inside a URL or a key/value password is kept).
fn strip_comment(line: &str) -> &str {
    let mut after_space = true;
    for (i, c) in line.char_indices() {
        if c == '#' && after_space {
            return &line[..i];
        }
        after_space = c.is_whitespace();
    }
    line
}

/// `name = url` (the name without spaces, not a libpq keyword), else the
/// whole line is a URL.
fn split_target(line: &str) -> (Option<&str>, &str) {
    match line.split_once('=') {
        Some((name, url)) => {
            let name = name.trim();
            let is_name = !name.contains(char::is_whitespace)
                && !name.contains("://")
                && !LIBPQ_KEYWORDS.contains(&name);
            if is_name {
                (Some(name), url.trim())
            } else {
                (None, line)
            }
        }
        None => (None, line),
    }
}

/// The targets of a `--targets` file, every line checked before any
/// target runs: a line the driver cannot read, a missing name or a name
/// given twice is bad usage naming the file and line.
fn read_targets(text: &str, shown: &str) -> Result<Vec<Target>, CliError> {
    let mut out: Vec<Target> = Vec::new();
    let mut first_line: std::collections::HashMap<String, usize> = Default::default();
    for (n, raw) in text.lines().enumerate() {
        let number = n + 1;
        let at = |why: String| CliError::usage(format!("{shown}:{number}: {why}"), None);
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let (name, url) = split_target(line);
        if name == Some("") {
            return Err(at(
                "no name before `=` (`name = url`, or the URL alone)".into()
            ));
        }
        let url = expand(url, shown, number)?;
        alembic_embed::tls::validate(&url).map_err(|e| at(e.to_string()))?;
        let name = name.map_or_else(|| alembic_embed::tls::describe_target(&url), str::to_owned);
        if let Some(first) = first_line.get(&name) {
            return Err(at(format!("the target `{name}` is also on line {first}")));
        }
        first_line.insert(name.clone(), number);
        out.push(Target {
            name,
            url,
            schema: None,
        });
    }
    Ok(out)
}

/// The databases: the lines of `--targets`, the ones `--each-database`
/// matches on the URL's server, or the URL's own.
fn bases(ctx: &Ctx, fleet: &FleetArgs, url: Option<&str>) -> Result<Vec<Target>, CliError> {
    if let Some(file) = &fleet.targets {
        let shown = file.display().to_string();
        let text = std::fs::read_to_string(ctx.cwd.join(file))
            .map_err(|e| CliError::usage(format!("cannot read {shown}: {e}"), None))?;
        return read_targets(&text, &shown);
    }
    let url = url
        .ok_or_else(|| {
            CliError::usage(
                "no database URL",
                Some(format!(
                    "a fleet starts from the server the URL names: pass --database-url or set {}",
                    ctx.config.database_url_env
                )),
            )
        })?
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
            url: alembic_throwaway::with_dbname(&alembic_embed::tls::libpq_url(&url), &db),
            name: db,
            schema: None,
        })
        .collect())
}

/// Every target: the databases, and with `--each-schema` the matching
/// schemas of each; then this shard's share.
pub(crate) fn targets(
    ctx: &Ctx,
    fleet: &FleetArgs,
    url: Option<&str>,
) -> Result<Vec<Target>, CliError> {
    let mut out = Vec::new();
    for base in bases(ctx, fleet, url)? {
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

impl Outcome {
    fn done(json: TargetJson, line: String) -> Self {
        Outcome {
            failed: false,
            line: format!("{}: {line}\n", json.name),
            json,
        }
    }

    fn failed(mut json: TargetJson, error: ErrorJson) -> Self {
        json.status = "failed";
        let line = format!(
            "{}: error: {}\n",
            json.name,
            error.message.lines().next().unwrap_or("")
        );
        json.error = Some(error);
        Outcome {
            failed: true,
            line,
            json,
        }
    }
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

impl TargetJson {
    fn new(target: &Target, duration_ms: f64) -> Self {
        TargetJson {
            name: target.name.clone(),
            status: "done",
            schema: target.schema.clone(),
            before: Vec::new(),
            after: Vec::new(),
            revisions: Vec::new(),
            duration_ms,
            error: None,
        }
    }
}

#[derive(Serialize)]
struct StepJson {
    revision: String,
    duration_ms: f64,
}

/// A failed target's error: the message, and for a failing statement its
/// revision, file, line and SQLSTATE.
#[derive(Serialize, Default)]
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
        ..ErrorJson::default()
    };
    if let CommandError::Engine(EngineError::Sql(f)) = e {
        json.revision = Some(f.revision.clone());
        json.file = Some(f.file.display().to_string());
        json.line = Some(f.line);
        json.sqlstate = f.code.clone();
    }
    json
}

/// Runs the command on one target, on the worker's kept connection to its
/// database when it has one.
fn run_one(
    ctx: &Ctx,
    map: &RevisionMap,
    target: &Target,
    command: &Command,
    reuse: &Mutex<Option<postgres::Client>>,
) -> Outcome {
    let mut settings = super::database::settings(ctx);
    if let Some(schema) = &target.schema {
        settings.version_table_schema = Some(schema.clone());
        settings.search_path = Some(schema.clone());
    }
    if matches!(command, Command::Verify(_)) {
        return against_one(map, target, settings);
    }
    let db = Database {
        settings,
        url: Some(&target.url),
        no_url_help: String::new(),
        reuse: Some(reuse),
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
    let mut json = TargetJson::new(target, ms);
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
        Err(e) => return Outcome::failed(json, error_json(e)),
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
    Outcome::done(json, line)
}

/// `verify --against` on one target: read-only, its problems make it fail.
fn against_one(map: &RevisionMap, target: &Target, settings: Settings) -> Outcome {
    let started = Instant::now();
    let found = against::check(map, settings, &target.url);
    let json = TargetJson::new(target, started.elapsed().as_secs_f64() * 1000.0);
    match found {
        Err(e) => Outcome::failed(
            json,
            ErrorJson {
                message: e.to_string(),
                ..ErrorJson::default()
            },
        ),
        Ok(found) if found.problems.is_empty() => Outcome::done(json, found.summary),
        Ok(found) => {
            let first = &found.problems[0];
            let error = ErrorJson {
                message: found
                    .problems
                    .iter()
                    .map(|p| p.message.as_str())
                    .collect::<Vec<_>>()
                    .join("\n"),
                revision: first.revision.clone(),
                file: first.file.clone(),
                line: first.line,
                sqlstate: None,
            };
            Outcome::failed(json, error)
        }
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

/// Refuses what a fleet cannot run; the URL the fleet starts from.
fn fleet_url<'a>(ctx: &'a Ctx, command: &'a Command) -> Result<Option<&'a str>, CliError> {
    let sql = match command {
        Command::Upgrade(a) => a.run.sql,
        Command::Downgrade(a) => a.run.sql,
        Command::Stamp(a) => a.sql,
        Command::Current(_) => false,
        Command::Verify(a) => {
            return match &a.against {
                Some(given) => verify::against_url(ctx, given.as_ref()).map(Some),
                None => Err(CliError::usage(
                    "a fleet is verified with --against: each target read-only against the files",
                    None,
                )),
            }
        }
        _ => {
            return Err(CliError::usage(
                "--each-schema, --each-database and --targets work with upgrade, downgrade, stamp, current and verify --against",
                None,
            ))
        }
    };
    if sql {
        return Err(CliError::usage(
            "--sql prints one script; it takes no fleet",
            None,
        ));
    }
    Ok(ctx.config.database_url.as_ref().map(|u| u.expose()))
}

/// What the workers share: the next target, the stop flags, the outcomes
/// and the progress bar.
struct Board<'a> {
    targets: &'a [Target],
    next: AtomicUsize,
    stop: AtomicBool,
    interrupted: &'static AtomicBool,
    failed: AtomicUsize,
    outcomes: Mutex<Vec<TargetJson>>,
    /// Lines as targets finish (human format).
    lines: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl Board<'_> {
    /// The next target to start, unless the run stops.
    fn take(&self) -> Option<&Target> {
        if self.stop.load(Ordering::SeqCst) || self.interrupted.load(Ordering::SeqCst) {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::SeqCst);
        let target = self.targets.get(i)?;
        self.redraw(
            self.outcomes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .len(),
        );
        Some(target)
    }

    fn started(&self) -> usize {
        self.next.load(Ordering::SeqCst).min(self.targets.len())
    }

    fn finish(&self, outcome: Outcome, keep_going: bool) {
        if outcome.failed {
            self.failed.fetch_add(1, Ordering::SeqCst);
            if !keep_going {
                self.stop.store(true, Ordering::SeqCst);
            }
        }
        let mut done = self.outcomes.lock().unwrap_or_else(|p| p.into_inner());
        done.push(outcome.json);
        if self.lines {
            match &self.bar {
                Some(bar) => bar.println(outcome.line.trim_end()),
                None => {
                    let _ = emit(&outcome.line);
                }
            }
        }
        self.redraw(done.len());
    }

    fn redraw(&self, finished: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(finished as u64);
            bar.set_message(progress(
                finished,
                self.failed.load(Ordering::SeqCst),
                self.started(),
                self.targets.len(),
            ));
        }
    }
}

/// The progress bar's words: done, failed, running, remaining.
fn progress(finished: usize, failed: usize, started: usize, total: usize) -> String {
    format!(
        "{} done, {failed} failed, {} running, {} remaining",
        finished - failed,
        started.saturating_sub(finished),
        total - started
    )
}

fn bar(ctx: &Ctx, total: usize) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    let terminal = std::io::stdout().is_terminal();
    if ctx.format != Format::Human || !super::database::wants_bar(terminal, total) {
        return None;
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total as u64),
        indicatif::ProgressDrawTarget::stdout(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} targets: {msg}, {elapsed}")
    {
        bar.set_style(style);
    }
    Some(bar)
}

/// For `verify --against`, the files' own checks, once for the fleet: the
/// number of problems (printed).
fn files_checked(ctx: &Ctx, map: &RevisionMap, command: &Command) -> Result<usize, CliError> {
    let Command::Verify(args) = command else {
        return Ok(0);
    };
    let (problems, warnings) = verify::static_checks(ctx, map, args)?;
    for (level, list) in [("warning", &warnings), ("error", &problems)] {
        for p in list {
            eprintln!("{level}: {}", p.message);
        }
    }
    Ok(problems.len())
}

/// Runs `command` on every target of the fleet.
pub(crate) fn run(ctx: &Ctx, fleet: &FleetArgs, command: &Command) -> Result<(), CliError> {
    let url = fleet_url(ctx, command)?;
    let map = ctx.load()?;
    let static_problems = files_checked(ctx, &map, command)?;
    let targets = targets(ctx, fleet, url)?;
    if targets.is_empty() {
        return Err(CliError::failed(
            "the fleet has no targets: no database or schema matches",
            None,
        ));
    }
    let started = Instant::now();
    // Ctrl-C (or SIGTERM) stops starting targets; the running ones finish
    // (or roll back their transaction), release their locks, and the
    // summary names what was not started.
    let interrupted: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let _ = ctrlc::set_handler(move || interrupted.store(true, Ordering::SeqCst));
    let board = Board {
        targets: &targets,
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        interrupted,
        failed: AtomicUsize::new(0),
        outcomes: Mutex::new(Vec::new()),
        lines: ctx.format == Format::Human,
        bar: bar(ctx, targets.len()),
    };
    let jobs = fleet.jobs.clamp(1, targets.len());
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                // One connection per worker and database, reset between
                // tenants: no new server process for each.
                let (reuse, mut database) = (Mutex::new(None), None);
                while let Some(target) = board.take() {
                    if database != Some(&target.url) {
                        *reuse.lock().unwrap_or_else(|p| p.into_inner()) = None;
                        database = Some(&target.url);
                    }
                    board.finish(
                        run_one(ctx, &map, target, command, &reuse),
                        fleet.keep_going,
                    );
                }
            });
        }
    });
    if let Some(bar) = &board.bar {
        bar.finish_and_clear();
    }
    let ended = Ended {
        total: targets.len(),
        started: board.started(),
        failed: board.failed.load(Ordering::SeqCst),
        jobs,
        took: started.elapsed(),
    };
    let mut finished = board
        .outcomes
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    finished.sort_by(|a, b| a.name.cmp(&b.name));
    print(&report(ctx, &targets, finished, &ended))?;
    ctx.discard(map);
    ended.result(fleet, interrupted.load(Ordering::SeqCst), static_problems)
}

/// How a fleet run ended.
struct Ended {
    total: usize,
    started: usize,
    failed: usize,
    jobs: usize,
    took: std::time::Duration,
}

/// The run's text in the chosen format.
fn report(ctx: &Ctx, targets: &[Target], finished: Vec<TargetJson>, ended: &Ended) -> String {
    let failed = ended.failed;
    let not_started = &targets[ended.started..];
    let summary = format!(
        "fleet: {} target{}, {} done, {failed} failed, {} not started ({} ms, {} at a time)\n",
        targets.len(),
        if targets.len() == 1 { "" } else { "s" },
        ended.started - failed,
        not_started.len(),
        ended.took.as_millis(),
        ended.jobs
    );
    match ctx.format {
        Format::Human => summary,
        Format::Github => annotations(&finished) + &summary,
        Format::Junit => junit(&finished, not_started, ended.took),
        Format::Json => {
            #[derive(Serialize)]
            struct FleetJson {
                targets: Vec<TargetJson>,
                done: usize,
                failed: usize,
                not_started: Vec<String>,
            }
            to_json(&FleetJson {
                targets: finished,
                done: ended.started - failed,
                failed,
                not_started: not_started.iter().map(|t| t.name.clone()).collect(),
            })
        }
    }
}

impl Ended {
    /// The exit: interrupted, failed targets, or the files' own problems.
    fn result(
        &self,
        fleet: &FleetArgs,
        interrupted: bool,
        static_problems: usize,
    ) -> Result<(), CliError> {
        let not_started = self.total - self.started;
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        if interrupted {
            return Err(CliError::failed(
                format!(
                    "interrupted: {not_started} target{} not started",
                    plural(not_started)
                ),
                Some("the targets that ran finished; run the command again for the rest".into()),
            ));
        }
        if self.failed > 0 {
            return Err(CliError::failed(
                format!("{} target{} failed", self.failed, plural(self.failed)),
                (!fleet.keep_going && not_started > 0).then(|| {
                    "the run stopped starting targets at the first failure; --keep-going runs every target"
                        .into()
                }),
            ));
        }
        if static_problems > 0 {
            return Err(CliError::CheckFailed(format!(
                "verify: {static_problems} problem{} in the files",
                plural(static_problems)
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{progress, read_targets};

    /// Each line of a targets file: its name and URL, or the error that
    /// stops the file before any target runs (a bad line used to fail
    /// only its own target, at run time, under a made-up name).
    #[test]
    fn a_targets_file_is_read_and_checked_line_by_line() {
        let read = |text: &str| -> Result<Vec<(String, String)>, String> {
            read_targets(text, "fleet.txt")
                .map(|t| t.into_iter().map(|t| (t.name, t.url)).collect())
                .map_err(|e| e.to_string())
        };
        let pair = |n: &str, u: &str| (n.to_owned(), u.to_owned());
        assert_eq!(
            read(concat!(
                "# tenants\n",
                "\n",
                "a = postgresql://h/a   # inline\n",
                "b=postgresql://u:p#ss@h/b?sslmode=require\n",
                "c = host=h dbname=c password=x#y\n",
                "host=h port=6432 dbname=d\n",
                "postgresql://h:7/e?application_name=x\n",
                "tenant/7 = postgres://h/f\n",
            )),
            Ok(vec![
                pair("a", "postgresql://h/a"),
                pair("b", "postgresql://u:p#ss@h/b?sslmode=require"),
                pair("c", "host=h dbname=c password=x#y"),
                pair("h:6432/d", "host=h port=6432 dbname=d"),
                pair("h:7/e", "postgresql://h:7/e?application_name=x"),
                pair("tenant/7", "postgres://h/f"),
            ])
        );
        let table = [
            ("= postgresql://h/a\n", "fleet.txt:1: no name before `=` (`name = url`, or the URL alone)"),
            (
                "a = postgresql://h/a\nb postgresql://h/b\n",
                "fleet.txt:2: the database URL does not parse: it is neither a postgresql:// URL nor key=value settings (`host=... dbname=...`)",
            ),
            ("a = \n", "fleet.txt:1: the database URL does not parse: it is empty"),
            (
                "a = mysql://u:s3cret@h/a\n",
                "fleet.txt:1: the database URL does not parse: `mysql://` is not a PostgreSQL URL, which starts with postgresql:// or postgres://",
            ),
            ("a = postgresql://h:port/a\n", "fleet.txt:1: the database URL does not parse: invalid value for option `port`"),
            (
                "a = postgresql://h/a\n# b\na = postgresql://h/b\n",
                "fleet.txt:3: the target `a` is also on line 1",
            ),
            (
                "postgresql://h/a\npostgresql://h:5432/a\n",
                "fleet.txt:2: the target `h:5432/a` is also on line 1",
            ),
        ];
        for (text, expected) in table {
            assert_eq!(read(text), Err(expected.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn the_progress_bar_counts_done_failed_running_and_remaining() {
        assert_eq!(
            progress(0, 0, 4, 100),
            "0 done, 0 failed, 4 running, 96 remaining"
        );
        assert_eq!(
            progress(10, 2, 14, 100),
            "8 done, 2 failed, 4 running, 86 remaining"
        );
        assert_eq!(
            progress(100, 1, 100, 100),
            "99 done, 1 failed, 0 running, 0 remaining"
        );
    }
}
