//! `verify`: proves the chain against a throwaway PostgreSQL. This first
//! version runs the static checks, then the stairway: for each revision in
//! order, upgrade it, snapshot, downgrade it, compare with the snapshot
//! taken before the upgrade, and upgrade it again (which also upgrades the
//! whole chain one revision at a time).

use std::time::Instant;

use alembic_embed::{Direction, Engine, Settings};
use alembic_throwaway::{Choice, Server};

use crate::args::VerifyArgs;
use crate::errors::CliError;
use crate::output::emit;
use crate::snapshot;
use crate::Ctx;

fn say(text: &str) -> Result<(), CliError> {
    emit(text).map_err(|e| CliError::Io {
        path: "stdout".into(),
        source: e,
    })
}

/// Runs `verify`.
pub(crate) fn run(ctx: &Ctx, args: &VerifyArgs) -> Result<(), CliError> {
    let started = Instant::now();
    let mut problems: Vec<String> = Vec::new();

    // 1. Static.
    let map = ctx.load()?;
    map.lex_all()?;
    let heads: Vec<&str> = map
        .heads()
        .iter()
        .map(|&h| map.rev(h).id.as_str())
        .collect();
    if heads.len() > 1 && !(args.allow_multiple_heads || ctx.config.allow_multiple_heads) {
        problems.push(format!(
            "multiple heads: {}; merge them, or pass --allow-multiple-heads",
            heads.join(", ")
        ));
    }
    let irreversible: Vec<&str> = map
        .order()
        .iter()
        .filter(|&&i| map.rev(i).downgrade.is_none())
        .map(|&i| map.rev(i).id.as_str())
        .collect();
    say(&format!(
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
    ))?;

    // 2. A throwaway server.
    let choice = match (&ctx.database_url_flag, args.local, args.docker) {
        (Some(url), _, _) => Choice::Url(url.clone()),
        (None, true, _) => Choice::Local,
        (None, _, true) => Choice::Docker,
        (None, false, false) => Choice::Auto(None),
    };
    // Best effort: a second handler (in tests, say) is not an error.
    let _ = alembic_throwaway::cleanup_on_interrupt();
    let t = Instant::now();
    let server = Server::start(choice).map_err(|e| CliError::failed(e.to_string(), Some("install the PostgreSQL server (initdb, postgres), run Docker, or pass --database-url".into())))?;
    let db = server
        .database()
        .map_err(|e| CliError::failed(e.to_string(), None))?;
    say(&format!(
        "server: {} ({} ms)\n",
        server.description(),
        t.elapsed().as_millis()
    ))?;
    let mut client =
        alembic_embed::tls::connect(db.url()).map_err(|e| CliError::failed(e.to_string(), None))?;
    let settings = Settings {
        version_table: ctx.config.version_table.clone(),
        version_table_schema: ctx.config.version_table_schema.clone(),
        transaction_per_migration: ctx.config.transaction_per_migration,
        tool: format!("cargo-alembic {} verify", env!("CARGO_PKG_VERSION")),
    };
    let skip = vec![
        settings.version_table.clone(),
        format!("{}_ledger", settings.version_table),
    ];
    let engine = Engine::new(&map, settings);

    // 3. Stairway.
    let t = Instant::now();
    let snap = |client: &mut postgres::Client| {
        snapshot::take(client, &skip).map_err(|e| {
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
            problems.push(format!(
                "upgrade of revision {} ({file}) failed: {e}",
                rev.id
            ));
            break;
        }
        let after = snap(&mut client)?;
        if rev.downgrade.is_some() {
            if let Err(e) = engine.step_one(&mut client, &rev.id, Direction::Downgrade) {
                problems.push(format!(
                    "downgrade of revision {} ({file}) failed: {e}",
                    rev.id
                ));
                break;
            }
            let undone = snap(&mut client)?;
            let left = snapshot::diff(&before, &undone);
            if !left.is_empty() {
                problems.push(format!(
                    "the downgrade of revision {} ({file}) does not undo its upgrade; compared with the schema before the upgrade (- missing, + left behind):\n    {}",
                    rev.id,
                    left.join("\n    ")
                ));
                // What follows would fail for this reason: stop here.
                say(&format!("stairway: stopped at revision {}\n", rev.id))?;
                break;
            }
            if let Err(e) = engine.step_one(&mut client, &rev.id, Direction::Upgrade) {
                problems.push(format!(
                    "upgrade of revision {} ({file}) after its downgrade failed: {e}",
                    rev.id
                ));
                break;
            }
            let again = snap(&mut client)?;
            let differs = snapshot::diff(&after, &again);
            if !differs.is_empty() {
                problems.push(format!(
                    "upgrading revision {} ({file}) again gives another schema than the first time:\n    {}",
                    rev.id,
                    differs.join("\n    ")
                ));
            }
            before = again;
        } else {
            before = after;
        }
        checked += 1;
    }
    say(&format!(
        "stairway: {checked} of {} revisions upgraded, downgraded and upgraded again, schemas compared ({} ms)\n",
        map.len(),
        t.elapsed().as_millis()
    ))?;
    drop(client);
    drop(db);
    drop(server);

    for p in &problems {
        eprintln!("error: {p}");
    }
    let total = started.elapsed().as_millis();
    if problems.is_empty() {
        say(&format!("verify: all checks passed in {total} ms\n"))
    } else {
        Err(CliError::CheckFailed(format!(
            "verify: {} problem{} ({total} ms)",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        )))
    }
}
