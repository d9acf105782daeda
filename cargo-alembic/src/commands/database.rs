//! Commands that use a database: `upgrade`, `downgrade`, `stamp`,
//! `current`, and `history --indicate-current`; `--sql` prints instead.

use std::io::IsTerminal;

use alembic_core::RevisionMap;
use alembic_embed::cli_engine::{Current, Engine, Session, Settings};
use alembic_embed::{EngineError, Report};
use serde::Serialize;

use crate::args::{AcceptArgs, CurrentArgs, DowngradeArgs, Format, StampArgs, UpgradeArgs};
use crate::errors::CliError;
use crate::output::{emit, to_json};
use crate::Ctx;

fn print(text: &str) -> Result<(), CliError> {
    emit(text).map_err(|e| CliError::Io {
        path: "stdout".into(),
        source: e,
    })
}

/// The engine's settings from the resolved configuration.
pub(crate) fn settings(ctx: &Ctx) -> Settings {
    settings_with(ctx, false, None)
}

fn settings_with(ctx: &Ctx, per_migration_flag: bool, tag: Option<&String>) -> Settings {
    Settings {
        tag: tag.cloned(),
        version_table: ctx.config.version_table.clone(),
        version_table_schema: ctx.config.version_table_schema.clone(),
        transaction_per_migration: per_migration_flag || ctx.config.transaction_per_migration,
        tool: format!("cargo-alembic {}", env!("CARGO_PKG_VERSION")),
        lock_timeout: ctx.config.lock_timeout,
        statement_lock_timeout: ctx.config.statement_lock_timeout,
        ..Settings::default()
    }
}

/// Connects with the configured URL (TLS as libpq's `sslmode` says); a
/// failure is one clear line without the password.
pub(crate) fn connect(ctx: &Ctx) -> Result<postgres::Client, CliError> {
    let url = ctx.config.database_url.as_ref().ok_or_else(|| {
        CliError::usage(
            "no database URL",
            Some(format!(
                "pass --database-url, set {} (or put it in .env), or use --sql to print the SQL instead",
                ctx.config.database_url_env
            )),
        )
    })?;
    alembic_embed::tls::connect(url.expose())
        .map_err(|e| CliError::by_code(e.exit_code(), e.to_string()))
}

/// Loads the chain while another thread connects, takes the migration lock
/// and reads the database's state: each takes milliseconds, and a no-op
/// `upgrade` is little else. A chain that does not load is reported first
/// (dropping the connection releases the lock).
fn load_and_lock(
    ctx: &Ctx,
    settings: &Settings,
) -> Result<(RevisionMap, postgres::Client, Session), CliError> {
    std::thread::scope(|scope| {
        let locking = scope.spawn(|| -> Result<(postgres::Client, Session), CliError> {
            let mut client = connect(ctx)?;
            let session = settings.open_session(&mut client).map_err(engine_error)?;
            Ok((client, session))
        });
        let map = ctx.load();
        // The lock and the state usually arrive after the chain: meanwhile,
        // compute the checksums that the run verifies.
        if let Ok(map) = &map {
            for r in map.revisions() {
                r.upgrade.checksum();
                if let Some(d) = &r.downgrade {
                    d.checksum();
                }
            }
        }
        let locked = locking
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let map = map?;
        let (client, session) = locked?;
        Ok((map, client, session))
    })
}

fn engine_error(e: EngineError) -> CliError {
    match e {
        EngineError::Resolve(r) => CliError::Resolve(r),
        other => CliError::by_code(other.exit_code(), other.to_string()),
    }
}

