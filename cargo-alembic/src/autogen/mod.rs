//! `revision --autogenerate` and `migrate`: the chain at its head in one
//! throwaway database, the desired schema (the schema files, or a live
//! database) in another; their catalogs compared ([`diff`]); the plan
//! written as revision files on top of the head; and proven before it is
//! final: the upgrade, applied to a copy of the head database, must give
//! the desired catalog, and the downgrade must give the head's back. A plan
//! that fails its proof is still written, the difference printed, and the
//! command exits 1.

pub(crate) mod diff;
pub(crate) mod schema_file;
pub(crate) mod squash;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alembic_chain::{DatabaseUrl, Resolver, RevisionMap, Target};
use alembic_embed::cli_engine::{Engine, Settings};
use alembic_throwaway::{Choice, Database, Server};

use crate::catalog::Catalog;
use crate::errors::CliError;
use crate::output::print;
use crate::Ctx;

use diff::{Phase, Plan, Step};
use schema_file::{Rename, SchemaFile};

/// What autogenerate is asked.
pub(crate) struct Request<'a> {
    pub(crate) message: String,
    pub(crate) rev_id: Option<&'a str>,
    pub(crate) head: Option<&'a str>,
    pub(crate) schema: Option<PathBuf>,
    pub(crate) from_database: Option<&'a DatabaseUrl>,
}

/// One revision to write: its statements both ways.
pub(crate) struct Planned {
    pub(crate) message: String,
    pub(crate) upgrade: Vec<Step>,
    pub(crate) downgrade: Vec<Step>,
    pub(crate) transactional: bool,
    /// Said in the downgrade section when it is empty on purpose.
    pub(crate) downgrade_note: Option<String>,
}

/// Where the time went.
#[derive(Debug, Default)]
pub(crate) struct Timings {
    pub(crate) server: Duration,
    pub(crate) applying: Duration,
    /// Both catalog reads, added up (they overlap with the applying).
    pub(crate) catalogs: Duration,
    pub(crate) reading: Duration,
    pub(crate) diffing: Duration,
    pub(crate) proving: Duration,
}

/// The databases of one autogenerate run.
struct Work {
    server: Server,
    head: Database,
    /// The version table and the ledger: not part of any schema.
    skip: Vec<String>,
}

fn db_error(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::failed(format!("{what}: {e}"), None)
}

/// Writes one planned revision on a parent (`None`: a root), with the id
/// given or a new one; gives back its id and path.
pub(crate) type Writer<'a> = dyn FnMut(&RevisionMap, Option<&str>, Option<&str>, Planned) -> Result<(String, PathBuf), CliError>
    + 'a;

/// The head and the desired schema, compared.
struct Compared {
    work: Work,
    desired: Catalog,
    head: Catalog,
    renames: Vec<Rename>,
    up: Plan,
    down: Plan,
    timings: Timings,
}

/// Starts a throwaway server, upgrades the chain to `head` in one
/// database, makes the desired schema in another (or reads the live one),
/// and plans both ways.
fn compare(
    ctx: &Ctx,
    map: &RevisionMap,
    head: Option<&str>,
    schema: Option<Vec<SchemaFile>>,
    from_database: Option<&DatabaseUrl>,
    on: Option<&str>,
) -> Result<Compared, CliError> {
    let mut timings = Timings::default();
    let t = Instant::now();
    let (work, settings) = start(ctx, on)?;
    timings.server = t.elapsed();
    // The chain and the schema files at once, on two databases, each then
    // read.
    let t = Instant::now();
    let (upgraded, wanted) = std::thread::scope(|scope| {
        let upgrading = scope.spawn(|| {
            if let Some(head) = head {
                upgrade_head(&work, map, settings, head)?;
            }
            let t = Instant::now();
            read(&work.head, &work.skip).map(|c| (c, t.elapsed()))
        });
        let wanted = desired(&work, schema, from_database);
        let upgraded = upgrading
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (upgraded, wanted)
    });
    let (head_catalog, head_read) = upgraded?;
    let (desired, renames, desired_read) = wanted?;
    timings.applying = t.elapsed();
    timings.catalogs = head_read + desired_read;
    let t = Instant::now();
    let (renamed, renames) = if renames.is_empty() {
        (head_catalog.clone(), renames)
    } else {
        with_renames(&work, &renames)?
    };
    timings.reading += t.elapsed();
    let t = Instant::now();
    let up = diff::plan(&renamed, &desired, true);
    let down = diff::plan(&desired, &renamed, false);
    timings.diffing = t.elapsed();
    Ok(Compared {
        work,
        desired,
        head: head_catalog,
        renames,
        up,
        down,
        timings,
    })
}

