//! `verify`: proves the chain. The static checks (heads, lint), then on a
//! throwaway PostgreSQL the stairway (each revision upgraded, downgraded,
//! compared and upgraded again) and the branch order at each merge point;
//! or, with `--against URL`, a real database's applied revisions against
//! the files. One module per part; `report` writes the result as text,
//! JSON, GitHub annotations or JUnit.

pub(crate) mod against;
mod branch_order;
mod report;
mod squashes;
mod stairway;

use std::time::Instant;

use alembic_chain::{DatabaseUrl, RevisionMap};
use alembic_embed::cli_engine::{Engine, Settings};
use alembic_embed::EngineError;
use alembic_throwaway::{Choice, Server};
use serde::Serialize;

use crate::args::{Format, VerifyArgs};
use crate::errors::CliError;
use crate::output::print;
use crate::Ctx;

use report::{finish, Run, Timings};

/// One thing `verify` found.
#[derive(Debug, Serialize)]
pub(crate) struct Problem {
    /// `static`, `upgrade`, `stairway` or `against`.
    pub(crate) check: &'static str,
    pub(crate) revision: Option<String>,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<usize>,
    pub(crate) message: String,
}

fn say(ctx: &Ctx, text: &str) -> Result<(), CliError> {
    if matches!(ctx.format, Format::Json | Format::Junit) {
        return Ok(());
    }
    print(text)
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

/// Runs `verify`.
pub(crate) fn run(ctx: &Ctx, args: &VerifyArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let map = ctx.load()?;
    let (problems, warnings) = static_checks(ctx, &map, args)?;
    let static_ms = started.elapsed().as_millis();
    if let Some(given) = &args.against {
        let url = against_url(ctx, given.as_ref())?;
        return against::against(ctx, &map, url, problems, warnings, started);
    }
    let mut problems = problems;
    let t = Instant::now();
    let server = start_server(ctx, args)?;
    let db = server
        .database()
        .map_err(|e| CliError::failed(e.to_string(), None))?;
    let server_ms = t.elapsed().as_millis();
    say(
        ctx,
        &format!("server: {} ({server_ms} ms)\n", server.description()),
    )?;
    if problems.is_empty() {
        // On this server: a second one would cost its start again.
        problems.extend(schema_drift(ctx, &map, server.admin_url())?);
    }
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
    let second = || {
        let db = server
            .database()
            .map_err(|e| CliError::failed(e.to_string(), None))?;
        let client = alembic_embed::tls::connect(db.url())
            .map_err(|e| CliError::failed(e.to_string(), None))?;
        Ok((db, client))
    };
    let stairs = stairway::walk(ctx, &engine, &mut client, second, &skip, &mut problems)?;
    let branch_order_ms = branch_order::check_all(ctx, &engine, &server, &skip, &mut problems)?
        + squashes::check_all(ctx, &engine, &server, &skip, &mut problems)?;
    let run = Run {
        server: server.description().to_owned(),
        stairway_checked: stairs.checked,
        timings: Timings {
            static_ms,
            server_ms,
            stairway_ms: stairs.took.as_millis(),
            snapshot_ms: stairs.snapshots.as_millis(),
            snapshots: stairs.snapshot_count,
            branch_order_ms,
            total_ms: 0,
        },
    };
    drop(client);
    drop(db);
    drop(server);
    finish(ctx, &map, &problems, &warnings, started, Some(run))
}

/// With a desired schema configured: the head against it (the check
/// `cargo alembic check` makes), a problem listing what autogenerate would
/// write.
fn schema_drift(ctx: &Ctx, map: &RevisionMap, on: &str) -> Result<Option<Problem>, CliError> {
    let Some(drift) = crate::autogen::drift(ctx, map, None, Some(on))? else {
        return Ok(None);
    };
    if drift.changes.is_empty() {
        say(ctx, "schema: the head matches it\n")?;
        return Ok(None);
    }
    Ok(Some(Problem {
        check: "schema",
        revision: None,
        message: drift.message(),
        file: Some(drift.schema),
        line: None,
    }))
}

/// The database `--against` checks: its URL, or without one the configured
/// database URL.
pub(crate) fn against_url<'a>(
    ctx: &'a Ctx,
    given: Option<&'a DatabaseUrl>,
) -> Result<&'a str, CliError> {
    given
        .or(ctx.config.database_url.as_ref())
        .map(DatabaseUrl::expose)
        .ok_or_else(|| {
            CliError::usage(
                "--against without a URL checks the configured database, and there is none",
                Some(format!(
                    "pass --against URL or --database-url, or set {}",
                    ctx.config.database_url_env
                )),
            )
        })
}

/// The static checks: the chain's statements lex, one head (unless
/// allowed), and lint: its errors are problems, its warnings reported.
pub(crate) fn static_checks(
    ctx: &Ctx,
    map: &RevisionMap,
    args: &VerifyArgs,
) -> Result<(Vec<Problem>, Vec<Problem>), CliError> {
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    map.lex_all()?;
    // The replaced files a squash keeps are read for databases inside its
    // range: they must form the graph they formed before.
    map.expanded()?.lex_all()?;
    let heads = heads(map);
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
    for &i in map.order() {
        let rev = map.rev(i);
        for f in alembic_chain::lint(rev).map_err(|e| CliError::Load(e.into()))? {
            let message = format!(
                "revision {} ({}:{}): {}",
                rev.id,
                rev.path.display(),
                f.line,
                f.message
            );
            let p = about(map, i, "lint", Some(f.line), message);
            match f.severity {
                alembic_chain::Severity::Error => problems.push(p),
                alembic_chain::Severity::Warning => warnings.push(p),
            }
        }
    }
    for (i, line) in crate::commands::import_alembic::manual_revisions(map) {
        let rev = map.rev(i);
        let message = format!(
            "revision {} ({}:{line}) {}: write its SQL and remove that statement",
            rev.id,
            rev.path.display(),
            crate::commands::import_alembic::MANUAL
        );
        problems.push(about(map, i, "static", Some(line), message));
    }
    let irreversible = irreversible(map);
    say(
        ctx,
        &format!(
            "static: {} revision{}, {} head{} ({}), {} irreversible{}\n",
            map.len(),
            if map.len() == 1 { "" } else { "s" },
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
    Ok((problems, warnings))
}

/// A throwaway server: an existing one only when asked explicitly
/// (`--database-url`), never `DATABASE_URL` from the environment.
fn start_server(ctx: &Ctx, args: &VerifyArgs) -> Result<Server, CliError> {
    let choice = match (&ctx.database_url_flag, args.local, args.docker) {
        (Some(url), _, _) => Choice::Url(url.expose().to_owned()),
        (None, true, _) => Choice::Local,
        (None, _, true) => Choice::Docker,
        (None, false, false) => Choice::Auto(None),
    };
    super::database::throwaway(choice, "verify needs a throwaway PostgreSQL")
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