fn print_report(ctx: &Ctx, report: &Report, verb: &str, tag: Option<&str>) -> Result<(), CliError> {
    for note in report.notes() {
        eprintln!("{note}");
    }
    if ctx.format == Format::Json {
        #[derive(Serialize)]
        struct StepJson<'a> {
            revision: &'a str,
            description: &'a str,
            duration_ms: f64,
        }
        #[derive(Serialize)]
        struct ReportJson<'a> {
            before: &'a [String],
            after: &'a [String],
            steps: Vec<StepJson<'a>>,
            unverified: &'a [String],
            warnings: &'a [String],
            /// `--tag`, recorded with each revision applied.
            #[serde(skip_serializing_if = "Option::is_none")]
            tag: Option<&'a str>,
        }
        let steps = report
            .steps
            .iter()
            .map(|s| StepJson {
                revision: &s.revision,
                description: &s.description,
                duration_ms: s.duration.as_secs_f64() * 1000.0,
            })
            .collect();
        return print(&to_json(&ReportJson {
            before: &report.before,
            after: &report.after,
            steps,
            unverified: &report.unverified,
            warnings: &report.warnings,
            tag,
        }));
    }
    print(&format!("{}\n", report.summary(verb)))
}

/// Runs at least this long get a progress bar (on a terminal).
const BAR_FROM: usize = 20;

/// Whether a run shows a progress bar: on a terminal, and long.
pub(crate) fn wants_bar(stdout_is_terminal: bool, total: usize) -> bool {
    stdout_is_terminal && total >= BAR_FROM
}

/// Prints Alembic's line for each revision, and keeps a progress bar below
/// the lines when stdout is a terminal and the run is long.
fn step_printer(ctx: &Ctx) -> impl FnMut(&alembic_embed::Step) + '_ {
    let terminal = std::io::stdout().is_terminal();
    let mut bar: Option<indicatif::ProgressBar> = None;
    move |s| {
        if ctx.format != Format::Human {
            return;
        }
        let line = format!(
            "{} ({:.0} ms)",
            s.description,
            s.duration.as_secs_f64() * 1000.0
        );
        if bar.is_none() && wants_bar(terminal, s.total) {
            let b = indicatif::ProgressBar::with_draw_target(
                Some(s.total as u64),
                indicatif::ProgressDrawTarget::stdout(),
            );
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} revisions, {elapsed}")
            {
                b.set_style(style);
            }
            bar = Some(b);
        }
        match &bar {
            Some(b) => {
                b.println(line);
                b.inc(1);
                if s.position == s.total {
                    b.finish_and_clear();
                }
            }
            None => {
                let _ = emit(&format!("{line}\n"));
            }
        }
    }
}

/// Runs `upgrade`.
pub(crate) fn upgrade(ctx: &Ctx, args: &UpgradeArgs) -> Result<(), CliError> {
    if args.sql {
        let map = ctx.load()?;
        let engine = Engine::new(
            &map,
            settings_with(ctx, args.transaction_per_migration, args.tag.as_ref()),
        );
        return print(
            &engine
                .upgrade_sql_range(&args.revision)
                .map_err(engine_error)?,
        );
    }
    if args.revision.contains(':') {
        return Err(CliError::usage(
            "a range `from:to` needs --sql",
            Some("online, `upgrade` starts from the database's current state".into()),
        ));
    }
    let settings = settings_with(ctx, args.transaction_per_migration, args.tag.as_ref());
    let (map, mut client, session) = load_and_lock(ctx, &settings)?;
    let engine = Engine::new(&map, settings);
    let report = engine
        .upgrade_in(&mut client, session, &args.revision, &mut step_printer(ctx))
        .map_err(engine_error)?;
    let printed = print_report(ctx, &report, "upgrade", args.tag.as_deref());
    // Close the connection properly; the chain may be left to the
    // operating system.
    drop(client);
    drop(engine);
    ctx.discard(map);
    printed
}

/// Runs `downgrade`.
pub(crate) fn downgrade(ctx: &Ctx, args: &DowngradeArgs) -> Result<(), CliError> {
    if args.sql {
        let map = ctx.load()?;
        let engine = Engine::new(
            &map,
            settings_with(ctx, args.transaction_per_migration, args.tag.as_ref()),
        );
        return print(
            &engine
                .downgrade_sql_range(&args.revision)
                .map_err(engine_error)?,
        );
    }
    let settings = settings_with(ctx, args.transaction_per_migration, args.tag.as_ref());
    let (map, mut client, session) = load_and_lock(ctx, &settings)?;
    let engine = Engine::new(&map, settings);
    let report = engine
        .downgrade_in(&mut client, session, &args.revision, &mut step_printer(ctx))
        .map_err(engine_error)?;
    print_report(ctx, &report, "downgrade", args.tag.as_deref())
}

