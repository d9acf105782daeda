//! `adopt sqlx|refinery|diesel [PATH]`: takes over a database another tool
//! migrated, running nothing. The tool's table says which migrations ran;
//! each must have its original file in PATH (with the checksum the tool
//! recorded, where it keeps one: sqlx's SHA-384, refinery's SipHash) and be
//! a revision of the chain (`import` made them, ids = versions), applied as
//! a prefix of the chain's order. Then, under the migration lock and in one
//! transaction, `alembic_version` is set to the last of them and each gets
//! a ledger row marked as adopted (from which tool, with its checksum). Any
//! doubt refuses, touching nothing; the tool's table is left in place.

use std::collections::HashMap;
use std::path::PathBuf;

use alembic_chain::RevisionMap;
use alembic_embed::cli_engine::{quote_literal, Engine};
use sha2::{Digest, Sha384};

use super::import::{read_migrations, shown, tool_name, Foreign};
use crate::args::{AdoptArgs, ImportTool};
use crate::errors::CliError;
use crate::output::print;
use crate::Ctx;

/// A migration the other tool recorded as applied.
struct Applied {
    version: String,
    /// The checksum it recorded, as text (sqlx: hex; refinery: the number).
    checksum: Option<String>,
    /// Whether it finished (sqlx's `success`).
    success: bool,
    /// When, as the server prints it.
    at: Option<String>,
    /// How long, in milliseconds (sqlx keeps nanoseconds).
    duration_ms: Option<f64>,
}

/// The other tool's table and how to read it.
fn table(tool: ImportTool) -> (&'static str, &'static str) {
    match tool {
        ImportTool::Sqlx => (
            "_sqlx_migrations",
            "SELECT version::text, encode(checksum, 'hex'), success::text, installed_on::text, \
             (execution_time / 1e6)::text FROM _sqlx_migrations ORDER BY version",
        ),
        ImportTool::Refinery => (
            "refinery_schema_history",
            // `applied_on` is refinery's own text, not a timestamp.
            "SELECT version::text, checksum::text, 'true', NULL, NULL \
             FROM refinery_schema_history ORDER BY version",
        ),
        ImportTool::Diesel | ImportTool::Alembic => (
            "__diesel_schema_migrations",
            "SELECT replace(version, '-', ''), NULL, 'true', run_on::text, NULL \
             FROM __diesel_schema_migrations ORDER BY version",
        ),
    }
}

/// The checksum the tool would record for the file's migration.
fn checksum(tool: ImportTool, m: &Foreign) -> Option<String> {
    match tool {
        ImportTool::Sqlx => Some(
            Sha384::digest(m.up.1.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        ),
        ImportTool::Refinery => {
            let stem = m.up.0.file_stem()?.to_string_lossy().into_owned();
            super::refinery::checksum(&stem, &m.up.1)
                .ok()
                .map(|c| c.to_string())
        }
        ImportTool::Diesel | ImportTool::Alembic => None,
    }
}

/// Runs `adopt`.
pub(crate) fn run(ctx: &Ctx, args: &AdoptArgs) -> Result<(), CliError> {
    let dir = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from("migrations"));
    let tool = args.tool.files();
    let migrations = read_migrations(ctx, tool, &dir)?;
    let map = ctx.load()?;
    let mut client = super::database::connect(ctx)?;
    let applied = read_applied(&mut client, tool)?;
    let adopted = check(ctx, tool, &map, &migrations, &applied)?;
    let Some(last) = adopted.last() else {
        return Err(CliError::failed(
            format!(
                "{} records no applied migration: there is nothing to adopt",
                table(tool).0
            ),
            Some("run `cargo alembic upgrade head` on this database instead".into()),
        ));
    };
    let head = map.rev(last.0).id.clone();
    if args.dry_run {
        return print(&format!(
            "Would adopt {} {} migration{}: the database would be at {head}; nothing was written\n",
            adopted.len(),
            tool_name(tool),
            if adopted.len() == 1 { "" } else { "s" },
        ));
    }
    write(ctx, &mut client, tool, &map, &adopted, &head)?;
    print(&format!(
        "Adopted {} {} migration{}: the database is at {head}; {} is left in place\n",
        adopted.len(),
        tool_name(tool),
        if adopted.len() == 1 { "" } else { "s" },
        table(tool).0
    ))
}

fn read_applied(client: &mut postgres::Client, tool: ImportTool) -> Result<Vec<Applied>, CliError> {
    let (name, query) = table(tool);
    let failed = |e: postgres::Error| {
        let reason = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |db| db.message().to_owned());
        CliError::failed(format!("cannot read {name}: {reason}"), None)
    };
    let exists = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])
        .map_err(failed)?;
    if !exists.get::<_, bool>(0) {
        return Err(CliError::failed(
            format!("this database has no {name} table: {} never migrated it (or another schema is on the search path)", tool_name(tool)),
            None,
        ));
    }
    let rows = client.simple_query(query).map_err(failed)?;
    Ok(rows
        .iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(Applied {
                version: r.get(0).unwrap_or_default().to_owned(),
                checksum: r.get(1).map(str::to_owned),
                success: r.get(2) == Some("true"),
                at: r.get(3).map(str::to_owned),
                duration_ms: r.get(4).and_then(|d| d.parse().ok()),
            }),
            _ => None,
        })
        .collect())
}

