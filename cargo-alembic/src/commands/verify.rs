//! `verify`: proves the chain against a throwaway PostgreSQL. This first
//! version runs the static checks, then the stairway: for each revision in
//! order, upgrade it, snapshot, downgrade it, compare with the snapshot
//! taken before the upgrade, and upgrade it again (which also upgrades the
//! whole chain one revision at a time). Two snapshots per revision; the
//! query is prepared once.
//!
//! Output: text for people, `--format json`, or `--format github` (GitHub
//! Actions annotations that land on the revision's file and line).

use std::io::IsTerminal;
use std::time::Instant;

use alembic_chain::RevisionMap;
use alembic_embed::cli_engine::{Engine, Settings};
use alembic_embed::{Direction, EngineError};
use alembic_throwaway::{Choice, Server};
use serde::Serialize;

use crate::args::{Format, VerifyArgs};
use crate::errors::CliError;
use crate::output::{emit, to_json};
use crate::snapshot;
use crate::Ctx;

/// One thing `verify` found.
#[derive(Debug, Serialize)]
struct Problem {
    /// `static`, `upgrade` or `stairway`.
    check: &'static str,
    revision: Option<String>,
    file: Option<String>,
    line: Option<usize>,
    message: String,
}

#[derive(Serialize)]
struct Timings {
    static_ms: u128,
    server_ms: u128,
    stairway_ms: u128,
    /// Of the stairway: taking schema snapshots.
    snapshot_ms: u128,
    snapshots: usize,
    branch_order_ms: u128,
    total_ms: u128,
}

#[derive(Serialize)]
struct VerifyJson<'a> {
    ok: bool,
    revisions: usize,
    heads: Vec<&'a str>,
    irreversible: Vec<&'a str>,
    /// The throwaway-server part (absent with `--against`).
    run: Option<Run>,
    total_ms: u128,
    problems: &'a [Problem],
    warnings: &'a [Problem],
}

fn say(ctx: &Ctx, text: &str) -> Result<(), CliError> {
    if matches!(ctx.format, Format::Json | Format::Junit) {
        return Ok(());
    }
    emit(text).map_err(|e| CliError::Io {
        path: "stdout".into(),
        source: e,
    })
}

/// A problem about revision `i`, pointing at `line` (default: its
/// downgrade marker, else its upgrade marker).
fn about(
    map: &RevisionMap,
    i: usize,
    check: &'static str,
    line: Option<usize>,
    message: String,
) -> Problem {
    let rev = map.rev(i);
    let marker = rev
        .downgrade
        .as_ref()
        .map_or(rev.upgrade.marker_line, |d| d.marker_line);
    Problem {
        check,
        revision: Some(rev.id.clone()),
        file: Some(rev.path.display().to_string()),
        line: Some(line.unwrap_or(marker)),
        message,
    }
}

/// The line an engine error points at, if any.
fn error_line(e: &EngineError) -> Option<usize> {
    match e {
        EngineError::Sql(f) => Some(f.line),
        _ => None,
    }
}

/// GitHub's escaping for annotation messages and properties.
fn escape(text: &str, property: bool) -> String {
    let mut out = text
        .replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A");
    if property {
        out = out.replace(':', "%3A").replace(',', "%2C");
    }
    out
}

