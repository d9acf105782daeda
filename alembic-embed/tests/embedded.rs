//! The embedded runtime against a real PostgreSQL: the chain compiled in by
//! `embed_migrations!` is the chain the CLI reads, and `Runner` migrates
//! with the engine's transactions, lock, version table and ledger, on the
//! synchronous and the asynchronous client, under each policy.

use std::path::Path;
use std::sync::OnceLock;

use alembic_embed::cli_engine::load_versions;
use alembic_embed::{AheadPolicy, ChecksumPolicy, EngineError, Warning};
use alembic_throwaway::{Choice, Database, Server};

#[path = "support/outcome.rs"]
mod outcome;
#[path = "support/roles.rs"]
mod roles;

use outcome::outcome;

alembic_embed::embed_migrations!("../migrations");

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(Choice::Local).expect("a throwaway PostgreSQL"))
}

fn db() -> Database {
    server().database().expect("a fresh database")
}

fn rows(client: &mut postgres::Client, sql: &str) -> Vec<String> {
    let mut v: Vec<String> = client
        .query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    v.sort();
    v
}

const HEAD: &str = "f0d9b4e1a2c3";

#[test]
fn the_embedded_chain_is_the_chain_the_cli_reads() {
    let files =
        load_versions(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/versions"))
            .unwrap();
    let embedded = migrations::CHAIN.map().unwrap();
    assert_eq!(files.len(), embedded.len());
    assert_eq!(files.len(), 10);
    for (f, e) in files.revisions().iter().zip(embedded.revisions()) {
        assert_eq!(f.id, e.id);
        assert_eq!(f.down_revisions, e.down_revisions);
        assert_eq!(f.branch_labels, e.branch_labels);
        assert_eq!(f.depends_on, e.depends_on);
        assert_eq!(f.transactional, e.transactional);
        assert_eq!(f.message, e.message);
        assert_eq!(f.upgrade.checksum(), e.upgrade.checksum());
        assert_eq!(f.upgrade.sql(), e.upgrade.sql());
        assert_eq!(
            f.upgrade_statements().unwrap(),
            e.upgrade_statements().unwrap()
        );
        assert_eq!(
            f.downgrade.as_ref().map(|d| d.checksum().clone()),
            e.downgrade.as_ref().map(|d| d.checksum().clone())
        );
        assert_eq!(
            f.downgrade_statements().unwrap(),
            e.downgrade_statements().unwrap()
        );
        // Paths for messages are relative to the workspace.
        assert!(
            e.path.starts_with("migrations/versions"),
            "{}",
            e.path.display()
        );
    }
    assert_eq!(files.order(), embedded.order());
    assert_eq!(migrations::CHAIN.heads().unwrap(), [HEAD]);
    assert_eq!(migrations::CHAIN.source(), "migrations");
    assert_eq!(
        migrations::CHAIN.settings().version_table,
        "alembic_version"
    );
    let history: Vec<&str> = migrations::runner()
        .history()
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(history.first(), Some(&HEAD));
    assert_eq!(history.last(), Some(&"c1a0e5b2d3f4"));
    // In the order `cargo alembic history` lists them (Alembic's).
    let listed: Vec<&str> = alembic_chain::Resolver::new(&files)
        .history(None)
        .unwrap()
        .iter()
        .map(|&i| files.rev(i).id.as_str())
        .collect();
    assert_eq!(history, listed);
}

/// `embed_migrations!()` without a path finds the chain as `cargo alembic`
/// does: here `[workspace.metadata.alembic] script_location`.
mod resolved {
    alembic_embed::embed_migrations!();
}

#[test]
fn without_a_path_the_chain_comes_from_cargo_metadata() {
    let chain = &resolved::migrations::CHAIN;
    assert_eq!(chain.source(), "migrations");
    assert_eq!(chain.revisions().len(), 10);
    assert_eq!(chain.heads().unwrap(), [HEAD]);
}

#[test]
fn upgrade_status_and_downgrade_on_the_sync_client() {
    let db = db();
    let mut c = db.connect().unwrap();
    let runner = migrations::runner();
    let status = runner.status(&mut c).unwrap();
    assert_eq!(status.pending.len(), 10);
    assert!(!status.is_up_to_date());
    assert!(runner.current(&mut c).unwrap().is_empty());

    let report = runner.upgrade_to(&mut c, "e3c2").unwrap();
    assert_eq!(report.steps.len(), 3);
    assert_eq!(runner.current(&mut c).unwrap(), ["e3c2a7d4f5b6"]);
    assert_eq!(runner.pending(&mut c).unwrap().len(), 7);

    let report = runner.upgrade(&mut c).unwrap();
    assert_eq!(report.steps.len(), 7);
    assert_eq!(report.after, [HEAD]);
    assert!(report
        .steps
        .iter()
        .all(|s| s.description.starts_with("Running upgrade")));
    let status = runner.status(&mut c).unwrap();
    assert!(status.is_up_to_date(), "{status:?}");
    assert!(status.unverified.is_empty() && status.edited.is_empty());
    assert_eq!(
        rows(
            &mut c,
            "SELECT tool FROM alembic_version_ledger GROUP BY tool"
        ),
        [format!(
            "alembic-embed {v} (alembic-embed {v})",
            v = env!("CARGO_PKG_VERSION")
        )]
    );
    assert_eq!(
        rows(&mut c, "SELECT revision FROM alembic_version_ledger").len(),
        10
    );

    // Nothing pending: nothing runs.
    assert!(runner.upgrade(&mut c).unwrap().steps.is_empty());

    let report = runner.downgrade_to(&mut c, "base").unwrap();
    assert_eq!(report.steps.len(), 10);
    assert!(runner.current(&mut c).unwrap().is_empty());
    assert!(rows(&mut c, "SELECT revision FROM alembic_version_ledger").is_empty());
}

#[test]
fn an_edited_applied_revision_stops_the_upgrade_unless_told_to_warn() {
    let db = db();
    let mut c = db.connect().unwrap();
    let runner = migrations::runner();
    runner.upgrade_to(&mut c, "e3c2").unwrap();
    // What the ledger holds when the file was edited after it ran.
    let recorded = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    c.execute(
        "UPDATE alembic_version_ledger SET upgrade_checksum = $1 WHERE revision = 'd2b1f6c3e4a5'",
        &[&recorded],
    )
    .unwrap();
    assert_eq!(runner.status(&mut c).unwrap().edited, ["d2b1f6c3e4a5"]);

    let err = runner.upgrade(&mut c).unwrap_err();
    let now = migrations::CHAIN
        .map()
        .unwrap()
        .get("d2b1f6c3e4a5")
        .unwrap()
        .upgrade
        .checksum()
        .to_string();
    match &err {
        EngineError::ChecksumMismatch {
            revision,
            recorded: r,
            current,
            ..
        } => {
            assert_eq!(revision, "d2b1f6c3e4a5");
            assert_eq!(r, recorded);
            assert_eq!(current, &now);
        }
        other => panic!("expected a checksum mismatch, got {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains(recorded) && message.contains(&now),
        "{message}"
    );
    // Refused before any SQL ran.
    assert_eq!(runner.current(&mut c).unwrap(), ["e3c2a7d4f5b6"]);

    let report = migrations::runner()
        .on_checksum_mismatch(ChecksumPolicy::Warn)
        .upgrade(&mut c)
        .unwrap();
    assert_eq!(report.after, [HEAD]);
    assert!(
        report.warnings.iter().any(|w| matches!(
            w,
            Warning::Edited { revision, recorded: r, .. } if revision == "d2b1f6c3e4a5" && r == recorded
        ) && w.to_string().contains(recorded)),
        "{:?}",
        report.warnings
    );
}

#[test]
fn a_database_ahead_of_the_binary_is_refused_or_left_alone() {
    let db = db();
    let mut c = db.connect().unwrap();
    let runner = migrations::runner();
    runner.upgrade(&mut c).unwrap();
    // A newer release applied a revision this binary does not carry.
    c.batch_execute(
        "UPDATE alembic_version SET version_num = 'ffffffff0001'; \
         INSERT INTO alembic_version_ledger (revision, upgrade_checksum, tool) VALUES ('ffffffff0001', 'sha256:00', 'newer')",
    )
    .unwrap();
    let err = runner.upgrade(&mut c).unwrap_err();
    assert!(
        matches!(&err, EngineError::UnknownRevisions { ids } if ids == &["ffffffff0001"]),
        "{err}"
    );
    assert_eq!(runner.status(&mut c).unwrap().unknown, ["ffffffff0001"]);

    let report = migrations::runner()
        .on_database_ahead(AheadPolicy::Allow)
        .upgrade(&mut c)
        .unwrap();
    assert!(report.steps.is_empty());
    assert_eq!(report.after, ["ffffffff0001"]);
    assert!(report.warnings.iter().any(|w| matches!(
        w,
        Warning::DatabaseAhead { ids } if ids == &["ffffffff0001"]
    ) && w.to_string().contains("nothing was run")));
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        ["ffffffff0001"]
    );
}

/// A connection holding the migration lock of `runner`'s version table,
/// as another migrator mid-run would; released when dropped.
fn lock_holder(db: &Database, runner: &alembic_embed::Runner) -> postgres::Client {
    let mut holder = db.connect().unwrap();
    holder
        .batch_execute(&format!(
            "SELECT pg_advisory_lock({})",
            runner.settings().lock_key_sql()
        ))
        .unwrap();
    holder
}

/// A startup gives up on the lock quickly here: when it waits, it fails.
fn impatient() -> alembic_embed::Runner {
    migrations::runner().lock_timeout(std::time::Duration::from_millis(200))
}

fn is_lock_timeout(result: Result<alembic_embed::Report, EngineError>) -> bool {
    matches!(result, Err(EngineError::LockTimeout { .. }))
}

/// An up-to-date database is checked from one read, without the lock:
/// replicas starting while another migrator holds it do not wait, and the
/// check writes nothing and leaves no lock or transaction behind. Anything
/// else (revisions to run, an edited revision to refuse) is decided under
/// the lock, from the state read again there.
#[test]
fn an_up_to_date_startup_takes_no_lock_and_anything_else_waits_for_it() {
    let db = db();
    let mut c = db.connect().unwrap();
    migrations::runner().upgrade(&mut c).unwrap();
    let holder = lock_holder(&db, &migrations::runner());

    let report = impatient().upgrade(&mut c).unwrap();
    assert!(report.steps.is_empty() && report.warnings.is_empty());
    assert_eq!(
        (report.before, report.after),
        (vec![HEAD.to_owned()], vec![HEAD.to_owned()])
    );
    // A downgrade to where the database is has nothing to do either.
    assert!(impatient()
        .downgrade_to(&mut c, HEAD)
        .unwrap()
        .steps
        .is_empty());
    let url = db.url().to_owned();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let client = alembic_embed::tls::connect_async(&url).await.unwrap();
            let report = impatient().upgrade_async(&client).await.unwrap();
            assert!(report.steps.is_empty());
        });
    let held = "SELECT count(*)::text FROM pg_catalog.pg_locks \
                WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()";
    assert_eq!(rows(&mut c, held), ["0"]);
    // Outside a transaction: a failed statement leaves the next one working.
    assert!(c.batch_execute("SELECT 1 / 0").is_err());
    assert_eq!(rows(&mut c, "SELECT 'ok'"), ["ok"]);

    // An edited revision is refused under the lock: here, never reached.
    let recorded = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    c.execute(
        "UPDATE alembic_version_ledger SET upgrade_checksum = $1 WHERE revision = $2",
        &[&recorded, &HEAD],
    )
    .unwrap();
    assert!(is_lock_timeout(impatient().upgrade(&mut c)));
    // Told to warn, the run has nothing to write: the warning, no lock.
    let report = impatient()
        .on_checksum_mismatch(ChecksumPolicy::Warn)
        .upgrade(&mut c)
        .unwrap();
    assert!(
        matches!(report.warnings.as_slice(), [Warning::Edited { revision, .. }] if revision == HEAD),
        "{:?}",
        report.warnings
    );

    // Revisions to run wait for the lock, and run once it is free.
    drop(holder);
    migrations::runner()
        .on_checksum_mismatch(ChecksumPolicy::Warn)
        .downgrade_to(&mut c, "-1")
        .unwrap();
    let holder = lock_holder(&db, &migrations::runner());
    assert!(is_lock_timeout(impatient().upgrade(&mut c)));
    assert_ne!(
        rows(&mut c, "SELECT version_num FROM alembic_version"),
        [HEAD]
    );
    drop(holder);
    assert_eq!(impatient().upgrade(&mut c).unwrap().steps.len(), 1);
}