/// Every refusal, before anything is written: each applied migration has
/// its file, the checksum the tool recorded, finished, and is a revision
/// of the chain; together they are the first revisions of the chain's
/// order. The adopted revisions (by index) with their record, in order.
fn check<'a>(
    ctx: &Ctx,
    tool: ImportTool,
    map: &RevisionMap,
    migrations: &[Foreign],
    applied: &'a [Applied],
) -> Result<Vec<(usize, &'a Applied)>, CliError> {
    let files: HashMap<&str, &Foreign> = migrations.iter().map(|m| (m.id.as_str(), m)).collect();
    let mut problems = Vec::new();
    let mut adopted = Vec::new();
    for a in applied {
        if !a.success {
            problems.push(format!("migration {} failed or did not finish ({} recorded success = false): repair it with {} first", a.version, table(tool).0, tool_name(tool)));
            continue;
        }
        let Some(m) = files.get(a.version.as_str()) else {
            problems.push(format!(
                "migration {} ran on this database but has no file in the {} folder",
                a.version,
                tool_name(tool)
            ));
            continue;
        };
        let expected = checksum(tool, m);
        if a.checksum.is_some() && expected != a.checksum {
            problems.push(format!(
                "{} was edited after it ran: {} recorded {}, the file has {}",
                shown(ctx, &m.source),
                tool_name(tool),
                a.checksum.as_deref().unwrap_or("none"),
                expected.as_deref().unwrap_or("none")
            ));
            continue;
        }
        match map.index_of(&a.version) {
            Some(i) => adopted.push((i, a)),
            None => problems.push(format!(
                "migration {} is not a revision of this chain: import the {} folder first (`cargo alembic import {} PATH`)",
                a.version,
                tool_name(tool),
                tool_name(tool)
            )),
        }
    }
    if problems.is_empty() {
        adopted.sort_by_key(|(i, _)| map.rank(*i));
        let prefix: Vec<usize> = map.order().iter().copied().take(adopted.len()).collect();
        if adopted.iter().map(|(i, _)| *i).ne(prefix) {
            problems.push("the applied migrations are not the first ones of the chain (some in between never ran): upgrade with the other tool first, or adopt by hand with `stamp`".into());
        }
    }
    if problems.is_empty() {
        Ok(adopted)
    } else {
        Err(CliError::failed(
            format!("cannot adopt: {}", problems.join("; ")),
            Some("nothing was written".into()),
        ))
    }
}

/// Under the migration lock, in one transaction: the version table at the
/// last adopted revision and a ledger row for each (what this chain's files
/// hold now, so they are verified from here on).
fn write(
    ctx: &Ctx,
    client: &mut postgres::Client,
    tool: ImportTool,
    map: &RevisionMap,
    adopted: &[(usize, &Applied)],
    head: &str,
) -> Result<(), CliError> {
    let settings = super::database::settings(ctx);
    let session = settings
        .open_session(client)
        .map_err(|e| CliError::by_code(e.exit_code(), e.to_string()))?;
    if !session.heads().is_empty() {
        let heads = session.heads().join(", ");
        session.release(client);
        return Err(CliError::failed(
            format!("the database already has a version table at {heads}: it is under cargo alembic (or Alembic) already"),
            Some("nothing was written".into()),
        ));
    }
    let engine = Engine::new(map, settings);
    let mut sql = format!(
        "BEGIN;\nINSERT INTO {} (version_num) VALUES ({});\n",
        engine.version_table(),
        quote_literal(head)
    );
    for (i, a) in adopted {
        let rev = map.rev(*i);
        let tool_text = format!(
            "adopted from {}{}",
            tool_name(tool),
            a.checksum
                .as_ref()
                .map_or_else(String::new, |c| format!(" (checksum {c})"))
        );
        sql.push_str(&format!(
            "INSERT INTO {} (revision, upgrade_checksum, downgrade_checksum, applied_at, duration_ms, tool) \
             VALUES ({}, {}, {}, COALESCE({}::timestamptz, now()), {}, {});\n",
            engine.ledger_table(),
            quote_literal(&rev.id),
            quote_literal(rev.upgrade.checksum().as_str()),
            rev.downgrade
                .as_ref()
                .map_or_else(|| "NULL".into(), |d| quote_literal(d.checksum().as_str())),
            a.at.as_deref().map_or_else(|| "NULL".into(), quote_literal),
            a.duration_ms.map_or_else(|| "NULL".into(), |d| d.to_string()),
            quote_literal(&tool_text)
        ));
    }
    sql.push_str("COMMIT;\n");
    let result = client.batch_execute(&sql);
    if result.is_err() {
        let _ = client.batch_execute("ROLLBACK");
    }
    session.release(client);
    result.map_err(|e| {
        let reason = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |db| db.message().to_owned());
        CliError::failed(
            format!("cannot record the adoption: {reason}"),
            Some("nothing was written".into()),
        )
    })
}