/// Runs `verify`.
pub(crate) fn run(ctx: &Ctx, args: &VerifyArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let mut problems: Vec<Problem> = Vec::new();

    // 1. Static.
    let map = ctx.load()?;
    map.lex_all()?;
    let heads = heads(&map);
    if heads.len() > 1 && !(args.allow_multiple_heads || ctx.config.allow_multiple_heads) {
        problems.push(Problem {
            check: "static",
            revision: None,
            file: None,
            line: None,
            message: format!(
                "multiple heads: {}; merge them, or pass --allow-multiple-heads",
                heads.join(", ")
            ),
        });
    }
    // Lint: errors are problems, warnings are reported.
    let mut warnings: Vec<Problem> = Vec::new();
    for &i in map.order() {
        for f in alembic_chain::lint(map.rev(i)).map_err(|e| CliError::Load(e.into()))? {
            let p = about(
                &map,
                i,
                "lint",
                Some(f.line),
                format!(
                    "revision {} ({}:{}): {}",
                    map.rev(i).id,
                    map.rev(i).path.display(),
                    f.line,
                    f.message
                ),
            );
            match f.severity {
                alembic_chain::Severity::Error => problems.push(p),
                alembic_chain::Severity::Warning => warnings.push(p),
            }
        }
    }
    let irreversible = irreversible(&map);
    say(
        ctx,
        &format!(
            "static: {} revisions, {} head{} ({}), {} irreversible{}\n",
            map.len(),
            heads.len(),
            if heads.len() == 1 { "" } else { "s" },
            heads.join(", "),
            irreversible.len(),
            if irreversible.is_empty() {
                String::new()
            } else {
                format!(" ({})", irreversible.join(", "))
            }
        ),
    )?;
    let static_ms = started.elapsed().as_millis();
    if let Some(url) = &args.against {
        return against(ctx, &map, url.expose(), problems, warnings, started);
    }

    // 2. A throwaway server: an existing one only when asked explicitly.
    let choice = match (&ctx.database_url_flag, args.local, args.docker) {
        (Some(url), _, _) => Choice::Url(url.expose().to_owned()),
        (None, true, _) => Choice::Local,
        (None, _, true) => Choice::Docker,
        (None, false, false) => Choice::Auto(None),
    };
    // Best effort: a handler installed earlier is not an error.
    let _ = alembic_throwaway::cleanup_on_interrupt();
    let t = Instant::now();
    let server = Server::start(choice).map_err(|e| {
        CliError::failed(e.to_string(), Some("install the PostgreSQL server (initdb, postgres), run Docker, or pass --database-url".into()))
    })?;
    let db = server
        .database()
        .map_err(|e| CliError::failed(e.to_string(), None))?;
    let server_ms = t.elapsed().as_millis();
    say(
        ctx,
        &format!("server: {} ({server_ms} ms)\n", server.description()),
    )?;
    let mut client =
        alembic_embed::tls::connect(db.url()).map_err(|e| CliError::failed(e.to_string(), None))?;
    let settings = Settings {
        tool: format!("cargo-alembic {} verify", env!("CARGO_PKG_VERSION")),
        ..super::database::settings(ctx)
    };
    let skip = vec![
        settings.version_table.clone(),
        format!("{}_ledger", settings.version_table),
    ];
    let engine = Engine::new(&map, settings);

    // 3. Stairway.
    let t = Instant::now();
    let snapper = snapshot::Snapshotter::prepare(&mut client, &skip)
        .map_err(|e| CliError::failed(format!("cannot read the catalogs: {e}"), None))?;
    let snapshot_time = std::cell::Cell::new((std::time::Duration::ZERO, 0usize));
    let snap = |client: &mut postgres::Client| {
        let t = Instant::now();
        let taken = snapper.take(client);
        let (total, n) = snapshot_time.get();
        snapshot_time.set((total + t.elapsed(), n + 1));
        taken.map_err(|e| {
            let reason = e
                .as_db_error()
                .map_or_else(|| e.to_string(), |db| db.message().to_owned());
            CliError::failed(format!("cannot read the catalogs: {reason}"), None)
        })
    };
    let mut before = snap(&mut client)?;
    let mut checked = 0;
    for &i in map.order() {
        let rev = map.rev(i);
        let file = rev.path.display();
        if let Err(e) = engine.step_one(&mut client, &rev.id, Direction::Upgrade) {
            problems.push(about(
                &map,
                i,
                "upgrade",
                error_line(&e).or(Some(rev.upgrade.marker_line)),
                format!("upgrade of revision {} ({file}) failed: {e}", rev.id),
            ));
            break;
        }
        let after = snap(&mut client)?;
        if rev.downgrade.is_some() {
            if let Err(e) = engine.step_one(&mut client, &rev.id, Direction::Downgrade) {
                problems.push(about(
                    &map,
                    i,
                    "stairway",
                    error_line(&e),
                    format!("downgrade of revision {} ({file}) failed: {e}", rev.id),
                ));
                break;
            }
            let undone = snap(&mut client)?;
            let left = snapshot::diff(&before, &undone);
            if !left.is_empty() {
                problems.push(about(
                    &map,
                    i,
                    "stairway",
                    None,
                    format!(
                        "the downgrade of revision {} ({file}) does not undo its upgrade; compared with the schema before the upgrade (- missing, + left behind):\n    {}",
                        rev.id,
                        left.join("\n    ")
                    ),
                ));
                // What follows would fail for this reason: stop here.
                say(ctx, &format!("stairway: stopped at revision {}\n", rev.id))?;
                break;
            }
            if let Err(e) = engine.step_one(&mut client, &rev.id, Direction::Upgrade) {
                problems.push(about(
                    &map,
                    i,
                    "stairway",
                    error_line(&e),
                    format!(
                        "upgrade of revision {} ({file}) after its downgrade failed: {e}",
                        rev.id
                    ),
                ));
                break;
            }
        }
        // Two snapshots per revision: the downgrade's (compared above) and
        // the upgrade's, which is also the next revision's "before".
        before = after;
        checked += 1;
    }
    let stairway_ms = t.elapsed().as_millis();
    say(ctx, &format!("stairway: {checked} of {} revisions upgraded, downgraded and upgraded again, schemas compared ({stairway_ms} ms)\n", map.len()))?;
    // 4. Branch order: at each merge point, the branches applied each first.
    let merges: Vec<usize> = map.merge_points();
    let mut branch_order_ms = 0;
    if !merges.is_empty() {
        let t = Instant::now();
        for &m in &merges {
            branch_order(&map, &engine, &server, &skip, m, &mut problems)?;
        }
        say(
            ctx,
            &format!(
                "branch order: {} merge point{} checked, each branch applied first ({} ms)\n",
                merges.len(),
                if merges.len() == 1 { "" } else { "s" },
                t.elapsed().as_millis()
            ),
        )?;
        branch_order_ms = t.elapsed().as_millis();
    }

    let run = Run {
        server: server.description().to_owned(),
        stairway_checked: checked,
        timings: Timings {
            static_ms,
            server_ms,
            stairway_ms,
            snapshot_ms: snapshot_time.get().0.as_millis(),
            snapshots: snapshot_time.get().1,
            branch_order_ms,
            total_ms: 0,
        },
    };
    drop(client);
    drop(db);
    drop(server);
    finish(ctx, &map, &problems, &warnings, started, Some(run))
}