/// An upgrade to the heads of a database at the heads is checked off the
/// packed chain, without the graph, when every revision is recorded as it
/// is now; an upgrade to `head` off the graph's rows, without the state
/// and plan; whatever differs goes to the engine. Either way the outcome
/// is the engine's: the same report, warning or error as an upgrade to the
/// head's id (which the engine always decides the long way), case by case.
#[test]
fn the_check_off_the_packed_chain_gives_what_the_engine_gives() {
    let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let ledger = "alembic_version_ledger";
    let cases: [(&str, String); 8] = [
        ("as recorded", String::new()),
        (
            "a downgrade section changed",
            format!("UPDATE {ledger} SET downgrade_checksum = '{other}' WHERE revision = '{HEAD}'"),
        ),
        (
            "a downgrade section added",
            format!("UPDATE {ledger} SET downgrade_checksum = NULL WHERE revision = '{HEAD}'"),
        ),
        (
            "an upgrade section edited",
            format!("UPDATE {ledger} SET upgrade_checksum = '{other}' WHERE revision = 'd2b1f6c3e4a5'"),
        ),
        (
            "a revision without a row",
            format!("DELETE FROM {ledger} WHERE revision = 'd2b1f6c3e4a5'"),
        ),
        (
            "a failed row",
            format!(
                "INSERT INTO {ledger} (revision, upgrade_checksum, tool, status, error) \
                 VALUES ('ffffffff0002', '{other}', 'elsewhere', 'failed', 'boom')"
            ),
        ),
        (
            "a row of a revision the chain does not have",
            format!(
                "INSERT INTO {ledger} (revision, upgrade_checksum, tool) VALUES ('ffffffff0003', '{other}', 'elsewhere')"
            ),
        ),
        (
            "a database ahead",
            "UPDATE alembic_version SET version_num = 'ffffffff0004'".to_owned(),
        ),
    ];
    for (case, sql) in cases {
        let db = db();
        let mut c = db.connect().unwrap();
        migrations::runner().upgrade(&mut c).unwrap();
        c.batch_execute(&sql).unwrap();
        for runner in [
            migrations::runner,
            || migrations::runner().on_checksum_mismatch(ChecksumPolicy::Warn),
            || migrations::runner().on_database_ahead(AheadPolicy::Allow),
        ] {
            let engine = outcome(runner().upgrade_to(&mut c, HEAD));
            let graph = outcome(runner().upgrade_to(&mut c, "head"));
            let packed = outcome(runner().upgrade(&mut c));
            assert_eq!(graph, engine, "{case}");
            assert_eq!(packed, engine, "{case}");
        }
    }
}