/// Runs autogenerate; `write` turns the planned revisions into files (the
/// `revision` command's writer), in order, each on the one before.
pub(crate) fn run(
    ctx: &Ctx,
    request: &Request<'_>,
    write: &mut Writer<'_>,
) -> Result<(), CliError> {
    let map = ctx.load()?;
    let head = head_of(&map, request.head)?;
    let schema = desired_source(ctx, request.schema.clone(), request.from_database.is_some())?;
    let Compared {
        work,
        desired,
        head: head_catalog,
        renames,
        up,
        down,
        mut timings,
    } = compare(
        ctx,
        &map,
        head.as_deref(),
        schema,
        request.from_database,
        None,
    )?;
    if up.is_empty() && renames.is_empty() {
        return print("No changes in schema detected: no revision written.\n");
    }
    let planned = revisions(&request.message, &renames, &up, down);
    let t = Instant::now();
    let proving = Proving {
        head: &work.head,
        skip: &work.skip,
    };
    let proof = prove(&proving, &planned, &desired, &head_catalog);
    timings.proving = t.elapsed();
    let mut parent = head;
    for (i, p) in planned.into_iter().enumerate() {
        let id = if i == 0 { request.rev_id } else { None };
        let (new_id, _) = write(&map, parent.as_deref(), id, p)?;
        parent = Some(new_id);
    }
    print(&format!(
        "autogenerate: server {} ms, apply+read {} ms (catalogs {} ms), renames {} ms, diff {} ms, proof {} ms\n",
        timings.server.as_millis(),
        timings.applying.as_millis(),
        timings.catalogs.as_millis(),
        timings.reading.as_millis(),
        timings.diffing.as_millis(),
        timings.proving.as_millis()
    ))?;
    match proof? {
        None => print("Proven: the upgrade gives the desired schema, and the downgrade gives the head back.\n"),
        Some(failure) => Err(CliError::failed(
            format!("the plan is not proven: {failure}"),
            Some("the file is written for review; edit it until `cargo alembic verify` passes, or report the case".into()),
        )),
    }
}

/// How the chain's head differs from the desired schema.
pub(crate) struct Drift {
    /// The schema, as the user would name it.
    pub(crate) schema: String,
    /// The statements autogenerate would write.
    pub(crate) changes: Vec<String>,
}

impl Drift {
    /// The one message `check` and `verify` print.
    pub(crate) fn message(&self) -> String {
        let n = self.changes.len();
        format!(
            "the chain's head differs from the schema {}: `cargo alembic migrate` would write {n} statement{}:\n  {}",
            self.schema,
            if n == 1 { "" } else { "s" },
            self.changes.join("\n  ")
        )
    }
}

/// Drift, for `check` and `verify`: with a desired schema configured (or
/// given), the statements that would take the chain's head there; `None`
/// when there is no schema to compare with. `on`: the admin URL of a
/// server already started (`verify`'s), else one is started.
pub(crate) fn drift(
    ctx: &Ctx,
    map: &RevisionMap,
    schema: Option<PathBuf>,
    on: Option<&str>,
) -> Result<Option<Drift>, CliError> {
    let Some(path) = schema.or_else(|| ctx.config.schema.clone()) else {
        return Ok(None);
    };
    if map.heads().len() != 1 {
        return Ok(None);
    }
    let head = head_of(map, None)?;
    let files = desired_source(ctx, Some(path.clone()), false)?;
    let compared = compare(ctx, map, head.as_deref(), files, None, on)?;
    let mut changes: Vec<String> = compared.renames.iter().map(Rename::forward).collect();
    changes.extend(compared.up.steps.iter().map(|s| s.sql.clone()));
    let schema = path
        .strip_prefix(&ctx.cwd)
        .unwrap_or(&path)
        .display()
        .to_string();
    Ok(Some(Drift { schema, changes }))
}