/// What the throwaway-server part did, for the JSON report.
#[derive(Serialize)]
struct Run {
    server: String,
    stairway_checked: usize,
    timings: Timings,
}

/// Reports problems and warnings in the chosen format; exit 1 on problems.
fn finish(
    ctx: &Ctx,
    map: &RevisionMap,
    problems: &[Problem],
    warnings: &[Problem],
    started: Instant,
    run: Option<Run>,
) -> Result<(), CliError> {
    let total_ms = started.elapsed().as_millis();
    let heads = heads(map);
    let irreversible = irreversible(map);
    match ctx.format {
        Format::Json => {
            let run = run.map(|mut r| {
                r.timings.total_ms = total_ms;
                r
            });
            let report = VerifyJson {
                ok: problems.is_empty(),
                revisions: map.len(),
                heads,
                irreversible,
                run,
                total_ms,
                problems,
                warnings,
            };
            emit(&to_json(&report)).map_err(|e| CliError::Io {
                path: "stdout".into(),
                source: e,
            })?;
        }
        Format::Github => {
            let mut out = String::new();
            for (level, p) in problems
                .iter()
                .map(|p| ("error", p))
                .chain(warnings.iter().map(|p| ("warning", p)))
            {
                let mut props = Vec::new();
                if let Some(f) = &p.file {
                    props.push(format!("file={}", escape(&ctx.annotation_path(f), true)));
                }
                if let Some(l) = p.line {
                    props.push(format!("line={l}"));
                }
                props.push(format!(
                    "title={}",
                    escape(&format!("cargo alembic verify: {}", p.check), true)
                ));
                out.push_str(&format!(
                    "::{level} {}::{}\n",
                    props.join(","),
                    escape(&p.message, false)
                ));
            }
            emit(&out).map_err(|e| CliError::Io {
                path: "stdout".into(),
                source: e,
            })?;
        }
        Format::Junit => {
            emit(&junit(map, problems, total_ms)).map_err(|e| CliError::Io {
                path: "stdout".into(),
                source: e,
            })?;
        }
        Format::Human => {
            for p in warnings {
                eprintln!(
                    "{}: {}",
                    paint("warning", anstyle::AnsiColor::Yellow, colour_stderr()),
                    p.message
                );
            }
            for p in problems {
                eprintln!(
                    "{}: {}",
                    paint("error", anstyle::AnsiColor::Red, colour_stderr()),
                    p.message
                );
            }
        }
    }
    if problems.is_empty() {
        let colour =
            ctx.format == Format::Human && std::io::stdout().is_terminal() && no_color_unset();
        say(
            ctx,
            &format!(
                "verify: {} in {total_ms} ms\n",
                paint("all checks passed", anstyle::AnsiColor::Green, colour)
            ),
        )
    } else {
        Err(CliError::CheckFailed(format!(
            "verify: {} problem{} ({total_ms} ms)",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        )))
    }
}