/// A database Python Alembic migrated has a version table and no ledger:
/// the read without the lock fails, and the run takes the lock, makes the
/// ledger and reports every revision unverified. From then on the
/// unverified state is read without the lock too (nothing to write).
#[test]
fn a_database_from_python_alembic_is_first_checked_under_the_lock() {
    let db = db();
    let mut c = db.connect().unwrap();
    migrations::runner().upgrade(&mut c).unwrap();
    c.batch_execute("DROP TABLE alembic_version_ledger")
        .unwrap();
    let holder = lock_holder(&db, &migrations::runner());
    assert!(is_lock_timeout(impatient().upgrade(&mut c)));
    drop(holder);
    let report = impatient().upgrade(&mut c).unwrap();
    assert!(report.steps.is_empty());
    assert_eq!(report.unverified.len(), 10);
    assert!(rows(&mut c, "SELECT revision FROM alembic_version_ledger").is_empty());
    let _holder = lock_holder(&db, &migrations::runner());
    let report = impatient().upgrade(&mut c).unwrap();
    assert_eq!((report.steps.len(), report.unverified.len()), (0, 10));
}

/// A ledger made by an earlier version (no `tag` column) is read without
/// the lock as it is; a run with a tag and nothing to do adds nothing.
#[test]
fn a_ledger_from_an_earlier_version_serves_the_check_without_the_lock() {
    let db = db();
    let mut c = db.connect().unwrap();
    migrations::runner().upgrade(&mut c).unwrap();
    c.batch_execute("ALTER TABLE alembic_version_ledger DROP COLUMN tag")
        .unwrap();
    let holder = lock_holder(&db, &migrations::runner());
    let report = impatient().tag("release-7").upgrade(&mut c).unwrap();
    assert!(report.steps.is_empty() && report.unverified.is_empty());
    drop(holder);
    let has_tag = "SELECT count(*)::text FROM information_schema.columns \
                   WHERE table_name = 'alembic_version_ledger' AND column_name = 'tag'";
    assert_eq!(rows(&mut c, has_tag), ["0"]);
    // A run that records the tag adds the column, under the lock.
    migrations::runner().downgrade_to(&mut c, "-1").unwrap();
    migrations::runner()
        .tag("release-7")
        .upgrade(&mut c)
        .unwrap();
    assert_eq!(rows(&mut c, has_tag), ["1"]);
}