/// The revision the new one builds on: the one head, or `--head`.
fn head_of(map: &RevisionMap, given: Option<&str>) -> Result<Option<String>, CliError> {
    let resolver = Resolver::new(map);
    match resolver.resolve(given.unwrap_or("head")) {
        Ok(Target::Base) => Ok(None),
        Ok(Target::Revisions(revs)) if revs.len() == 1 => Ok(Some(map.rev(revs[0]).id.clone())),
        Ok(Target::Revisions(_)) | Err(alembic_chain::ResolveError::MultipleHeads { .. }) => {
            Err(CliError::usage(
                "multiple heads are present; say which one the new revision builds on",
                Some(
                    "pass --head <rev>, or merge the heads first with `cargo alembic merge heads`"
                        .into(),
                ),
            ))
        }
        Ok(Target::BranchBase { .. }) => Err(CliError::usage(
            "--head names a branch base; name a revision",
            None,
        )),
        Err(e) => Err(e.into()),
    }
}

/// The schema files (`--schema`, else `schema` in the metadata), or `None`
/// with `--from-database`.
fn desired_source(
    ctx: &Ctx,
    given: Option<PathBuf>,
    from_database: bool,
) -> Result<Option<Vec<SchemaFile>>, CliError> {
    if from_database {
        return Ok(None);
    }
    let path = given.or_else(|| ctx.config.schema.clone()).ok_or_else(|| {
        CliError::usage(
            "autogenerate compares the chain with a desired schema, and none is configured",
            Some("keep the schema you want as SQL and set `schema = \"schema.sql\"` in [package.metadata.alembic] (a file, or a folder of .sql files), or pass --schema PATH or --from-database URL".into()),
        )
    })?;
    schema_file::read(&path, ctx.shown(&path)).map(Some)
}

/// A throwaway server (`on`: one already started) and a database on it
/// for the chain's head.
fn start(ctx: &Ctx, on: Option<&str>) -> Result<(Work, Settings), CliError> {
    let choice = match (on, &ctx.database_url_flag) {
        (Some(url), _) => Choice::Url(url.to_owned()),
        (None, Some(url)) => Choice::Url(url.expose().to_owned()),
        (None, None) => Choice::Auto(None),
    };
    let server =
        crate::commands::database::throwaway(choice, "autogenerate needs a throwaway PostgreSQL")?;
    let head_db = server
        .database()
        .map_err(|e| db_error("cannot create a database", e))?;
    let settings = Settings {
        tool: format!("cargo-alembic {} autogenerate", env!("CARGO_PKG_VERSION")),
        ..crate::commands::database::settings(ctx)
    };
    let skip = vec![
        settings.version_table.clone(),
        format!("{}_ledger", settings.version_table),
    ];
    Ok((
        Work {
            server,
            head: head_db,
            skip,
        },
        settings,
    ))
}

/// Upgrades the head database to `head` with the chain.
fn upgrade_head(
    work: &Work,
    map: &RevisionMap,
    settings: Settings,
    head: &str,
) -> Result<(), CliError> {
    let mut client = work
        .head
        .connect()
        .map_err(|e| db_error("cannot connect", e))?;
    Engine::new(map, settings)
        .upgrade(&mut client, head, &mut |_| {})
        .map(drop)
        .map_err(|e| CliError::failed(format!("the chain does not upgrade to {head}: {e}"), None))
}

fn read(db: &Database, skip: &[String]) -> Result<Catalog, CliError> {
    let mut client = db.connect().map_err(|e| db_error("cannot connect", e))?;
    Catalog::read(&mut client, skip).map_err(|e| db_error("cannot read the catalogs", e))
}