/// `verify --against URL`: the database's applied revisions against the
/// files, read-only.
fn against(
    ctx: &Ctx,
    map: &RevisionMap,
    url: &str,
    mut problems: Vec<Problem>,
    warnings: Vec<Problem>,
    started: Instant,
) -> Result<(), CliError> {
    let mut client = alembic_embed::tls::connect(url)
        .map_err(|e| CliError::by_code(e.exit_code(), e.to_string()))?;
    // Read-only for sure: the session cannot write.
    client
        .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
        .map_err(|e| CliError::failed(format!("cannot make the session read-only: {e}"), None))?;
    let engine = Engine::new(map, super::database::settings(ctx));
    let current = engine
        .current(&mut client)
        .map_err(|e| CliError::failed(e.to_string(), None))?;
    for id in &current.unknown {
        problems.push(Problem {
            check: "against",
            revision: Some(id.clone()),
            file: None,
            line: None,
            message: format!("the database has revision {id}, which has no file here: the database is ahead of these files, or they come from another project"),
        });
    }
    // The same comparison and state as `current` and a run's check.
    let checked = engine.check_applied(&current);
    for drift in &checked.edited {
        let rev = map.rev(drift.index);
        problems.push(about(
            map,
            drift.index,
            "against",
            Some(rev.upgrade.marker_line),
            format!(
                "revision {} ({}) was edited after it was applied: the database recorded {}, the file has {}",
                rev.id,
                rev.path.display(),
                drift.recorded_text(),
                drift.current_text()
            ),
        ));
    }
    for drift in &checked.downgrade_changed {
        let rev = map.rev(drift.index);
        say(
            ctx,
            &format!(
                "note: the downgrade of revision {} ({}) changed since it was applied: recorded {}, the file has {}\n",
                rev.id,
                rev.path.display(),
                drift.recorded_text(),
                drift.current_text()
            ),
        )?;
    }
    let status = engine
        .status(&current)
        .map_err(|e| CliError::failed(e.to_string(), None))?;
    let listed = |ids: &[String]| {
        if ids.is_empty() {
            String::new()
        } else {
            format!(": {}", ids.join(", "))
        }
    };
    say(
        ctx,
        &format!(
            "against {}: {} applied ({} unverified{}), {} pending{}\n",
            alembic_embed::tls::describe_target(url),
            status.applied.len(),
            status.unverified.len(),
            listed(&status.unverified),
            status.pending.len(),
            listed(&status.pending)
        ),
    )?;
    finish(ctx, map, &problems, &warnings, started, None)
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A JUnit report: one test case for the chain, one per revision; each
/// problem is a failure of the case it concerns.
fn junit(map: &RevisionMap, problems: &[Problem], total_ms: u128) -> String {
    let case = |class: &str, name: &str, file: Option<&str>, failures: Vec<&Problem>| {
        let mut out = format!(
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml(class),
            xml(name)
        );
        if let Some(f) = file {
            out.push_str(&format!(" file=\"{}\"", xml(f)));
        }
        if failures.is_empty() {
            out.push_str("/>\n");
        } else {
            out.push_str(">\n");
            for p in failures {
                let first = p.message.lines().next().unwrap_or("");
                out.push_str(&format!(
                    "      <failure type=\"{}\" message=\"{}\">{}</failure>\n",
                    p.check,
                    xml(first),
                    xml(&p.message)
                ));
            }
            out.push_str("    </testcase>\n");
        }
        out
    };
    let mut cases = vec![case(
        "static",
        "chain",
        None,
        problems.iter().filter(|p| p.revision.is_none()).collect(),
    )];
    let mut failed = usize::from(problems.iter().any(|p| p.revision.is_none()));
    for &i in map.order() {
        let rev = map.rev(i);
        let failures: Vec<&Problem> = problems
            .iter()
            .filter(|p| p.revision.as_deref() == Some(rev.id.as_str()))
            .collect();
        failed += usize::from(!failures.is_empty());
        cases.push(case(
            "revision",
            &rev.id,
            Some(&rev.path.display().to_string()),
            failures,
        ));
    }
    let seconds = total_ms as f64 / 1000.0;
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"cargo alembic verify\" tests=\"{n}\" failures=\"{failed}\" time=\"{seconds:.3}\">\n  <testsuite name=\"cargo alembic verify\" tests=\"{n}\" failures=\"{failed}\" time=\"{seconds:.3}\">\n{}  </testsuite>\n</testsuites>\n",
        cases.concat(),
        n = cases.len()
    )
}