#[test]
fn settings_are_taken_from_the_builder() {
    let db = db();
    let mut c = db.connect().unwrap();
    c.batch_execute("CREATE SCHEMA ops").unwrap();
    let runner = migrations::runner()
        .version_table("schema_revisions")
        .version_table_schema("ops")
        .transaction_per_migration(true)
        .tool("billing 4.2");
    runner.upgrade_to(&mut c, "d2b1").unwrap();
    assert_eq!(
        rows(&mut c, "SELECT version_num FROM ops.schema_revisions"),
        ["d2b1f6c3e4a5"]
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT DISTINCT tool FROM ops.schema_revisions_ledger"
        ),
        ["billing 4.2"]
    );
}

#[test]
fn the_async_client_runs_the_same_engine() {
    // The throwaway server is driven with the synchronous client, which
    // must not run inside a Tokio runtime.
    let db = db();
    let url = db.url().to_owned();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async_upgrade_and_downgrade(&url));
}

async fn async_upgrade_and_downgrade(url: &str) {
    let client = alembic_embed::tls::connect_async(url).await.unwrap();
    let runner = migrations::runner();
    assert_eq!(runner.pending_async(&client).await.unwrap().len(), 10);
    // The future is Send: a service can migrate from a spawned task.
    let report = tokio::spawn(async move {
        let report = migrations::runner().upgrade_to_async(&client, "a5e4").await;
        (report, client)
    });
    let (report, client) = report.await.unwrap();
    assert_eq!(report.unwrap().after, ["a5e4c9f6b7d8"]);
    // Including the revision that runs outside a transaction.
    assert_eq!(
        runner.current_async(&client).await.unwrap(),
        ["a5e4c9f6b7d8"]
    );
    let report = runner.upgrade_async(&client).await.unwrap();
    assert_eq!(report.after, [HEAD]);
    assert!(runner.status_async(&client).await.unwrap().is_up_to_date());
    let report = runner.downgrade_to_async(&client, "-2").await;
    assert!(
        report.is_err(),
        "-2 through a merge point is ambiguous, as in Alembic"
    );
    let report = runner.downgrade_to_async(&client, "base").await.unwrap();
    assert_eq!(report.steps.len(), 10);
    assert!(runner.current_async(&client).await.unwrap().is_empty());
}