/// The desired catalog: the schema files applied to a new database, or a
/// live database read on a read-only session.
fn desired(
    work: &Work,
    schema: Option<Vec<SchemaFile>>,
    from_database: Option<&DatabaseUrl>,
) -> Result<(Catalog, Vec<Rename>, Duration), CliError> {
    let Some(files) = schema else {
        let url = from_database.map(DatabaseUrl::expose).unwrap_or_default();
        let mut client = alembic_embed::tls::connect(url)
            .map_err(|e| CliError::by_code(e.exit_code(), e.to_string()))?;
        client
            .batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            .map_err(|e| db_error("cannot make the session read-only", e))?;
        let t = Instant::now();
        let catalog = Catalog::read(&mut client, &work.skip)
            .map_err(|e| db_error("cannot read the catalogs", e))?;
        return Ok((catalog, Vec::new(), t.elapsed()));
    };
    let fresh = || -> Result<(Database, postgres::Client), CliError> {
        let db = work
            .server
            .database()
            .map_err(|e| db_error("cannot create a database", e))?;
        let client = db.connect().map_err(|e| db_error("cannot connect", e))?;
        Ok((db, client))
    };
    let (db, mut client) = fresh()?;
    // Each file in one round trip; when that fails (or cannot run in one
    // implicit transaction), statement by statement on a new database, to
    // run what must run alone and to name the failing line.
    let whole = files.iter().try_for_each(|f| {
        let text: Vec<&str> = f.statements.iter().map(|s| s.sql.as_str()).collect();
        client.batch_execute(&text.join(";\n"))
    });
    let (_db, mut client) = if whole.is_ok() {
        (db, client)
    } else {
        drop(client);
        drop(db);
        let (db, mut client) = fresh()?;
        for file in &files {
            apply_file(&mut client, file)?;
        }
        (db, client)
    };
    let t = Instant::now();
    let catalog = Catalog::read(&mut client, &work.skip)
        .map_err(|e| db_error("cannot read the catalogs", e))?;
    let renames = files.into_iter().flat_map(|f| f.renames).collect();
    Ok((catalog, renames, t.elapsed()))
}

/// A schema file's statements one by one; an error names its file and line.
fn apply_file(client: &mut postgres::Client, file: &SchemaFile) -> Result<(), CliError> {
    for statement in &file.statements {
        client.batch_execute(&statement.sql).map_err(|e| {
            let (message, line) = match e.as_db_error() {
                Some(db) => {
                    let line = match db.position() {
                        Some(postgres::error::ErrorPosition::Original(p)) => {
                            statement.line_of_position(*p as usize)
                        }
                        _ => statement.line,
                    };
                    (
                        format!("{} (SQLSTATE {})", db.message(), db.code().code()),
                        line,
                    )
                }
                None => (e.to_string(), statement.line),
            };
            CliError::failed(
                format!("{}:{line}: {message}", file.path.display()),
                Some("the schema files are applied in order to an empty database: each statement must run there".into()),
            )
        })?;
    }
    Ok(())
}

/// The head's catalog after the declared renames (read inside a
/// transaction that is rolled back), and the renames that apply: one whose
/// new name the head already has was made by an earlier revision.
fn with_renames(work: &Work, renames: &[Rename]) -> Result<(Catalog, Vec<Rename>), CliError> {
    let mut client = work
        .head
        .connect()
        .map_err(|e| db_error("cannot connect", e))?;
    let mut tx = client
        .transaction()
        .map_err(|e| db_error("cannot begin", e))?;
    let mut applied = Vec::new();
    for r in renames {
        let row = tx
            .query_one(&r.probe(), &[])
            .map_err(|e| db_error("cannot look up a declared rename", e))?;
        let (old, new): (bool, bool) = (row.get(0), row.get(1));
        if !old && new {
            continue;
        }
        tx.batch_execute(&r.forward()).map_err(|e| {
            CliError::failed(
                format!(
                    "the declared rename `{}` does not apply to the head: {}",
                    r.forward(),
                    message(&e)
                ),
                Some(
                    "`-- renamed from: OLD` names the table or column as the chain's head has it"
                        .into(),
                ),
            )
        })?;
        applied.push(r.clone());
    }
    let rows = tx
        .query(&crate::catalog::sql(&work.skip), &[])
        .map_err(|e| db_error("cannot read the catalogs", e))?;
    tx.rollback().map_err(|e| db_error("cannot roll back", e))?;
    Ok((Catalog::from_rows(&rows), applied))
}

/// A database's error message, or the error.
fn message(e: &postgres::Error) -> String {
    e.as_db_error()
        .map_or_else(|| e.to_string(), |d| d.message().to_owned())
}