/// A topological order of `set` that takes the revisions of `preferred`
/// whenever they are ready.
fn preferring(map: &RevisionMap, set: &[bool], preferred: &[bool]) -> Vec<usize> {
    let mut done = vec![false; map.len()];
    let mut out = Vec::new();
    loop {
        let ready = |i: usize, done: &[bool]| {
            set[i]
                && !done[i]
                && map
                    .parents(i)
                    .iter()
                    .chain(map.dependencies(i))
                    .all(|&p| done[p] || !set[p])
        };
        let next = map
            .order()
            .iter()
            .copied()
            .filter(|&i| ready(i, &done))
            .min_by_key(|&i| (!preferred[i], map.rank(i)));
        match next {
            Some(i) => {
                done[i] = true;
                out.push(i);
            }
            None => return out,
        }
    }
}

/// Applies everything below merge point `m` once per parent, that
/// parent's branch first, each on a fresh database, and compares every
/// schema with the first one's.
fn branch_order(
    map: &RevisionMap,
    engine: &Engine<'_>,
    server: &Server,
    skip: &[String],
    m: usize,
    problems: &mut Vec<Problem>,
) -> Result<(), CliError> {
    let parents = map.parents(m);
    let below: Vec<Vec<bool>> = parents.iter().map(|&p| map.ancestors(&[p], true)).collect();
    let set = map.ancestors(parents, true);
    // Revisions of branch k: below parent k and below no other parent.
    let branch = |k: usize| -> Vec<bool> {
        (0..map.len())
            .map(|i| below[k][i] && below.iter().enumerate().all(|(j, b)| j == k || !b[i]))
            .collect()
    };
    let mut results = Vec::new();
    for (k, &parent) in parents.iter().enumerate() {
        let order = preferring(map, &set, &branch(k));
        match apply_in_order(map, engine, server, skip, m, parent, &order, problems)? {
            Some(snap) => results.push((parent, snap)),
            None => return Ok(()),
        }
    }
    let Some(((first, first_snap), rest)) = results.split_first() else {
        return Ok(());
    };
    for (other, snap) in rest {
        let differs = snapshot::diff(first_snap, snap);
        if !differs.is_empty() {
            problems.push(about(
                map,
                m,
                "branch-order",
                None,
                format!(
                    "the branches merged by revision {} ({}) are not independent: the schema with the branch of {} first differs from the one with the branch of {} first (- only in the first, + only in the second):\n    {}",
                    map.rev(m).id,
                    map.rev(m).path.display(),
                    map.rev(*first).id,
                    map.rev(*other).id,
                    differs.join("\n    ")
                ),
            ));
        }
    }
    Ok(())
}

