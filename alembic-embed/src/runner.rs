//! The embedded chain ([`Chain`], written by `embed_migrations!`) and the
//! API a service calls at startup ([`Runner`]): the engine the CLI runs,
//! with policies for edited revisions and databases ahead of the binary,
//! and logging through the `log` facade (which `tracing` subscribers pick
//! up as well).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use alembic_chain::embed::{EmbeddedRevision, EmbeddedSettings, PackedChain};
use alembic_chain::RevisionMap;

#[cfg(feature = "sync")]
use crate::connection::wait;
use crate::connection::Connection;
use crate::engine::{
    AheadPolicy, ChecksumPolicy, Direction, Engine, Report, Session, Settings, Status, Step,
};
use crate::errors::EngineError;

/// A revision chain compiled into the binary by `embed_migrations!`.
pub struct Chain {
    packed: &'static PackedChain,
    settings: EmbeddedSettings,
    source: &'static str,
    map: OnceLock<Result<RevisionMap, String>>,
    revisions: OnceLock<&'static [EmbeddedRevision]>,
}

impl Chain {
    #[doc(hidden)]
    /// A chain of revisions, as the macro writes it.
    pub const fn new(
        packed: &'static PackedChain,
        settings: EmbeddedSettings,
        source: &'static str,
    ) -> Chain {
        Chain {
            packed,
            settings,
            source,
            map: OnceLock::new(),
            revisions: OnceLock::new(),
        }
    }

    /// The revisions, in file order (unpacked on the first call; empty if
    /// the chain's data is malformed, which [`Chain::map`] reports).
    pub fn revisions(&self) -> &'static [EmbeddedRevision] {
        self.revisions.get_or_init(|| {
            let revisions = self.packed.embedded_revisions().unwrap_or_default();
            Box::leak(revisions.into_boxed_slice())
        })
    }

    #[doc(hidden)]
    /// Where the chain was read from at compile time, relative to the
    /// package (for messages).
    pub fn source(&self) -> &'static str {
        self.source
    }

    /// The settings read from Cargo metadata at compile time.
    pub fn settings(&self) -> &EmbeddedSettings {
        &self.settings
    }

    /// The revision graph, built on first use. The macro validated the
    /// chain, so this fails only for a chain written by hand.
    pub fn map(&self) -> Result<&RevisionMap, EngineError> {
        self.map
            .get_or_init(|| {
                let revisions = self.packed.revisions().map_err(|e| e.to_string())?;
                RevisionMap::new(revisions).map_err(|e| {
                    e.problems()
                        .iter()
                        .map(|p| p.located())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            })
            .as_ref()
            .map_err(|reason| EngineError::Embedded {
                reason: reason.clone(),
            })
    }

    /// The report of an upgrade to the heads that has nothing to do, read
    /// off the packed chain without building the graph, when `session` is
    /// a snapshot ([`Settings::open_run`]) of a database at exactly the
    /// chain's heads, with no failed ledger row and every revision recorded
    /// with the checksums it has now: what the engine would find, with
    /// nothing unverified and no warning. `None` otherwise (the engine
    /// decides, on the graph).
    fn nothing_to_do(&self, session: &Session) -> Option<Report> {
        session.up_to_date(|rows, ledger| self.packed.all_applied(rows, ledger))
    }

    /// The head revisions' ids.
    pub fn heads(&self) -> Result<Vec<&str>, EngineError> {
        let map = self.map()?;
        Ok(map
            .heads()
            .iter()
            .map(|&i| map.rev(i).id.as_str())
            .collect())
    }
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("source", &self.source)
            .field("revisions", &self.revisions().len())
            .field("settings", &self.settings)
            .finish()
    }
}

/// Migrates a database with an embedded chain; made by `migrations::runner()`.
///
/// This example runs (on a throwaway PostgreSQL, in place of your
/// `DATABASE_URL`): the first `upgrade` applies the chain, the second finds
/// nothing to do, and `status` agrees.
///
/// ```
/// # alembic_embed::embed_migrations!("../migrations");
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = alembic_throwaway::Server::start(alembic_throwaway::Choice::Local)?;
/// # let db = server.database()?;
/// # let database_url = db.url();
/// use alembic_embed::ChecksumPolicy;
///
/// let mut client = alembic_embed::tls::connect(database_url)?;
/// let runner = migrations::runner().on_checksum_mismatch(ChecksumPolicy::Refuse);
///
/// let report = runner.upgrade(&mut client)?;
/// assert_eq!(report.after, migrations::CHAIN.heads()?);
/// assert!(!report.steps.is_empty());
///
/// // Started again (another replica, the next deploy): nothing to do.
/// assert!(runner.upgrade(&mut client)?.steps.is_empty());
/// let status = runner.status(&mut client)?;
/// assert!(status.is_up_to_date() && status.edited.is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Runner {
    chain: &'static Chain,
    settings: Settings,
}