/// Runs `stamp`.
pub(crate) fn stamp(ctx: &Ctx, args: &StampArgs) -> Result<(), CliError> {
    let map = ctx.load()?;
    let engine = Engine::new(&map, settings(ctx));
    let targets: Vec<&str> = args.revisions.iter().map(String::as_str).collect();
    if args.sql {
        return print(
            &engine
                .stamp_sql_offline(&[], &targets, args.purge)
                .map_err(engine_error)?,
        );
    }
    let mut client = connect(ctx)?;
    let report = engine
        .stamp(&mut client, &targets, args.purge)
        .map_err(engine_error)?;
    if ctx.format == Format::Json {
        return print_report(ctx, &report, "stamp", args.tag.as_deref());
    }
    print(&format!("{}\n", report.stamped()))
}

/// The database's state, for `current` and `history -i`.
pub(crate) fn read_current(ctx: &Ctx, map: &RevisionMap) -> Result<Current, CliError> {
    let mut client = connect(ctx)?;
    Engine::new(map, settings(ctx))
        .current(&mut client)
        .map_err(engine_error)
}

/// Runs `current`.
pub(crate) fn current(ctx: &Ctx, args: &CurrentArgs) -> Result<(), CliError> {
    let map = ctx.load()?;
    let engine = Engine::new(&map, settings(ctx));
    let current = read_current(ctx, &map)?;
    let unverified = engine.unverified(&current);
    let edited = engine.edited(&current);
    if ctx.format == Format::Json {
        #[derive(Serialize)]
        struct CurrentJson<'a> {
            heads: &'a [String],
            unknown: &'a [String],
            applied: usize,
            unverified: &'a [String],
            edited: &'a [String],
            /// The `--tag` each applied revision was recorded with.
            tags: std::collections::BTreeMap<&'a str, &'a str>,
        }
        let tags = current
            .ledger
            .iter()
            .filter_map(|(id, row)| Some((id.as_str(), row.tag.as_deref()?)))
            .collect();
        return print(&to_json(&CurrentJson {
            heads: &current.heads,
            unknown: &current.unknown,
            applied: engine.applied(&current).len(),
            unverified: &unverified,
            edited: &edited,
            tags,
        }));
    }
    let out = engine.current_text(&current, args.verbose);
    print(&out)?;
    if !unverified.is_empty() {
        eprintln!(
            "note: {} applied revision{} without a ledger row, not verified: {}",
            unverified.len(),
            if unverified.len() == 1 { "" } else { "s" },
            unverified.join(", ")
        );
    }
    if !edited.is_empty() {
        return Err(CliError::failed(
            format!("applied revision{} edited since {} ran: {}", if edited.len() == 1 { "" } else { "s" }, if edited.len() == 1 { "it" } else { "they" }, edited.join(", ")),
            Some("`cargo alembic upgrade` will refuse to run until the files are restored or the edit is accepted".into()),
        ));
    }
    Ok(())
}

/// Who accepts an edit: `--by`, else git's `user.email`, else `$USER`.
fn who(args: &AcceptArgs) -> String {
    if let Some(by) = &args.by {
        return by.clone();
    }
    let git = std::process::Command::new("git")
        .args(["config", "user.email"])
        .output();
    if let Ok(out) = git {
        let email = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !email.is_empty() {
            return email;
        }
    }
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

/// Runs `accept`.
pub(crate) fn accept(ctx: &Ctx, args: &AcceptArgs) -> Result<(), CliError> {
    if args.reason.trim().is_empty() {
        return Err(CliError::usage(
            "--reason must say why the edit is safe",
            None,
        ));
    }
    let map = ctx.load()?;
    let mut client = connect(ctx)?;
    let by = who(args);
    let engine = Engine::new(&map, settings(ctx));
    let accepted = engine
        .accept(&mut client, &args.revision, &args.reason, &by)
        .map_err(engine_error)?;
    print(&alembic_embed::cli_engine::accepted_text(&accepted, &by))
}