/// Upgrades a fresh database revision by revision in `order` (the branch
/// of `parent` first) and takes its schema; `None`, with the problem
/// recorded, when a revision fails in that order.
#[allow(clippy::too_many_arguments)]
fn apply_in_order(
    map: &RevisionMap,
    engine: &Engine<'_>,
    server: &Server,
    skip: &[String],
    m: usize,
    parent: usize,
    order: &[usize],
    problems: &mut Vec<Problem>,
) -> Result<Option<snapshot::Snapshot>, CliError> {
    let failed = |e: &dyn std::fmt::Display| CliError::failed(e.to_string(), None);
    let db = server.database().map_err(|e| failed(&e))?;
    let mut client = alembic_embed::tls::connect(db.url()).map_err(|e| failed(&e))?;
    for &i in order {
        if let Err(e) = engine.step_one(&mut client, &map.rev(i).id, Direction::Upgrade) {
            problems.push(about(
                map,
                m,
                "branch-order",
                None,
                format!(
                    "the branches merged by revision {} ({}) depend on their order: with the branch of {} first, revision {} fails: {e}",
                    map.rev(m).id,
                    map.rev(m).path.display(),
                    map.rev(parent).id,
                    map.rev(i).id
                ),
            ));
            return Ok(None);
        }
    }
    let snap = snapshot::Snapshotter::prepare(&mut client, skip)
        .and_then(|s| s.take(&mut client))
        .map_err(|e| failed(&e))?;
    Ok(Some(snap))
}

fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none()
}

fn colour_stderr() -> bool {
    std::io::stderr().is_terminal() && no_color_unset()
}

/// Bold and coloured on a terminal, plain otherwise.
fn paint(text: &str, colour: anstyle::AnsiColor, on: bool) -> String {
    if on {
        let style = anstyle::Style::new().bold().fg_color(Some(colour.into()));
        format!("{}{text}{}", style.render(), style.render_reset())
    } else {
        text.to_owned()
    }
}

/// The chain's heads, by id.
fn heads(map: &RevisionMap) -> Vec<&str> {
    map.heads()
        .iter()
        .map(|&h| map.rev(h).id.as_str())
        .collect()
}

/// Revisions without a downgrade section, by id.
fn irreversible(map: &RevisionMap) -> Vec<&str> {
    map.order()
        .iter()
        .filter(|&&i| map.rev(i).downgrade.is_none())
        .map(|&i| map.rev(i).id.as_str())
        .collect()
}