/// The plan as revisions, in order: new enum values (outside a
/// transaction), the main revision, then indexes built `CONCURRENTLY`.
fn revisions(message: &str, renames: &[Rename], up: &Plan, down: Plan) -> Vec<Planned> {
    let step = |sql: String, phase| Step {
        sql,
        hazard: None,
        phase,
    };
    let before: Vec<Step> = up.phase(Phase::Before).into_iter().cloned().collect();
    let after: Vec<Step> = up.phase(Phase::After).into_iter().cloned().collect();
    let mut main: Vec<Step> = renames
        .iter()
        .map(|r| step(r.forward(), Phase::Main))
        .collect();
    main.extend(up.phase(Phase::Main).into_iter().cloned());
    // The indexes of the last revision are dropped by its own downgrade.
    let concurrent: Vec<String> = after.iter().filter_map(|s| index_name(&s.sql)).collect();
    let mut back = downgrade_steps(renames, down, &concurrent);
    let planned =
        |message: String, upgrade, downgrade, transactional, note: Option<&str>| Planned {
            message,
            upgrade,
            downgrade,
            transactional,
            downgrade_note: note.map(str::to_owned),
        };
    let mut out = Vec::new();
    let has_main = !main.is_empty();
    if !before.is_empty() {
        // The values are removed by the main revision's downgrade, when
        // there is one.
        let (downgrade, note) = if has_main {
            (
                Vec::new(),
                Some("the new values are removed by the downgrade of the next revision"),
            )
        } else {
            (std::mem::take(&mut back), None)
        };
        out.push(planned(
            format!("{message} (enum values)"),
            before,
            downgrade,
            false,
            note,
        ));
    }
    if has_main {
        out.push(planned(
            message.to_owned(),
            main,
            std::mem::take(&mut back),
            true,
            None,
        ));
    }
    if !after.is_empty() {
        let downgrade = concurrent
            .iter()
            .map(|name| step(format!("DROP INDEX CONCURRENTLY {name};"), Phase::After))
            .collect();
        out.push(planned(
            format!("{message} (indexes, concurrently)"),
            after,
            downgrade,
            false,
            None,
        ));
    }
    out
}

/// The main downgrade: the plan back, less the indexes the last revision
/// drops itself, then the renames undone.
fn downgrade_steps(renames: &[Rename], down: Plan, concurrent: &[String]) -> Vec<Step> {
    let mut back: Vec<Step> = down
        .steps
        .into_iter()
        .filter(|s| {
            !concurrent
                .iter()
                .any(|name| s.sql == format!("DROP INDEX {name};"))
        })
        .collect();
    back.extend(renames.iter().rev().map(|r| Step {
        sql: r.backward(),
        hazard: None,
        phase: Phase::Main,
    }));
    back
}

/// `CREATE [UNIQUE] INDEX [CONCURRENTLY] name ON table ...` → `schema.name`.
fn index_name(sql: &str) -> Option<String> {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "CONCURRENTLY")?;
    let name = words.get(at + 1)?;
    let on = words.get(at + 3)?;
    let schema = on.rsplit_once('.').map(|(s, _)| s)?;
    Some(format!("{schema}.{name}"))
}

/// Where a proof runs: the head database, whose catalog was read already.
struct Proving<'a> {
    head: &'a Database,
    skip: &'a [String],
}

/// The proof: the revisions upgraded on the head database (whose catalog
/// was read already) give the desired catalog, and downgraded give the
/// head's back. `Ok(None)` when
/// both hold; `Ok(Some(what differs))` otherwise.
fn prove(
    work: &Proving<'_>,
    planned: &[Planned],
    desired: &Catalog,
    head: &Catalog,
) -> Result<Option<String>, CliError> {
    let mut client = work
        .head
        .connect()
        .map_err(|e| db_error("cannot connect", e))?;
    for p in planned {
        if let Err(e) = apply(&mut client, &p.upgrade, p.transactional) {
            return Ok(Some(format!("the upgrade fails: {e}")));
        }
    }
    let differs = |client: &mut postgres::Client, expected: &Catalog, heading: &str| {
        let now = Catalog::read(client, work.skip)
            .map_err(|e| db_error("cannot read the catalogs", e))?;
        let left = crate::snapshot::diff_lines(&expected.lines(), &now.lines());
        Ok::<_, CliError>((!left.is_empty()).then(|| format!("{heading}:\n{}", left.join("\n"))))
    };
    if let Some(d) = differs(
        &mut client,
        desired,
        "after the upgrade the database differs from the desired schema (- desired, + upgraded)",
    )? {
        return Ok(Some(d));
    }
    for p in planned.iter().rev() {
        if let Err(e) = apply(&mut client, &p.downgrade, p.transactional) {
            return Ok(Some(format!("the downgrade fails: {e}")));
        }
    }
    differs(
        &mut client,
        head,
        "after the downgrade the database differs from the head (- head, + downgraded)",
    )
}