/// How messages name the command an operator runs: the binary's own
/// `migrate` when it has one (feature `cli`), else `cargo alembic`.
fn own_command(package: &str) -> String {
    if !cfg!(feature = "cli") {
        return "cargo alembic".to_owned();
    }
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| package.split(' ').next().unwrap_or(package).to_owned());
    format!("{binary} migrate")
}

impl Runner {
    /// A runner with the chain's settings (from Cargo metadata) and the
    /// safe policies: an edited applied revision and a database ahead of
    /// the binary both stop the upgrade before any SQL runs. The ledger
    /// records the package that embedded the chain, e.g. `billing 4.2.0
    /// (alembic-embed 0.1.0)`.
    pub fn new(chain: &'static Chain) -> Runner {
        let s = chain.settings();
        Runner {
            chain,
            settings: Settings {
                version_table: s.version_table.to_owned(),
                version_table_schema: s.version_table_schema.map(str::to_owned),
                transaction_per_migration: s.transaction_per_migration,
                tool: format!(
                    "{} (alembic-embed {})",
                    s.package,
                    env!("CARGO_PKG_VERSION")
                ),
                command: own_command(s.package),
                ..Settings::default()
            },
        }
    }

    /// What to do when an applied revision's upgrade section was edited
    /// after it ran (default: [`ChecksumPolicy::Refuse`]).
    pub fn on_checksum_mismatch(mut self, policy: ChecksumPolicy) -> Runner {
        self.settings.checksum_mismatch = policy;
        self
    }

    /// What to do when the database has revisions this binary does not
    /// know, e.g. after rolling back a deploy (default:
    /// [`AheadPolicy::Refuse`]).
    pub fn on_database_ahead(mut self, policy: AheadPolicy) -> Runner {
        self.settings.database_ahead = policy;
        self
    }

    /// Commit each revision on its own rather than one transaction per run.
    pub fn transaction_per_migration(mut self, yes: bool) -> Runner {
        self.settings.transaction_per_migration = yes;
        self
    }

    /// The version table (default from Cargo metadata, else
    /// `alembic_version`); the ledger is `<name>_ledger` beside it.
    pub fn version_table(mut self, name: impl Into<String>) -> Runner {
        self.settings.version_table = name.into();
        self
    }

    /// The version table's schema (default: the search path).
    pub fn version_table_schema(mut self, schema: impl Into<String>) -> Runner {
        self.settings.version_table_schema = Some(schema.into());
        self
    }