/// The usual application role (DML on the two tables, no CREATE) starts a
/// service whose database is up to date.
#[test]
fn a_role_without_create_passes_the_startup_check() {
    let db = db();
    migrations::runner()
        .upgrade(&mut db.connect().unwrap())
        .unwrap();
    let url = roles::dml_only(&db, "app_startup");
    let mut app = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let report = migrations::runner().upgrade(&mut app).unwrap();
    assert!(report.steps.is_empty());
    assert_eq!(report.after, [HEAD]);
}

#[test]
fn a_runner_per_tenant_schema_migrates_each_schema_and_restores_the_search_path() {
    let db = db();
    let mut c = db.connect().unwrap();
    c.batch_execute(
        "CREATE SCHEMA tenant_a; CREATE SCHEMA \"Tenant B\"; SET search_path TO public",
    )
    .unwrap();
    for tenant in ["tenant_a", "Tenant B"] {
        let report = migrations::runner().schema(tenant).upgrade(&mut c).unwrap();
        assert_eq!(report.after, [HEAD], "{tenant}");
        // The connection is as it was.
        assert_eq!(rows(&mut c, "SHOW search_path"), ["public"]);
    }
    // Each tenant has the chain's tables and its own version table; public
    // has none of them.
    let tables = |schema: &str, c: &mut postgres::Client| {
        let sql = format!(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = '{schema}'"
        );
        rows(c, &sql)
    };
    let a = tables("tenant_a", &mut c);
    assert!(
        a.contains(&"alembic_version".to_owned()) && a.contains(&"accounts".to_owned()),
        "{a:?}"
    );
    assert_eq!(a, tables("Tenant B", &mut c));
    assert!(
        tables("public", &mut c).is_empty(),
        "{:?}",
        tables("public", &mut c)
    );
    // Each tenant is at head, read back through its own version table.
    let status = migrations::runner()
        .schema("tenant_a")
        .status(&mut c)
        .unwrap();
    assert!(
        status.is_up_to_date() && status.heads == [HEAD],
        "{status:?}"
    );
    // A tenant whose schema does not exist is an error, and the search
    // path is restored then too.
    let err = migrations::runner()
        .schema("nobody")
        .upgrade(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("nobody"), "{err}");
    assert_eq!(rows(&mut c, "SHOW search_path"), ["public"]);
}

