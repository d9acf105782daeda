//! The SQL of a squash, generated and proven: the chain upgraded to the
//! squash point on a throwaway database, its catalog planned from empty
//! (the differ's creations in dependency order, and drops back to empty),
//! then the planned revision applied to a new database must give that
//! catalog, and its downgrade an empty one again. Rows the chain left in
//! its tables must be what the squash leaves too, unless the user said no
//! data is needed.

use alembic_chain::RevisionMap;

use super::diff::{self, Phase, Step};
use super::{db_error, prove, read, start, upgrade_head, Planned, Proving};
use crate::catalog::Catalog;
use crate::errors::CliError;

/// What to put in the squash besides the schema.
pub(crate) struct Data {
    /// Statements copied from the replaced revisions, in order
    /// (`--include-data`).
    pub(crate) statements: Vec<String>,
    /// Compare the tables' rows of the chain and the squash (not with
    /// `--no-data`).
    pub(crate) compare: bool,
}

/// Plans the squash of the chain at `point` and proves it; a plan that is
/// not proven is an error, and nothing is written.
pub(crate) fn plan(
    ctx: &crate::Ctx,
    map: &RevisionMap,
    point: &str,
    message: &str,
    data: &Data,
) -> Result<Planned, CliError> {
    let (work, settings) = start(ctx, None)?;
    let fresh = work
        .server
        .database()
        .map_err(|e| db_error("cannot create a database", e))?;
    upgrade_head(&work, map, settings, point)?;
    let chain = read(&work.head, &work.skip)?;
    let empty = read(&fresh, &work.skip)?;
    let plain = |plan: diff::Plan| -> Vec<Step> {
        plan.steps
            .into_iter()
            .map(|s| Step {
                hazard: None,
                phase: Phase::Main,
                ..s
            })
            .collect()
    };
    let mut upgrade = plain(diff::plan(&empty, &chain, false));
    upgrade.extend(data.statements.iter().map(|sql| Step {
        sql: sql.clone(),
        hazard: None,
        phase: Phase::Main,
    }));
    let planned = Planned {
        message: message.to_owned(),
        upgrade,
        downgrade: plain(diff::plan(&chain, &empty, false)),
        transactional: true,
        downgrade_note: Some("back to an empty database: drops everything the squash made".into()),
    };
    let proving = Proving {
        head: &fresh,
        skip: &work.skip,
    };
    if let Some(failure) = prove(&proving, std::slice::from_ref(&planned), &chain, &empty)? {
        return Err(not_proven(point, failure));
    }
    if data.compare {
        same_rows(&work, &planned, &chain, point, data)?;
    }
    Ok(planned)
}

/// The rows the chain left in its tables must be what the squash leaves:
/// the planned upgrade applied to another fresh database, every table's
/// rows compared.
fn same_rows(
    work: &super::Work,
    planned: &Planned,
    chain: &Catalog,
    point: &str,
    data: &Data,
) -> Result<(), CliError> {
    let rows = work
        .server
        .database()
        .map_err(|e| db_error("cannot create a database", e))?;
    let mut client = rows.connect().map_err(|e| db_error("cannot connect", e))?;
    super::apply(&mut client, &planned.upgrade, true)
        .map_err(|e| not_proven(point, format!("the upgrade fails: {e}")))?;
    let mut head = work
        .head
        .connect()
        .map_err(|e| db_error("cannot connect", e))?;
    let differ = rows_differ(chain, &mut head, &mut client)?;
    if !differ.is_empty() {
        return Err(CliError::failed(
            format!(
                "the squash at {point} would not make the rows the chain leaves in {}: nothing was written",
                differ.join(", ")
            ),
            Some(if data.statements.is_empty() {
                "the rows come from statements squash cannot copy (a function, a DO block, a trigger): pass --no-data if no database needs them, or add them to the squash point's revision".into()
            } else {
                "the copied statements do not give the same rows over the squashed schema (a trigger, a later default, a dropped column): pass --no-data and write the rows yourself".into()
            }),
        ));
    }
    Ok(())
}

fn not_proven(point: &str, failure: String) -> CliError {
    CliError::failed(
        format!("the squash at {point} is not proven, so nothing was written: {failure}"),
        Some("run `cargo alembic verify` on the chain, and report the case if it passes".into()),
    )
}

/// The tables whose rows differ between two databases with one schema,
/// with their row counts (`public.kinds (3 rows, squash 0)`).
fn rows_differ(
    catalog: &Catalog,
    chain: &mut postgres::Client,
    squash: &mut postgres::Client,
) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    for table in catalog.of("table") {
        let sql = format!(
            "SELECT count(*)::text || ' ' || coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') FROM {} AS t",
            table.name
        );
        let digest = |client: &mut postgres::Client| -> Result<String, CliError> {
            let row = client
                .query_one(&sql, &[])
                .map_err(|e| db_error(&format!("cannot read {}", table.name), e))?;
            Ok(row.get::<_, String>(0))
        };
        let (a, b) = (digest(chain)?, digest(squash)?);
        if a != b {
            let count = |d: &str| d.split(' ').next().unwrap_or("0").to_owned();
            out.push(format!(
                "{} ({} rows, the squash {})",
                table.name,
                count(&a),
                count(&b)
            ));
        }
    }
    Ok(out)
}