/// Runs statements, in one transaction or each on its own.
fn apply(client: &mut postgres::Client, steps: &[Step], transactional: bool) -> Result<(), String> {
    let run = |client: &mut postgres::Client, sql: &str| {
        client.batch_execute(sql).map_err(|e| {
            format!(
                "{}: {}",
                sql.lines().next().unwrap_or_default(),
                message(&e)
            )
        })
    };
    if !transactional {
        for s in steps {
            run(client, &s.sql)?;
        }
        return Ok(());
    }
    run(client, "BEGIN")?;
    for s in steps {
        if let Err(e) = run(client, &s.sql) {
            let _ = client.batch_execute("ROLLBACK");
            return Err(e);
        }
    }
    run(client, "COMMIT")
}

/// A section's text: each statement, its hazard as a comment above it.
pub(crate) fn section(steps: &[Step], note: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(note) = note {
        out.push_str(&format!("-- {note}\n"));
    }
    for (i, s) in steps.iter().enumerate() {
        let multi = s.sql.contains('\n') || s.hazard.is_some();
        if i > 0 && (multi || steps[i - 1].sql.contains('\n')) {
            out.push('\n');
        }
        if let Some(h) = &s.hazard {
            out.push_str(&format!("-- hazard: {h}\n"));
        }
        out.push_str(&s.sql);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(sql: &str) -> Step {
        Step {
            sql: sql.into(),
            hazard: None,
            phase: Phase::Main,
        }
    }

    fn planned(up: &[&str], down: &[&str]) -> Vec<Planned> {
        vec![Planned {
            message: "m".into(),
            upgrade: up.iter().map(|s| step(s)).collect(),
            downgrade: down.iter().map(|s| step(s)).collect(),
            transactional: true,
            downgrade_note: None,
        }]
    }

    /// The proof catches a plan that leaves something out, either way.
    #[test]
    fn an_incomplete_plan_is_not_proven() {
        let server = Server::start(Choice::Local).unwrap();
        let desired_db = server.database().unwrap();
        desired_db
            .connect()
            .unwrap()
            .batch_execute("CREATE TABLE t (id int PRIMARY KEY, note text)")
            .unwrap();
        let skip = vec![
            "alembic_version".to_owned(),
            "alembic_version_ledger".to_owned(),
        ];
        let desired = read(&desired_db, &skip).unwrap();
        let head_catalog = read(&server.database().unwrap(), &skip).unwrap();
        // Each proof on a new head database.
        let prove_on_new_head = |up: &[&str], down: &[&str]| {
            let head = server.database().unwrap();
            let proving = Proving {
                head: &head,
                skip: &skip,
            };
            prove(&proving, &planned(up, down), &desired, &head_catalog).unwrap()
        };
        let create = "CREATE TABLE t (id int PRIMARY KEY, note text)";
        // Complete: proven.
        assert_eq!(prove_on_new_head(&[create], &["DROP TABLE t"]), None);
        // The upgrade forgets a column.
        let failure =
            prove_on_new_head(&["CREATE TABLE t (id int PRIMARY KEY)"], &["DROP TABLE t"]).unwrap();
        assert!(
            failure.contains("after the upgrade")
                && failure.contains("- column public.t.note: text"),
            "{failure}"
        );
        // The downgrade leaves the table behind.
        let failure = prove_on_new_head(&[create], &[]).unwrap();
        assert!(
            failure.contains("after the downgrade") && failure.contains("+ table public.t"),
            "{failure}"
        );
        // A statement that fails is named.
        let failure = prove_on_new_head(
            &["CREATE TABLE t (id int PRIMARY KEY, note nosuchtype)"],
            &[],
        )
        .unwrap();
        assert!(
            failure.contains("the upgrade fails: CREATE TABLE t"),
            "{failure}"
        );
    }
}