#[test]
fn many_tenant_schemas_are_upgraded_on_a_pool_of_async_clients() {
    let db = db();
    let url = db.url().to_owned();
    let tenants: Vec<String> = (1..=7).map(|i| format!("pool_{i}")).collect();
    let mut c = db.connect().unwrap();
    for t in &tenants[..6] {
        c.batch_execute(&format!("CREATE SCHEMA {t}")).unwrap();
    }
    // pool_7 does not exist: its failure stops nothing else.
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let mut clients = Vec::new();
            for _ in 0..3 {
                clients.push(alembic_embed::tls::connect_async(&url).await.unwrap());
            }
            let results = migrations::runner()
                .upgrade_schemas_async(&clients, &tenants)
                .await;
            let names: Vec<&str> = results.iter().map(|(t, _)| t.as_str()).collect();
            assert_eq!(
                names,
                tenants.iter().map(String::as_str).collect::<Vec<_>>()
            );
            for (tenant, result) in &results[..6] {
                assert_eq!(result.as_ref().unwrap().after, [HEAD], "{tenant}");
            }
            assert!(results[6].1.is_err());
        });
    for t in &tenants[..6] {
        assert_eq!(
            rows(
                &mut c,
                &format!("SELECT version_num FROM {t}.alembic_version")
            ),
            [HEAD]
        );
    }
}