    /// Migrates one tenant schema (which must exist): its version table and
    /// ledger live in `schema`, and revisions run with `search_path` set to
    /// it (then `public`), so that one chain written without schema names
    /// serves every tenant. The connection's `search_path` is restored
    /// afterwards.
    ///
    /// ```no_run
    /// # alembic_embed::embed_migrations!("../migrations");
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let mut client = alembic_embed::tls::connect("postgresql://localhost/app")?;
    /// // The sign-up path of a schema-per-tenant service.
    /// client.batch_execute("CREATE SCHEMA tenant_42")?;
    /// migrations::runner().schema("tenant_42").upgrade(&mut client)?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn schema(mut self, schema: impl Into<String>) -> Runner {
        let schema = schema.into();
        self.settings.version_table_schema = Some(schema.clone());
        self.settings.search_path = Some(schema);
        self
    }

    /// How long to wait for another migrator's lock before giving up with
    /// an error naming the session that holds it (default: no limit).
    pub fn lock_timeout(mut self, timeout: Duration) -> Runner {
        self.settings.lock_timeout = Some(timeout);
        self
    }

    /// `SET lock_timeout` while revisions run: a statement that waits
    /// longer than this for a table lock fails (SQLSTATE 55P03) instead of
    /// queueing behind a long transaction while every query on the table
    /// queues behind it (default: the server's setting).
    pub fn statement_lock_timeout(mut self, timeout: Duration) -> Runner {
        self.settings.statement_lock_timeout = Some(timeout);
        self
    }

    /// Recorded in the ledger row of every revision a run applies: a
    /// release name, a ticket (default: none).
    pub fn tag(mut self, tag: impl Into<String>) -> Runner {
        self.settings.tag = Some(tag.into());
        self
    }

    /// How messages name the command an operator runs to fix things, as in
    /// `<command> accept <revision>` (default: `<this binary> migrate` with
    /// the `cli` feature, else `cargo alembic`).
    pub fn command(mut self, command: impl Into<String>) -> Runner {
        self.settings.command = command.into();
        self
    }

    /// What the ledger records as the tool (default: the embedding package
    /// and version, and alembic-embed's).
    pub fn tool(mut self, tool: impl Into<String>) -> Runner {
        self.settings.tool = tool.into();
        self
    }

    /// The chain.
    pub fn chain(&self) -> &'static Chain {
        self.chain
    }

    #[doc(hidden)]
    /// The engine's settings this runner uses.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The revisions, newest first, as `history` lists them.
    pub fn history(&self) -> Result<Vec<&'static EmbeddedRevision>, EngineError> {
        let map = self.chain.map()?;
        // By id: the embedded list also holds the revisions a squash
        // replaced, which the graph sets aside.
        let by_id: std::collections::HashMap<&str, &'static EmbeddedRevision> =
            self.chain.revisions().iter().map(|r| (r.id, r)).collect();
        Ok(alembic_chain::Resolver::new(map)
            .history(None)?
            .into_iter()
            .filter_map(|i| by_id.get(map.rev(i).id.as_str()).copied())
            .collect())
    }

    fn engine(&self) -> Result<Engine<'static>, EngineError> {
        Ok(Engine::new(self.chain.map()?, self.settings.clone()))
    }

    /// Upgrades or downgrades to `target` on any [`Connection`], logging
    /// each revision.
    pub async fn run_on<C: Connection>(
        &self,
        client: &mut C,
        target: &str,
        direction: Direction,
    ) -> Result<Report, EngineError> {
        self.run_reporting(client, target, direction, &mut |_: &Step| {})
            .await
    }

    #[doc(hidden)]
    /// [`Runner::run_on`], also calling `on_step` after each revision. The
    /// run begins with [`Settings::open_run`]: a run with nothing to do
    /// takes no lock, and an upgrade of a database at the heads, every
    /// revision recorded as it is now, is checked against the packed chain
    /// without building the graph ([`Chain::nothing_to_do`]).
    pub async fn run_reporting<C, S>(
        &self,
        client: &mut C,
        target: &str,
        direction: Direction,
        on_step: &mut S,
    ) -> Result<Report, EngineError>
    where
        C: Connection,
        S: FnMut(&Step) + ?Sized,
    {
        let started = Instant::now();
        let result = async {
            let session = self.settings.open_run_async(client).await?;
            if direction == Direction::Upgrade && target == "heads" {
                if let Some(report) = self.chain.nothing_to_do(&session) {
                    return Ok(report);
                }
            }
            let engine = match self.engine() {
                Ok(engine) => engine,
                Err(e) => {
                    session.release_async(client).await;
                    return Err(e);
                }
            };
            let on_step = &mut |step: &Step| {
                log::info!(target: "alembic_embed", "{} ({} ms)", step.description, step.duration.as_millis());
                on_step(step);
            };
            engine
                .run_async(client, Some(session), target, direction, on_step)
                .await
        }
        .await;
        let report = match result {
            Ok(report) => report,
            Err(e) => {
                log::error!(target: "alembic_embed", "{e}");
                return Err(e);
            }
        };
        log_report(&report, started.elapsed());
        Ok(report)
    }

    /// The state of the database on any [`Connection`]: read only, no lock.
    pub async fn status_on<C: Connection>(&self, client: &mut C) -> Result<Status, EngineError> {
        let engine = self.engine()?;
        let current = engine.current_async(client).await?;
        engine.status(&current)
    }

    /// Upgrades to the head on an async client (`tokio-postgres`).
    #[cfg(feature = "async")]
    pub async fn upgrade_async(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<Report, EngineError> {
        self.run_on(&mut &*client, "heads", Direction::Upgrade)
            .await
    }

    /// Upgrades many tenant schemas ([`Runner::schema`]), as many at once
    /// as there are clients: each client migrates one schema after
    /// another. Every schema's result, in the order given (none without a
    /// client). A schema that fails does not stop the others.
    ///
    /// ```no_run
    /// # alembic_embed::embed_migrations!("../migrations");
    /// # async fn f(clients: Vec<tokio_postgres::Client>) {
    /// let tenants: Vec<String> = (1..=100).map(|i| format!("tenant_{i}")).collect();
    /// for (tenant, result) in migrations::runner().upgrade_schemas_async(&clients, &tenants).await {
    ///     if let Err(e) = result {
    ///         eprintln!("{tenant}: {e}");
    ///     }
    /// }
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub async fn upgrade_schemas_async(
        &self,
        clients: &[tokio_postgres::Client],
        schemas: &[String],
    ) -> Vec<(String, Result<Report, EngineError>)> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Mutex;
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<Report, EngineError>>>> =
            Mutex::new(schemas.iter().map(|_| None).collect());
        let workers = clients.iter().map(|client| {
            let (next, results) = (&next, &results);
            async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(schema) = schemas.get(i) else { break };
                    let result = self
                        .clone()
                        .schema(schema.clone())
                        .upgrade_async(client)
                        .await;
                    results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(result);
                }
            }
        });
        futures_util::future::join_all(workers).await;
        let results = results.into_inner().unwrap_or_else(|p| p.into_inner());
        schemas
            .iter()
            .cloned()
            .zip(results)
            .filter_map(|(s, r)| Some((s, r?)))
            .collect()
    }

    /// Upgrades to `target` (an id, `+2`, `label@head`, ...) on an async
    /// client.
    #[cfg(feature = "async")]
    pub async fn upgrade_to_async(
        &self,
        client: &tokio_postgres::Client,
        target: &str,
    ) -> Result<Report, EngineError> {
        self.run_on(&mut &*client, target, Direction::Upgrade).await
    }

    /// Downgrades to `target` (`-1`, an id, `base`, ...) on an async client.
    #[cfg(feature = "async")]
    pub async fn downgrade_to_async(
        &self,
        client: &tokio_postgres::Client,
        target: &str,
    ) -> Result<Report, EngineError> {
        self.run_on(&mut &*client, target, Direction::Downgrade)
            .await
    }

    /// The version table's rows, on an async client.
    #[cfg(feature = "async")]
    pub async fn current_async(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<Vec<String>, EngineError> {
        Ok(self.status_on(&mut &*client).await?.heads)
    }

    /// The revisions `upgrade` would apply, on an async client.
    #[cfg(feature = "async")]
    pub async fn pending_async(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<Vec<String>, EngineError> {
        Ok(self.status_on(&mut &*client).await?.pending)
    }

    /// The database's state, on an async client.
    #[cfg(feature = "async")]
    pub async fn status_async(
        &self,
        client: &tokio_postgres::Client,
    ) -> Result<Status, EngineError> {
        self.status_on(&mut &*client).await
    }

    /// Upgrades to the head (every head, if the chain allows several).
    #[cfg(feature = "sync")]
    pub fn upgrade(&self, client: &mut postgres::Client) -> Result<Report, EngineError> {
        self.run_sync(client, "heads", Direction::Upgrade)
    }

    /// Upgrades to `target` (an id, `+2`, `label@head`, ...).
    #[cfg(feature = "sync")]
    pub fn upgrade_to(
        &self,
        client: &mut postgres::Client,
        target: &str,
    ) -> Result<Report, EngineError> {
        self.run_sync(client, target, Direction::Upgrade)
    }

    /// Downgrades to `target` (`-1`, an id, `base`, `label@base`, ...).
    #[cfg(feature = "sync")]
    pub fn downgrade_to(
        &self,
        client: &mut postgres::Client,
        target: &str,
    ) -> Result<Report, EngineError> {
        self.run_sync(client, target, Direction::Downgrade)
    }

    /// The version table's rows.
    #[cfg(feature = "sync")]
    pub fn current(&self, client: &mut postgres::Client) -> Result<Vec<String>, EngineError> {
        Ok(wait(self.status_on(client))?.heads)
    }

    /// The revisions `upgrade` would apply, in order.
    #[cfg(feature = "sync")]
    pub fn pending(&self, client: &mut postgres::Client) -> Result<Vec<String>, EngineError> {
        Ok(wait(self.status_on(client))?.pending)
    }

    /// The database's state against the chain.
    #[cfg(feature = "sync")]
    pub fn status(&self, client: &mut postgres::Client) -> Result<Status, EngineError> {
        wait(self.status_on(client))
    }

    /// A synchronous run.
    #[cfg(feature = "sync")]
    fn run_sync(
        &self,
        client: &mut postgres::Client,
        target: &str,
        direction: Direction,
    ) -> Result<Report, EngineError> {
        wait(self.run_reporting(client, target, direction, &mut |_: &Step| {}))
    }
}

fn log_report(report: &Report, elapsed: Duration) {
    for warning in &report.warnings {
        log::warn!(target: "alembic_embed", "{warning}");
    }
    if !report.unverified.is_empty() {
        log::info!(
            target: "alembic_embed",
            "{} applied revisions have no recorded checksum (adopted or stamped): {}",
            report.unverified.len(),
            report.unverified.join(", ")
        );
    }
    let at = if report.after.is_empty() {
        "base".to_owned()
    } else {
        report.after.join(", ")
    };
    if report.steps.is_empty() {
        log::info!(target: "alembic_embed", "database up to date at {at} ({} ms)", elapsed.as_millis());
    } else {
        log::info!(
            target: "alembic_embed",
            "database at {at}: {} revision{} run in {} ms",
            report.steps.len(),
            if report.steps.len() == 1 { "" } else { "s" },
            elapsed.as_millis()
        );
    }
}
