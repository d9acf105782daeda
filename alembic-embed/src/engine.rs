//! The migration engine: applies and undoes revisions on PostgreSQL and
//! keeps `alembic_version` and the ledger, for the CLI and for embedded
//! binaries alike.
//!
//! Every run that writes takes a PostgreSQL advisory lock first, then reads
//! the state, verifies applied revisions' checksums, plans, and runs.
//! Consecutive transactional revisions go to the server in one round trip:
//! their statements, version-table and ledger rows, each revision's
//! duration measured by the server. The engine is written once, `async`,
//! over [`Connection`]; the synchronous methods drive it over a
//! `postgres::Client`, the `_async` ones over a `tokio_postgres::Client`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use alembic_core::display::{log_entry, one_line, LineStyle};
use alembic_core::{HeadState, Resolver, Revision, RevisionMap, Statement, Target, VersionOp};
use tokio_postgres::SimpleQueryMessage;

#[cfg(feature = "sync")]
use crate::connection::wait;
use crate::connection::Connection;

use crate::errors::{Aftermath, EngineError, SqlFailure};

/// How the engine names its tables and runs its transactions.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The version table (`alembic_version`).
    pub version_table: String,
    /// Its schema (`None`: the search path).
    pub version_table_schema: Option<String>,
    /// Commit each revision on its own instead of one transaction per run.
    pub transaction_per_migration: bool,
    /// Recorded in the ledger, e.g. `cargo-alembic 0.1.0`.
    pub tool: String,
    /// What an upgrade does when an applied revision's upgrade section
    /// changed since it ran.
    pub checksum_mismatch: ChecksumPolicy,
    /// What an upgrade does when the version table names revisions the
    /// chain does not have.
    pub database_ahead: AheadPolicy,
    /// How long to wait for another migrator's lock (`None`: as long as it
    /// takes).
    pub lock_timeout: Option<Duration>,
    /// `SET lock_timeout` while revisions run, so that a statement never
    /// queues behind a long transaction for longer than this while every
    /// query on its table queues behind it.
    pub statement_lock_timeout: Option<Duration>,
    /// Recorded with each revision a run applies (`--tag`).
    pub tag: Option<String>,
    /// How messages name the command to run (`cargo alembic`, or an
    /// embedding binary's `myapp migrate`): `<command> accept ...`.
    pub command: String,
}

/// What an upgrade does when an applied revision was edited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChecksumPolicy {
    /// Stop before any SQL runs, naming the revision and both checksums.
    #[default]
    Refuse,
    /// Carry on, with the same message as a warning in the report (and the
    /// log).
    Warn,
}

/// What an upgrade does when the database has revisions the chain does not
/// know, typically after a binary was rolled back to an older release.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AheadPolicy {
    /// Stop with an error naming the unknown revisions.
    #[default]
    Refuse,
    /// Run nothing and report a warning: the database is left as it is.
    Allow,
}

impl Settings {
    fn qualified(&self, table: &str) -> String {
        match &self.version_table_schema {
            Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
            None => quote_ident(table),
        }
    }

    /// The version table, qualified and quoted.
    pub fn version_table_sql(&self) -> String {
        self.qualified(&self.version_table)
    }

    /// The ledger table, `<version_table>_ledger` beside the version table.
    pub fn ledger_table_sql(&self) -> String {
        self.qualified(&format!("{}_ledger", self.version_table))
    }

    /// The advisory-lock key of this version table, as a SQL expression the
    /// server evaluates: a hash of `alembic:<schema>.<table>` where the
    /// schema is the one the table is (or will be created) in, whatever
    /// spelling configured it: the configured schema, else the schema where
    /// the search path finds the table, else `current_schema()`. So a
    /// migrator configured with `version_table_schema = "public"` and one
    /// with no schema take the same lock on the same table.
    pub fn lock_key_sql(&self) -> String {
        let schema = match &self.version_table_schema {
            Some(schema) => quote_literal(schema),
            None => format!(
                "COALESCE((SELECT n.nspname::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.oid = pg_catalog.to_regclass({})), pg_catalog.current_schema()::text, '')",
                quote_literal(&self.version_table_sql())
            ),
        };
        format!(
            "pg_catalog.hashtextextended('alembic:' || {schema} || '.' || {}, 0)",
            quote_literal(&self.version_table)
        )
    }

    /// `CREATE TABLE` for the version table, as Alembic creates it, and for
    /// the ledger: exactly two statements.
    pub fn create_tables_sql(&self) -> String {
        format!(
            "{}\n{}",
            self.create_version_table_sql(),
            self.create_ledger_sql()
        )
    }

    fn create_version_table_sql(&self) -> String {
        let pk = quote_ident(&format!("{}_pkc", self.version_table));
        format!(
            "CREATE TABLE IF NOT EXISTS {v} (\n    version_num VARCHAR(32) NOT NULL,\n    CONSTRAINT {pk} PRIMARY KEY (version_num)\n);\n",
            v = self.version_table_sql()
        )
    }

    fn create_ledger_sql(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {l} (\n    revision VARCHAR(32) NOT NULL PRIMARY KEY,\n    upgrade_checksum TEXT NOT NULL,\n    \
             downgrade_checksum TEXT,\n    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n    duration_ms DOUBLE PRECISION,\n    \
             tool TEXT NOT NULL,\n    status TEXT NOT NULL DEFAULT 'applied',\n    error TEXT,\n    \
             accepted JSONB NOT NULL DEFAULT '[]'::jsonb,\n    tag TEXT\n);\n",
            l = self.ledger_table_sql()
        )
    }

    /// Creates the tables that are missing, and only those: `CREATE TABLE
    /// IF NOT EXISTS` needs the CREATE privilege even when the table exists,
    /// and the usual application role has none. A ledger made by an earlier
    /// version gets the `tag` column.
    fn ensure_tables_sql(&self) -> String {
        let (v, l) = (self.version_table_sql(), self.ledger_table_sql());
        format!(
            "DO $alembic$ BEGIN\n\
             IF pg_catalog.to_regclass({vl}) IS NULL THEN\n{create_v}END IF;\n\
             IF pg_catalog.to_regclass({ll}) IS NULL THEN\n{create_l}\
             ELSIF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass({ll}) AND attname = 'tag' AND NOT attisdropped) THEN\n\
             ALTER TABLE {l} ADD COLUMN tag TEXT;\nEND IF;\nEND $alembic$;\n",
            vl = quote_literal(&v),
            ll = quote_literal(&l),
            create_v = self.create_version_table_sql(),
            create_l = self.create_ledger_sql(),
        )
    }

    /// What a run needs of the ledger (`current -v` reads the rest).
    const LEDGER_COLUMNS: &'static str =
        "revision, upgrade_checksum, downgrade_checksum, status, error";

    /// Takes the advisory lock, creates the tables if needed and reads the
    /// version table and the ledger, in one round trip and without the
    /// chain (so that it can overlap with loading it). The lock is held
    /// until the run ends, or until the connection closes.
    #[cfg(feature = "sync")]
    pub fn open_session(&self, client: &mut postgres::Client) -> Result<Session, EngineError> {
        wait(self.open_session_async(client))
    }

    /// [`Settings::open_session`] on any [`Connection`].
    pub async fn open_session_async<C: Connection>(
        &self,
        client: &mut C,
    ) -> Result<Session, EngineError> {
        let key = acquire(client, &self.lock_key_sql(), self.lock_timeout).await?;
        let sql = format!(
            "{}SELECT version_num FROM {};\nSELECT {} FROM {};",
            self.ensure_tables_sql(),
            self.version_table_sql(),
            Self::LEDGER_COLUMNS,
            self.ledger_table_sql()
        );
        let messages = match client.simple_query(&sql).await {
            Ok(m) => m,
            Err(source) => {
                release(client, key).await;
                return Err(EngineError::Database {
                    context: "cannot lock and read the version table".into(),
                    source,
                });
            }
        };
        let mut session = Session {
            key,
            heads: Vec::new(),
            ledger: HashMap::new(),
        };
        // Statements: 0 the tables, 1 the versions, 2 the ledger.
        let mut statement = 0;
        for message in messages {
            match message {
                SimpleQueryMessage::CommandComplete(_) => statement += 1,
                SimpleQueryMessage::Row(row) if statement == 1 => session
                    .heads
                    .push(row.get(0).unwrap_or_default().to_owned()),
                SimpleQueryMessage::Row(row) if statement == 2 => {
                    let text = |i: usize| row.get(i).map(str::to_owned);
                    session.ledger.insert(
                        text(0).unwrap_or_default(),
                        LedgerRow {
                            upgrade_checksum: text(1).unwrap_or_default(),
                            downgrade_checksum: text(2),
                            status: text(3).unwrap_or_default(),
                            error: text(4),
                            applied_at: String::new(),
                            duration_ms: None,
                            tool: String::new(),
                            tag: None,
                        },
                    );
                }
                _ => {}
            }
        }
        session.heads.sort();
        Ok(session)
    }
}

/// Takes the advisory lock by polling `pg_try_advisory_lock` rather than
/// waiting in `pg_advisory_lock`. A session blocked inside a statement holds
/// a snapshot, and a `CREATE INDEX CONCURRENTLY` run by the lock's holder
/// waits for every older snapshot to go: a deadlock, which PostgreSQL ends
/// by failing one side. Between polls a waiting migrator holds nothing.
async fn acquire<C: Connection>(
    client: &mut C,
    key_sql: &str,
    timeout: Option<Duration>,
) -> Result<i64, EngineError> {
    let sql =
        format!("SELECT k, pg_catalog.pg_try_advisory_lock(k) FROM (SELECT {key_sql} AS k) AS key");
    let mut pause = Duration::from_millis(5);
    let mut announced = false;
    let started = Instant::now();
    loop {
        let messages = client
            .simple_query(&sql)
            .await
            .map_err(|source| EngineError::Database {
                context: "cannot take the migration lock".into(),
                source,
            })?;
        let row = messages.iter().find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some((
                row.get(0).and_then(|k| k.parse::<i64>().ok()),
                row.get(1) == Some("t"),
            )),
            _ => None,
        });
        let Some((Some(key), taken)) = row else {
            return Err(EngineError::Lock {
                reason: "the server returned no lock key".into(),
            });
        };
        if taken {
            return Ok(key);
        }
        if let Some(limit) = timeout {
            if started.elapsed() >= limit {
                return Err(EngineError::LockTimeout {
                    waited: limit,
                    holders: lock_holders(client, key).await,
                });
            }
        }
        if !announced {
            log::info!(
                target: "alembic_embed",
                "another migrator holds the lock of this version table: waiting for it"
            );
            announced = true;
        }
        let mut next = pause;
        if let Some(limit) = timeout {
            next = next.min(limit.saturating_sub(started.elapsed()));
        }
        client.pause(next).await;
        pause = (pause * 2).min(MAX_LOCK_POLL);
    }
}

/// Who holds the advisory lock `key`: one line per session, from
/// `pg_locks` and `pg_stat_activity` (empty if it was released meanwhile
/// or the role may not see other sessions).
async fn lock_holders<C: Connection>(client: &mut C, key: i64) -> Vec<String> {
    let sql = format!(
        "SELECT a.pid, COALESCE(NULLIF(a.application_name, ''), '(none)'), COALESCE(a.usename::text, '?'), \
         COALESCE(a.client_addr::text, 'local'), COALESCE(a.backend_start::text, '?'), COALESCE(a.state, '?'), \
         COALESCE(a.state_change::text, '?') \
         FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
         AND ((l.classid::bigint << 32) | l.objid::bigint) = {key}"
    );
    let Ok(messages) = client.simple_query(&sql).await else {
        return Vec::new();
    };
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(format!(
                "pid {} (application {}, user {}, from {}, connected since {}, {} since {})",
                r.get(0).unwrap_or("?"),
                r.get(1).unwrap_or("?"),
                r.get(2).unwrap_or("?"),
                r.get(3).unwrap_or("?"),
                r.get(4).unwrap_or("?"),
                r.get(5).unwrap_or("?"),
                r.get(6).unwrap_or("?"),
            )),
            _ => None,
        })
        .collect()
}

/// The longest pause between two attempts to take the migration lock.
const MAX_LOCK_POLL: Duration = Duration::from_millis(200);

/// Rolls the failed transaction back and runs again, in a new one, what it
/// had run before the failing batch; false if any of it fails.
async fn replay<C: Connection>(client: &mut C, before: &[String]) -> bool {
    if client.batch_execute("ROLLBACK; BEGIN").await.is_err() {
        return false;
    }
    for sql in before {
        if client.batch_execute(sql).await.is_err() {
            return false;
        }
    }
    true
}

/// Ends any transaction and releases the advisory lock.
async fn release<C: Connection>(client: &mut C, key: i64) {
    // One round trip; a failed transaction must end before the lock can be
    // released, and without one ROLLBACK is only a warning.
    let _ = client
        .batch_execute(&format!("ROLLBACK; SELECT pg_advisory_unlock({key})"))
        .await;
}

/// A run's database side: the advisory lock held, the tables there, and
/// the state as read after the lock was taken.
#[derive(Debug)]
pub struct Session {
    key: i64,
    heads: Vec<String>,
    ledger: HashMap<String, LedgerRow>,
}

impl Session {
    /// Ends the session without a run: releases the lock.
    pub async fn release_async<C: Connection>(self, client: &mut C) {
        release(client, self.key).await;
    }

    /// [`Session::release_async`] on the synchronous client.
    #[cfg(feature = "sync")]
    pub fn release(self, client: &mut postgres::Client) {
        wait(self.release_async(client));
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            version_table: "alembic_version".into(),
            version_table_schema: None,
            transaction_per_migration: false,
            tool: format!("alembic-embed {}", env!("CARGO_PKG_VERSION")),
            checksum_mismatch: ChecksumPolicy::Refuse,
            database_ahead: AheadPolicy::Refuse,
            lock_timeout: None,
            statement_lock_timeout: None,
            tag: None,
            command: "cargo alembic".to_owned(),
        }
    }
}

/// Upgrade or downgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Applying a revision.
    Upgrade,
    /// Undoing it.
    Downgrade,
}

impl Direction {
    /// `upgrade` or `downgrade`.
    pub fn word(self) -> &'static str {
        match self {
            Direction::Upgrade => "upgrade",
            Direction::Downgrade => "downgrade",
        }
    }
}

/// One revision applied or undone.
#[derive(Clone, Debug)]
pub struct Step {
    /// The revision.
    pub revision: String,
    /// What was done.
    pub direction: Direction,
    /// Alembic's log line: `Running upgrade a -> b, message`.
    pub description: String,
    /// Wall time of the revision, as seen by this process.
    pub duration: Duration,
    /// 1-based position of this revision in the run.
    pub position: usize,
    /// How many revisions the run has.
    pub total: usize,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// The version table's rows before.
    pub before: Vec<String>,
    /// And after.
    pub after: Vec<String>,
    /// Revisions run, in order.
    pub steps: Vec<Step>,
    /// Applied revisions without a ledger row (adopted from Python Alembic,
    /// or stamped): their checksums could not be verified.
    pub unverified: Vec<String>,
    /// Warnings: applied revisions whose downgrade section changed since,
    /// and what a lenient policy let through (an edited upgrade section, a
    /// database ahead of the chain).
    pub warnings: Vec<String>,
}

impl Report {
    /// The closing line: what ran and where the database is.
    pub fn summary(&self, verb: &str) -> String {
        let at = if self.after.is_empty() {
            "base".to_owned()
        } else {
            self.after.join(", ")
        };
        if self.steps.is_empty() {
            format!("Nothing to {verb}: the database is at {at}")
        } else {
            format!(
                "Done: {} revision{} in {:.0} ms; the database is at {at}",
                self.steps.len(),
                if self.steps.len() == 1 { "" } else { "s" },
                self.steps
                    .iter()
                    .map(|s| s.duration.as_secs_f64() * 1000.0)
                    .sum::<f64>()
            )
        }
    }

    /// A stamp's line: `Stamped: the database is at X (was Y)`.
    pub fn stamped(&self) -> String {
        let at = |rows: &[String]| {
            if rows.is_empty() {
                "base".to_owned()
            } else {
                rows.join(", ")
            }
        };
        format!(
            "Stamped: the database is at {} (was {})",
            at(&self.after),
            at(&self.before)
        )
    }

    /// Warnings and notes for stderr: edited downgrades (and edited
    /// upgrades under [`ChecksumPolicy::Warn`]), unverified revisions.
    pub fn notes(&self) -> Vec<String> {
        let mut notes: Vec<String> = self
            .warnings
            .iter()
            .map(|w| format!("warning: {w}"))
            .collect();
        if !self.unverified.is_empty() {
            notes.push(format!(
                "note: {} applied revision{} without a ledger row (adopted from Python Alembic, or stamped), so not verified: {}",
                self.unverified.len(),
                if self.unverified.len() == 1 { "" } else { "s" },
                self.unverified.join(", ")
            ));
        }
        notes
    }
}

/// A ledger row.
#[derive(Clone, Debug)]
pub struct LedgerRow {
    /// The upgrade checksum recorded when the revision ran.
    pub upgrade_checksum: String,
    /// The downgrade checksum recorded then.
    pub downgrade_checksum: Option<String>,
    /// `applied` or `failed`.
    pub status: String,
    /// What failed, for a failed row.
    pub error: Option<String>,
    /// When, as text.
    pub applied_at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: Option<f64>,
    /// Which tool ran it.
    pub tool: String,
    /// The `--tag` of the run that applied it.
    pub tag: Option<String>,
}

impl LedgerRow {
    /// The lines `current -v` and `history -v -i` show under a revision:
    /// when, by what, how long, and the run's tag.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "Applied: {} by {} in {:.1} ms ({})\n",
            self.applied_at,
            self.tool,
            self.duration_ms.unwrap_or(0.0),
            self.status
        );
        if let Some(tag) = &self.tag {
            out.push_str(&format!("Tag: {tag}\n"));
        }
        out
    }
}

/// One revision whose edit `accept` recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The revision.
    pub revision: String,
    /// The ledger's checksums before (upgrade, downgrade); `None` when the
    /// revision had no ledger row.
    pub previous: Option<(String, Option<String>)>,
    /// The upgrade checksum recorded now.
    pub upgrade: String,
    /// The downgrade checksum recorded now.
    pub downgrade: Option<String>,
}

/// `accept`'s output: a line per revision whose edit was recorded.
pub fn accepted_text(accepted: &[Accepted], by: &str) -> String {
    accepted
        .iter()
        .map(|a| match &a.previous {
            Some((old, _)) => format!(
                "Accepted the edit of {} by {by}: {old} -> {}\n",
                a.revision, a.upgrade
            ),
            None => format!(
                "Recorded {} (it had no ledger row) by {by}: {}\n",
                a.revision, a.upgrade
            ),
        })
        .collect()
}

/// The database's state.
#[derive(Clone, Debug, Default)]
pub struct Current {
    /// Rows of the version table.
    pub heads: Vec<String>,
    /// Those rows that are revisions of the chain, by index.
    pub known: Vec<usize>,
    /// Rows that are not in the chain.
    pub unknown: Vec<String>,
    /// The ledger, by revision.
    pub ledger: HashMap<String, LedgerRow>,
}

/// Applies and undoes revisions of one chain.
pub struct Engine<'m> {
    map: &'m RevisionMap,
    settings: Settings,
}

/// Quotes an identifier when it needs it (PostgreSQL folds bare names to
/// lowercase).
pub fn quote_ident(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if bare {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A SQL string literal.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// What one revision sends to the server, and where its statements are.
struct Batch<'r> {
    sql: String,
    /// (byte offset in `sql`, statement)
    statements: Vec<(usize, &'r Statement)>,
}

impl<'m> Engine<'m> {
    /// An engine for a chain.
    pub fn new(map: &'m RevisionMap, settings: Settings) -> Self {
        Engine { map, settings }
    }

    /// The chain.
    pub fn map(&self) -> &'m RevisionMap {
        self.map
    }

    /// The version table, qualified and quoted.
    pub fn version_table(&self) -> String {
        self.settings.version_table_sql()
    }

    /// The ledger table: `<version_table>_ledger` beside the version table.
    pub fn ledger_table(&self) -> String {
        self.settings.ledger_table_sql()
    }

    /// `CREATE TABLE` for the version table and the ledger.
    pub fn create_tables_sql(&self) -> String {
        self.settings.create_tables_sql()
    }

    fn db<T>(context: &str, r: Result<T, tokio_postgres::Error>) -> Result<T, EngineError> {
        r.map_err(|source| EngineError::Database {
            context: context.to_owned(),
            source,
        })
    }

    /// Reads the version table and the ledger without locking or writing;
    /// missing tables read as empty.
    #[cfg(feature = "sync")]
    pub fn current(&self, client: &mut postgres::Client) -> Result<Current, EngineError> {
        wait(self.current_async(client))
    }

    /// [`Engine::current`] on any [`Connection`]: one round trip.
    pub async fn current_async<C: Connection>(
        &self,
        client: &mut C,
    ) -> Result<Current, EngineError> {
        let (v, l) = (self.version_table(), self.ledger_table());
        // A missing table reads as empty.
        let sql = format!(
            "SELECT to_regclass({}) IS NOT NULL, to_regclass({}) IS NOT NULL;",
            quote_literal(&v),
            quote_literal(&l)
        );
        let messages = Self::db("cannot read the catalog", client.simple_query(&sql).await)?;
        let (has_versions, has_ledger) = messages
            .iter()
            .find_map(|m| match m {
                SimpleQueryMessage::Row(row) => {
                    Some((row.get(0) == Some("t"), row.get(1) == Some("t")))
                }
                _ => None,
            })
            .unwrap_or((false, false));
        let mut current = Current::default();
        if has_versions {
            let rows = Self::db(
                "cannot read the version table",
                client
                    .simple_query(&format!("SELECT version_num FROM {v}"))
                    .await,
            )?;
            current.heads = rows
                .iter()
                .filter_map(|m| match m {
                    SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
                    _ => None,
                })
                .collect();
        }
        current.heads.sort();
        for id in &current.heads {
            match self.map.index_of(id) {
                Some(i) => current.known.push(i),
                None => current.unknown.push(id.clone()),
            }
        }
        if has_ledger {
            let sql = format!(
                "SELECT revision, upgrade_checksum, downgrade_checksum, status, error, applied_at::text, duration_ms, tool, \
                 to_jsonb(l.*)->>'tag' FROM {l} AS l"
            );
            for m in Self::db("cannot read the ledger", client.simple_query(&sql).await)? {
                let SimpleQueryMessage::Row(r) = m else {
                    continue;
                };
                let text = |i: usize| r.get(i).map(str::to_owned);
                current.ledger.insert(
                    text(0).unwrap_or_default(),
                    LedgerRow {
                        upgrade_checksum: text(1).unwrap_or_default(),
                        downgrade_checksum: text(2),
                        status: text(3).unwrap_or_default(),
                        error: text(4),
                        applied_at: text(5).unwrap_or_default(),
                        duration_ms: r.get(6).and_then(|d| d.parse().ok()),
                        tool: text(7).unwrap_or_default(),
                        tag: text(8),
                    },
                );
            }
        }
        Ok(current)
    }

    /// Applied revisions (the rows and everything they imply) in order.
    pub fn applied(&self, current: &Current) -> Vec<usize> {
        let set = self.map.ancestors(&current.known, true);
        self.map
            .order()
            .iter()
            .copied()
            .filter(|&i| set[i])
            .collect()
    }

    /// Applied revisions whose upgrade section differs from the ledger's.
    pub fn edited(&self, current: &Current) -> Vec<String> {
        self.applied(current)
            .into_iter()
            .map(|i| self.map.rev(i))
            .filter(|rev| {
                current
                    .ledger
                    .get(&rev.id)
                    .is_some_and(|row| row.upgrade_checksum != rev.upgrade.checksum().as_str())
            })
            .map(|rev| rev.id.clone())
            .collect()
    }

    /// `current`'s text: each row in Alembic's one-line form, or verbosely
    /// with its ledger record; rows not in the chain are marked.
    pub fn current_text(&self, current: &Current, verbose: bool) -> String {
        let mut out = String::new();
        for &i in &current.known {
            if verbose {
                out.push_str(&log_entry(self.map, i));
                if let Some(row) = current.ledger.get(&self.map.rev(i).id) {
                    out.push_str(&row.describe());
                }
                out.push('\n');
            } else {
                out.push_str(&one_line(
                    self.map,
                    i,
                    LineStyle {
                        branches: true,
                        ..LineStyle::default()
                    },
                ));
                out.push('\n');
            }
        }
        for id in &current.unknown {
            out.push_str(&format!("{id} (not in the revision chain)\n"));
        }
        out
    }

    /// Applied revisions without a ledger row.
    pub fn unverified(&self, current: &Current) -> Vec<String> {
        self.applied(current)
            .into_iter()
            .map(|i| &self.map.rev(i).id)
            .filter(|id| !current.ledger.contains_key(*id))
            .cloned()
            .collect()
    }

    /// The state read when `session` opened, against this chain; and the
    /// key of the lock to release when the run ends.
    fn state(&self, session: Session) -> (i64, Current) {
        let mut current = Current {
            heads: session.heads,
            ledger: session.ledger,
            ..Current::default()
        };
        for id in &current.heads {
            match self.map.index_of(id) {
                Some(i) => current.known.push(i),
                None => current.unknown.push(id.clone()),
            }
        }
        (session.key, current)
    }

    fn check_state(
        &self,
        current: &Current,
        direction: Direction,
        report: &mut Report,
    ) -> Result<(), EngineError> {
        if !current.unknown.is_empty() {
            return Err(EngineError::UnknownRevisions {
                ids: current.unknown.clone(),
            });
        }
        if let Some((id, row)) = current.ledger.iter().find(|(_, r)| r.status == "failed") {
            return Err(EngineError::FailedEarlier {
                command: self.settings.command.clone(),
                revision: id.clone(),
                error: row.error.clone().unwrap_or_default(),
            });
        }
        for i in self.applied(current) {
            let rev = self.map.rev(i);
            let Some(row) = current.ledger.get(&rev.id) else {
                report.unverified.push(rev.id.clone());
                continue;
            };
            let now = rev.upgrade.checksum().as_str();
            if direction == Direction::Upgrade && row.upgrade_checksum != now {
                let error = EngineError::ChecksumMismatch {
                    command: self.settings.command.clone(),
                    revision: rev.id.clone(),
                    file: rev.path.display().to_string(),
                    recorded: row.upgrade_checksum.clone(),
                    current: now.to_owned(),
                };
                match self.settings.checksum_mismatch {
                    ChecksumPolicy::Refuse => return Err(error),
                    ChecksumPolicy::Warn => report.warnings.push(error.to_string()),
                }
            }
            let down_now = rev
                .downgrade
                .as_ref()
                .map(|d| d.checksum().as_str().to_owned());
            if row.downgrade_checksum != down_now {
                report.warnings.push(format!(
                    "the downgrade section of revision {} ({}) changed since it was applied: recorded {}, now {}",
                    rev.id,
                    rev.path.display(),
                    row.downgrade_checksum.as_deref().unwrap_or("none"),
                    down_now.as_deref().unwrap_or("none")
                ));
            }
        }
        Ok(())
    }

    fn statements<'r>(
        &self,
        rev: &'r Revision,
        direction: Direction,
    ) -> Result<&'r [Statement], EngineError> {
        match direction {
            Direction::Upgrade => rev
                .upgrade_statements()
                .map_err(|e| EngineError::Lex(Box::new(e))),
            Direction::Downgrade => match rev
                .downgrade_statements()
                .map_err(|e| EngineError::Lex(Box::new(e)))?
            {
                Some(s) => Ok(s),
                None => Err(EngineError::Irreversible {
                    revision: rev.id.clone(),
                    file: rev.path.display().to_string(),
                }),
            },
        }
    }

    /// Alembic's log line.
    fn describe(&self, i: usize, direction: Direction) -> String {
        let rev = self.map.rev(i);
        let down = rev.down_revisions.join(", ");
        let message = rev.message.as_deref().unwrap_or("");
        match direction {
            Direction::Upgrade => format!("Running upgrade {down} -> {}, {message}", rev.id),
            Direction::Downgrade => format!("Running downgrade {} -> {down}, {message}", rev.id),
        }
    }

    fn version_sql(&self, op: &VersionOp) -> String {
        let v = self.version_table();
        match op {
            VersionOp::Insert(id) => format!(
                "INSERT INTO {v} (version_num) VALUES ({});\n",
                quote_literal(id)
            ),
            VersionOp::Delete(id) => format!(
                "DELETE FROM {v} WHERE version_num = {};\n",
                quote_literal(id)
            ),
            VersionOp::Update { from, to } => {
                format!(
                    "UPDATE {v} SET version_num = {} WHERE version_num = {};\n",
                    quote_literal(to),
                    quote_literal(from)
                )
            }
        }
    }

    fn ledger_sql(&self, rev: &Revision, direction: Direction, timed: bool) -> String {
        let l = self.ledger_table();
        match direction {
            Direction::Upgrade => {
                let duration = if timed {
                    "extract(epoch FROM clock_timestamp() - current_setting('alembic.t0')::timestamptz) * 1000"
                } else {
                    "NULL"
                };
                let down = rev
                    .downgrade
                    .as_ref()
                    .map_or("NULL".to_owned(), |d| quote_literal(d.checksum().as_str()));
                // The column is named only when there is a tag, so that
                // offline SQL without one runs on a ledger made before tags.
                let (tag_column, tag) = match &self.settings.tag {
                    Some(tag) => (", tag", format!(", {}", quote_literal(tag))),
                    None => ("", String::new()),
                };
                let tag_update = if tag.is_empty() {
                    ""
                } else {
                    ", tag = EXCLUDED.tag"
                };
                format!(
                    "INSERT INTO {l} (revision, upgrade_checksum, downgrade_checksum, duration_ms, tool{tag_column}) VALUES ({}, {}, {down}, {duration}, {}{tag}) \
                     ON CONFLICT (revision) DO UPDATE SET upgrade_checksum = EXCLUDED.upgrade_checksum, downgrade_checksum = \
                     EXCLUDED.downgrade_checksum, applied_at = now(), duration_ms = EXCLUDED.duration_ms, tool = EXCLUDED.tool, \
                     status = 'applied', error = NULL{tag_update};\n",
                    quote_literal(&rev.id),
                    quote_literal(rev.upgrade.checksum().as_str()),
                    quote_literal(&self.settings.tool)
                )
            }
            Direction::Downgrade => format!(
                "DELETE FROM {l} WHERE revision = {};\n",
                quote_literal(&rev.id)
            ),
        }
    }

    /// `BEGIN`, and the statement lock timeout for the transaction.
    fn begin_sql(&self) -> String {
        match self.settings.statement_lock_timeout {
            Some(t) => format!("BEGIN; SET LOCAL lock_timeout = '{}ms'", t.as_millis()),
            None => "BEGIN".to_owned(),
        }
    }

    /// One revision's round trip: savepoint, timer, statements, bookkeeping.
    fn batch<'r>(
        &self,
        rev: &'r Revision,
        direction: Direction,
        ops: &[VersionOp],
        online: bool,
    ) -> Result<Batch<'r>, EngineError> {
        let statements = self.statements(rev, direction)?;
        let mut sql = String::new();
        if online {
            sql.push_str("SELECT set_config('alembic.t0', clock_timestamp()::text, true);\n");
        }
        let mut located = Vec::with_capacity(statements.len());
        for s in statements {
            located.push((sql.len(), s));
            sql.push_str(&s.sql);
            sql.push_str(";\n");
        }
        for op in ops {
            sql.push_str(&self.version_sql(op));
        }
        sql.push_str(&self.ledger_sql(rev, direction, online));
        if online {
            sql.push_str(&format!(
                "SELECT '{TIMING}', {}, extract(epoch FROM clock_timestamp() - current_setting('alembic.t0')::timestamptz) * 1000;\n",
                quote_literal(&rev.id)
            ));
        }
        Ok(Batch {
            sql,
            statements: located,
        })
    }

    /// Upgrades to `target` (`head`, `heads`, an id, `+2`, `label@head`, ...).
    #[cfg(feature = "sync")]
    pub fn upgrade(
        &self,
        client: &mut postgres::Client,
        target: &str,
        on_step: &mut dyn FnMut(&Step),
    ) -> Result<Report, EngineError> {
        wait(self.run_async(client, None, target, Direction::Upgrade, on_step))
    }

    /// [`Engine::upgrade`] in a session opened with [`Settings::open_session`]
    /// (for instance while the chain was loading); releases its lock.
    #[cfg(feature = "sync")]
    pub fn upgrade_in(
        &self,
        client: &mut postgres::Client,
        session: Session,
        target: &str,
        on_step: &mut dyn FnMut(&Step),
    ) -> Result<Report, EngineError> {
        wait(self.run_async(client, Some(session), target, Direction::Upgrade, on_step))
    }

    /// Downgrades to `target` (`-1`, `base`, an id, `label@base`, ...).
    #[cfg(feature = "sync")]
    pub fn downgrade(
        &self,
        client: &mut postgres::Client,
        target: &str,
        on_step: &mut dyn FnMut(&Step),
    ) -> Result<Report, EngineError> {
        wait(self.run_async(client, None, target, Direction::Downgrade, on_step))
    }

    /// [`Engine::downgrade`] in an open session; releases its lock.
    #[cfg(feature = "sync")]
    pub fn downgrade_in(
        &self,
        client: &mut postgres::Client,
        session: Session,
        target: &str,
        on_step: &mut dyn FnMut(&Step),
    ) -> Result<Report, EngineError> {
        wait(self.run_async(client, Some(session), target, Direction::Downgrade, on_step))
    }

    /// Upgrades or downgrades to `target` on any [`Connection`], in `session`
    /// if one is open (else one is opened); releases the lock on every path.
    /// `on_step` is called after each revision.
    pub async fn run_async<C, S>(
        &self,
        client: &mut C,
        session: Option<Session>,
        target: &str,
        direction: Direction,
        on_step: &mut S,
    ) -> Result<Report, EngineError>
    where
        C: Connection,
        S: FnMut(&Step) + ?Sized,
    {
        let session = match session {
            Some(s) => s,
            None => self.settings.open_session_async(client).await?,
        };
        let (key, current) = self.state(session);
        let result = self
            .run_to(client, current, target, direction, on_step)
            .await;
        release(client, key).await;
        result
    }

    /// Applies or undoes exactly one revision (for `verify`'s stairway:
    /// `-1` is ambiguous at merge points). Upgrading needs its parents and
    /// dependencies applied; undoing needs nothing applied above it.
    #[cfg(feature = "sync")]
    pub fn step_one(
        &self,
        client: &mut postgres::Client,
        revision: &str,
        direction: Direction,
    ) -> Result<Report, EngineError> {
        wait(self.step_one_async(client, revision, direction))
    }

    /// [`Engine::step_one`] on any [`Connection`].
    pub async fn step_one_async<C: Connection>(
        &self,
        client: &mut C,
        revision: &str,
        direction: Direction,
    ) -> Result<Report, EngineError> {
        let session = self.settings.open_session_async(client).await?;
        let (key, current) = self.state(session);
        let result = self
            .step_one_locked(client, current, revision, direction)
            .await;
        release(client, key).await;
        result
    }

    async fn step_one_locked<C: Connection>(
        &self,
        client: &mut C,
        current: Current,
        revision: &str,
        direction: Direction,
    ) -> Result<Report, EngineError> {
        let mut report = Report {
            before: current.heads.clone(),
            ..Report::default()
        };
        self.check_state(&current, direction, &mut report)?;
        let i = Resolver::with_current(self.map, current.known.clone()).revision(revision)?;
        let applied = self.map.ancestors(&current.known, true);
        let ready = match direction {
            Direction::Upgrade => {
                !applied[i]
                    && self
                        .map
                        .parents(i)
                        .iter()
                        .chain(self.map.dependencies(i))
                        .all(|&p| applied[p])
            }
            Direction::Downgrade => {
                applied[i]
                    && !self
                        .map
                        .children(i)
                        .iter()
                        .chain(self.map.dependents(i))
                        .any(|&c| applied[c])
            }
        };
        if !ready {
            return Err(EngineError::Resolve(
                alembic_core::ResolveError::InvalidTarget {
                    ident: revision.to_owned(),
                    direction: direction.word(),
                    current: current.heads.clone(),
                },
            ));
        }
        let heads = self
            .run(
                client,
                &[i],
                direction,
                HeadState::new(current.known.iter().copied()),
                &mut report,
                &mut |_: &Step| {},
            )
            .await?;
        report.after = self.ids(&heads.heads());
        Ok(report)
    }

    async fn run_to<C: Connection, S: FnMut(&Step) + ?Sized>(
        &self,
        client: &mut C,
        current: Current,
        target: &str,
        direction: Direction,
        on_step: &mut S,
    ) -> Result<Report, EngineError> {
        let mut report = Report {
            before: current.heads.clone(),
            ..Report::default()
        };
        if !current.unknown.is_empty()
            && direction == Direction::Upgrade
            && self.settings.database_ahead == AheadPolicy::Allow
        {
            report.warnings.push(format!(
                "{}; nothing was run",
                EngineError::UnknownRevisions {
                    ids: current.unknown.clone()
                }
            ));
            report.after = current.heads;
            return Ok(report);
        }
        self.check_state(&current, direction, &mut report)?;
        let resolver = Resolver::with_current(self.map, current.known.clone());
        let plan = match direction {
            Direction::Upgrade => resolver.upgrade_plan(target)?,
            Direction::Downgrade => resolver.downgrade_plan(target)?,
        };
        let heads = self
            .run(
                client,
                &plan,
                direction,
                HeadState::new(current.known.iter().copied()),
                &mut report,
                on_step,
            )
            .await?;
        report.after = self.ids(&heads.heads());
        Ok(report)
    }

    fn ids(&self, revs: &[usize]) -> Vec<String> {
        let mut v: Vec<String> = revs.iter().map(|&i| self.map.rev(i).id.clone()).collect();
        v.sort();
        v
    }

    async fn run<C: Connection, S: FnMut(&Step) + ?Sized>(
        &self,
        client: &mut C,
        plan: &[usize],
        direction: Direction,
        mut heads: HeadState,
        report: &mut Report,
        on_step: &mut S,
    ) -> Result<HeadState, EngineError> {
        // Every statement of the plan is split before anything runs, so that
        // a broken file stops the run before its first revision.
        for &i in plan {
            self.statements(self.map.rev(i), direction)?;
        }
        // And the version table's steps are checked: where Alembic could
        // not record one, nothing runs.
        let mut check = heads.clone();
        for &i in plan {
            match direction {
                Direction::Upgrade => check.upgrade(self.map, i)?,
                Direction::Downgrade => check.downgrade(self.map, i)?,
            };
        }
        let per_revision = self.settings.transaction_per_migration;
        let mut open = false;
        // What this transaction ran so far, to replay if a failure must be
        // located statement by statement; and which revisions.
        let mut in_transaction: Vec<String> = Vec::new();
        let mut uncommitted: Vec<String> = Vec::new();
        // The version table as last committed, for failure messages.
        let mut committed = heads.clone();
        let mut group: Vec<(usize, Batch<'m>)> = Vec::new();
        let mut group_len = 0;
        for (n, &i) in plan.iter().enumerate() {
            let rev = self.map.rev(i);
            let before = heads.clone();
            let ops = match direction {
                Direction::Upgrade => heads.upgrade(self.map, i)?,
                Direction::Downgrade => heads.downgrade(self.map, i)?,
            };
            if rev.transactional {
                let batch = self.batch(rev, direction, &ops, true)?;
                group_len += batch.sql.len();
                group.push((i, batch));
                let next_joins = plan
                    .get(n + 1)
                    .is_some_and(|&j| self.map.rev(j).transactional);
                if per_revision
                    || !next_joins
                    || group.len() == GROUP_REVISIONS
                    || group_len > GROUP_BYTES
                {
                    if !open {
                        Self::db(
                            "cannot begin a transaction",
                            client.batch_execute(&self.begin_sql()).await,
                        )?;
                        open = true;
                    }
                    let sent = self
                        .send_group(
                            client,
                            direction,
                            &group,
                            &mut in_transaction,
                            plan.len(),
                            report,
                            on_step,
                        )
                        .await;
                    if let Err(e) = sent {
                        // Revisions of this transaction before the failing one.
                        let mut undone = uncommitted.clone();
                        undone.extend(
                            group
                                .iter()
                                .map(|(g, _)| self.map.rev(*g).id.clone())
                                .take_while(|id| Some(id.as_str()) != failed_revision(&e)),
                        );
                        let aftermath = if per_revision {
                            Aftermath::RevisionRolledBack {
                                version_table: self.ids(&committed.heads()),
                            }
                        } else {
                            Aftermath::RunRolledBack {
                                undone,
                                version_table: self.ids(&committed.heads()),
                            }
                        };
                        return Err(with_aftermath(e, aftermath));
                    }
                    uncommitted.extend(group.iter().map(|(g, _)| self.map.rev(*g).id.clone()));
                    group.clear();
                    group_len = 0;
                    if per_revision {
                        self.commit(client, &uncommitted).await?;
                        open = false;
                        in_transaction.clear();
                        uncommitted.clear();
                        committed = heads.clone();
                    }
                }
            } else {
                if open {
                    self.commit(client, &uncommitted).await?;
                    open = false;
                    in_transaction.clear();
                    uncommitted.clear();
                    committed = before;
                }
                let started = Instant::now();
                self.run_outside_transaction(client, rev, direction, &ops)
                    .await
                    .map_err(|e| {
                        with_aftermath(
                            e,
                            Aftermath::NotTransactional {
                                version_table: self.ids(&committed.heads()),
                            },
                        )
                    })?;
                committed = heads.clone();
                self.step_done(i, direction, started.elapsed(), plan.len(), report, on_step);
            }
        }
        if open {
            self.commit(client, &uncommitted).await?;
        }
        Ok(heads)
    }

    /// Commits the open transaction, naming its revisions if that fails
    /// (a deferred constraint, a serialization failure).
    async fn commit<C: Connection>(
        &self,
        client: &mut C,
        revisions: &[String],
    ) -> Result<(), EngineError> {
        client
            .batch_execute("COMMIT")
            .await
            .map_err(|source| EngineError::Database {
                context: format!(
                    "cannot commit the transaction of revision{} {} (it was rolled back: none of {} is applied)",
                    if revisions.len() == 1 { "" } else { "s" },
                    revisions.join(", "),
                    if revisions.len() == 1 { "it" } else { "them" }
                ),
                source,
            })
    }

    fn step_done<S: FnMut(&Step) + ?Sized>(
        &self,
        i: usize,
        direction: Direction,
        duration: Duration,
        total: usize,
        report: &mut Report,
        on_step: &mut S,
    ) {
        let step = Step {
            revision: self.map.rev(i).id.clone(),
            direction,
            description: self.describe(i, direction),
            duration,
            position: report.steps.len() + 1,
            total,
        };
        on_step(&step);
        report.steps.push(step);
    }

    /// Sends consecutive revisions in one round trip; each reports its own
    /// duration as measured by the server.
    #[allow(clippy::too_many_arguments)]
    async fn send_group<C: Connection, S: FnMut(&Step) + ?Sized>(
        &self,
        client: &mut C,
        direction: Direction,
        group: &[(usize, Batch<'m>)],
        in_transaction: &mut Vec<String>,
        total: usize,
        report: &mut Report,
        on_step: &mut S,
    ) -> Result<(), EngineError> {
        let mut sql = String::with_capacity(group.iter().map(|(_, b)| b.sql.len()).sum());
        let mut starts = Vec::with_capacity(group.len());
        for (_, batch) in group {
            starts.push(sql.len());
            sql.push_str(&batch.sql);
        }
        let started = Instant::now();
        let messages = match client.simple_query(&sql).await {
            Ok(m) => m,
            Err(error) => {
                return Err(self
                    .locate_group_failure(
                        client,
                        direction,
                        group,
                        &sql,
                        &starts,
                        error,
                        in_transaction,
                    )
                    .await)
            }
        };
        let elapsed = started.elapsed();
        let mut measured: HashMap<String, f64> = HashMap::new();
        for message in &messages {
            if let SimpleQueryMessage::Row(row) = message {
                if row.len() == 3 && row.get(0) == Some(TIMING) {
                    if let (Some(id), Some(ms)) =
                        (row.get(1), row.get(2).and_then(|m| m.parse::<f64>().ok()))
                    {
                        measured.insert(id.to_owned(), ms);
                    }
                }
            }
        }
        for (i, _) in group {
            let fallback = elapsed / u32::try_from(group.len()).unwrap_or(1).max(1);
            let duration = measured
                .get(&self.map.rev(*i).id)
                .map_or(fallback, |ms| Duration::from_secs_f64(ms / 1000.0));
            self.step_done(*i, direction, duration, total, report, on_step);
        }
        in_transaction.push(sql);
        Ok(())
    }

    /// A failed group: PostgreSQL's position points into one revision's
    /// statements, or the revisions are replayed one by one to find it.
    #[allow(clippy::too_many_arguments)]
    async fn locate_group_failure<C: Connection>(
        &self,
        client: &mut C,
        direction: Direction,
        group: &[(usize, Batch<'m>)],
        sql: &str,
        starts: &[usize],
        error: tokio_postgres::Error,
        before: &[String],
    ) -> EngineError {
        if let Some(p) = error_position(&error) {
            let byte = sql
                .char_indices()
                .nth(p.saturating_sub(1))
                .map_or(sql.len(), |(b, _)| b);
            if let Some(k) = starts.iter().rposition(|&s| s <= byte) {
                let (i, batch) = &group[k];
                if let Some((statement, within)) = statement_at(batch, byte - starts[k]) {
                    return EngineError::Sql(Box::new(self.failure(
                        self.map.rev(*i),
                        direction,
                        statement,
                        &error,
                        Some(within),
                    )));
                }
            }
        }
        let mut done: Vec<String> = before.to_vec();
        let replayed = replay(client, before).await;
        if replayed {
            for (i, batch) in group {
                if let Err(e) = client.batch_execute(&batch.sql).await {
                    return self
                        .locate_failure(client, self.map.rev(*i), direction, batch, e, &done)
                        .await;
                }
                done.push(batch.sql.clone());
            }
        }
        let _ = client.batch_execute("ROLLBACK").await;
        let first = group
            .first()
            .map_or_else(String::new, |(i, _)| self.map.rev(*i).id.clone());
        EngineError::Database {
            context: format!("cannot run the revisions from {first} on"),
            source: error,
        }
    }

    /// A `transactional: false` revision: each statement on its own, then
    /// the bookkeeping in a transaction. A failure is recorded in the ledger
    /// so that the next run stops until someone looks.
    async fn run_outside_transaction<C: Connection>(
        &self,
        client: &mut C,
        rev: &Revision,
        direction: Direction,
        ops: &[VersionOp],
    ) -> Result<(), EngineError> {
        let statements = self.statements(rev, direction)?;
        let started = Instant::now();
        let timeout = self.settings.statement_lock_timeout;
        if let Some(t) = timeout {
            // Outside a transaction `SET LOCAL` does nothing: set it for the
            // session, and put back what the session had.
            Self::db(
                "cannot set the statement lock timeout",
                client
                    .batch_execute(&format!(
                        "SELECT set_config('alembic.saved_lock_timeout', current_setting('lock_timeout'), false), \
                         set_config('lock_timeout', '{}ms', false)",
                        t.as_millis()
                    ))
                    .await,
            )?;
        }
        let result = self
            .run_statements_outside(client, rev, direction, statements, started, ops)
            .await;
        if timeout.is_some() {
            let _ = client
                .batch_execute(
                    "SELECT set_config('lock_timeout', current_setting('alembic.saved_lock_timeout'), false)",
                )
                .await;
        }
        result
    }

    async fn run_statements_outside<C: Connection>(
        &self,
        client: &mut C,
        rev: &Revision,
        direction: Direction,
        statements: &[Statement],
        started: Instant,
        ops: &[VersionOp],
    ) -> Result<(), EngineError> {
        for s in statements {
            if let Err(e) = client.batch_execute(&s.sql).await {
                let failure = self.failure(rev, direction, s, &e, None);
                let recorded = format!(
                    "{} statement at line {}: {}",
                    direction.word(),
                    failure.line,
                    failure.message
                );
                let l = self.ledger_table();
                let _ = client.batch_execute(&format!(
                    "INSERT INTO {l} (revision, upgrade_checksum, downgrade_checksum, tool, status, error) VALUES ({}, {}, NULL, {}, 'failed', {}) \
                     ON CONFLICT (revision) DO UPDATE SET status = 'failed', error = EXCLUDED.error",
                    quote_literal(&rev.id),
                    quote_literal(rev.upgrade.checksum().as_str()),
                    quote_literal(&self.settings.tool),
                    quote_literal(&recorded)
                )).await;
                let mut failure = failure;
                let remedy = format!(
                    "complete or undo this revision's changes by hand, then `{} stamp` the revision (or the one before it); \
                     until then every run stops here",
                    self.settings.command
                );
                failure.advice = Some(match failure.advice.take() {
                    Some(first) => format!("{first}; then {remedy}"),
                    None => remedy,
                });
                return Err(EngineError::Sql(Box::new(failure)));
            }
        }
        let mut sql = String::from("BEGIN;\n");
        for op in ops {
            sql.push_str(&self.version_sql(op));
        }
        sql.push_str(&self.ledger_sql(rev, direction, false));
        if direction == Direction::Upgrade {
            sql.push_str(&format!(
                "UPDATE {} SET duration_ms = {} WHERE revision = {};\n",
                self.ledger_table(),
                started.elapsed().as_secs_f64() * 1000.0,
                quote_literal(&rev.id)
            ));
        }
        sql.push_str("COMMIT;\n");
        Self::db(
            &format!(
                "revision {} ran outside a transaction, but cannot be recorded in the version table and the ledger",
                rev.id
            ),
            client.batch_execute(&sql).await,
        )
    }

    /// Turns a failed batch into a failure naming the statement and line:
    /// from PostgreSQL's error position when it gives one, else by rolling
    /// back, replaying what the transaction had run before, and running the
    /// revision's statements one by one (only on this failure path: a
    /// savepoint per revision would cost every run, and thousands of
    /// subtransactions slow PostgreSQL down).
    async fn locate_failure<C: Connection>(
        &self,
        client: &mut C,
        rev: &Revision,
        direction: Direction,
        batch: &Batch<'_>,
        error: tokio_postgres::Error,
        before: &[String],
    ) -> EngineError {
        if let Some(p) = error_position(&error) {
            // A 1-based character position in the whole batch.
            let byte = batch
                .sql
                .char_indices()
                .nth(p.saturating_sub(1))
                .map_or(batch.sql.len(), |(b, _)| b);
            if let Some((s, within)) = statement_at(batch, byte) {
                return EngineError::Sql(Box::new(self.failure(
                    rev,
                    direction,
                    s,
                    &error,
                    Some(within),
                )));
            }
        }
        let replayed = replay(client, before).await;
        if replayed {
            for &(_, s) in &batch.statements {
                if let Err(e) = client.batch_execute(&s.sql).await {
                    let _ = client.batch_execute("ROLLBACK").await;
                    let within = error_position(&e);
                    return EngineError::Sql(Box::new(self.failure(rev, direction, s, &e, within)));
                }
            }
        }
        let _ = client.batch_execute("ROLLBACK").await;
        EngineError::Database {
            context: format!("cannot record revision {} in the version table", rev.id),
            source: error,
        }
    }

    fn failure(
        &self,
        rev: &Revision,
        direction: Direction,
        s: &Statement,
        error: &tokio_postgres::Error,
        position: Option<usize>,
    ) -> SqlFailure {
        let line = position.map_or(s.line, |p| s.line_of_position(p));
        let (message, code, detail, hint) = match error.as_db_error() {
            Some(db) => (
                db.message().to_owned(),
                db.code().code().to_owned(),
                db.detail().map(str::to_owned),
                db.hint().map(str::to_owned),
            ),
            None => (error.to_string(), String::new(), None, None),
        };
        let advice = match code.as_str() {
            "42P07" | "42710" | "42701" | "42P06" => Some(format!(
                "the object already exists: if the database already has this revision's changes (made by hand or by another \
                 tool), record that with `{} stamp {}` instead of running it",
                self.settings.command,
                rev.id
            )),
            "42501" => Some("the connecting role lacks a privilege: connect as the objects' owner, or GRANT the privilege".into()),
            "55P03" => Some(format!(
                "the statement waited longer than the lock timeout{} for a lock that another transaction holds on its table; \
                 retry when that transaction has ended",
                self.settings
                    .statement_lock_timeout
                    .map_or_else(String::new, |t| format!(
                        " (statement_lock_timeout = {})",
                        crate::errors::humanize(t)
                    ))
            )),
            _ => None,
        };
        SqlFailure {
            revision: rev.id.clone(),
            direction: direction.word(),
            file: rev.path.clone(),
            line,
            statement: s.sql.lines().next().unwrap_or("").to_owned(),
            message,
            code,
            detail,
            hint,
            advice,
            // The run knows how it split its transactions: it says.
            aftermath: Aftermath::RunRolledBack {
                undone: Vec::new(),
                version_table: Vec::new(),
            },
        }
    }

    /// Records a deliberate edit of applied revisions: the ledger takes the
    /// files' checksums now, and keeps the old ones with the reason, who and
    /// when in its `accepted` list. `revision` is what users type for
    /// applied revisions: an id or prefix, a label, `current`, `heads`,
    /// `head`, relative forms (`current-1`). Of several revisions named,
    /// those whose files match their ledger rows are left alone. An applied
    /// revision without a ledger row (adopted from Python Alembic) gets one.
    /// Everything is checked before the ledger is written, in one statement.
    #[cfg(feature = "sync")]
    pub fn accept(
        &self,
        client: &mut postgres::Client,
        revision: &str,
        reason: &str,
        by: &str,
    ) -> Result<Vec<Accepted>, EngineError> {
        wait(self.accept_async(client, revision, reason, by))
    }

    /// [`Engine::accept`] on any [`Connection`].
    pub async fn accept_async<C: Connection>(
        &self,
        client: &mut C,
        revision: &str,
        reason: &str,
        by: &str,
    ) -> Result<Vec<Accepted>, EngineError> {
        let session = self.settings.open_session_async(client).await?;
        let (key, current) = self.state(session);
        let result = self
            .accept_locked(client, current, revision, reason, by)
            .await;
        release(client, key).await;
        result
    }

    /// The revisions `accept` would change, or why it cannot.
    fn to_accept(&self, current: &Current, revision: &str) -> Result<Vec<Accepted>, EngineError> {
        let named =
            match Resolver::with_current(self.map, current.known.clone()).resolve(revision)? {
                Target::Revisions(revs) => revs,
                Target::Base | Target::BranchBase { .. } => Vec::new(),
            };
        if named.is_empty() {
            return Err(EngineError::NotApplied {
                revision: revision.to_owned(),
            });
        }
        let applied = self.applied(current);
        let mut out = Vec::new();
        for &i in &named {
            let rev = self.map.rev(i);
            if !applied.contains(&i) {
                return Err(EngineError::NotApplied {
                    revision: rev.id.clone(),
                });
            }
            let upgrade = rev.upgrade.checksum().as_str().to_owned();
            let downgrade = rev
                .downgrade
                .as_ref()
                .map(|d| d.checksum().as_str().to_owned());
            let previous = current
                .ledger
                .get(&rev.id)
                .map(|row| (row.upgrade_checksum.clone(), row.downgrade_checksum.clone()));
            if previous.as_ref() == Some(&(upgrade.clone(), downgrade.clone())) {
                continue;
            }
            out.push(Accepted {
                revision: rev.id.clone(),
                previous,
                upgrade,
                downgrade,
            });
        }
        if out.is_empty() {
            return Err(EngineError::NothingToAccept {
                revision: self.ids(&named).join(", "),
            });
        }
        Ok(out)
    }

    async fn accept_locked<C: Connection>(
        &self,
        client: &mut C,
        current: Current,
        revision: &str,
        reason: &str,
        by: &str,
    ) -> Result<Vec<Accepted>, EngineError> {
        let accepted = self.to_accept(&current, revision)?;
        let l = self.ledger_table();
        let literal = |v: Option<&str>| v.map_or("NULL".to_owned(), quote_literal);
        let mut sql = String::from("BEGIN;\n");
        for a in &accepted {
            let entry = format!(
                "jsonb_build_object('upgrade_from', {}, 'downgrade_from', {}, 'upgrade_to', {}, 'downgrade_to', {}, 'reason', {}, 'by', {}, 'at', now())",
                literal(a.previous.as_ref().map(|p| p.0.as_str())),
                literal(a.previous.as_ref().and_then(|p| p.1.as_deref())),
                quote_literal(&a.upgrade),
                literal(a.downgrade.as_deref()),
                quote_literal(reason),
                quote_literal(by)
            );
            sql.push_str(&format!(
                "INSERT INTO {l} (revision, upgrade_checksum, downgrade_checksum, tool, accepted) VALUES ({}, {}, {}, {}, jsonb_build_array({entry})) \
                 ON CONFLICT (revision) DO UPDATE SET upgrade_checksum = EXCLUDED.upgrade_checksum, downgrade_checksum = EXCLUDED.downgrade_checksum, \
                 accepted = {l}.accepted || EXCLUDED.accepted;\n",
                quote_literal(&a.revision),
                quote_literal(&a.upgrade),
                literal(a.downgrade.as_deref()),
                quote_literal(&self.settings.tool)
            ));
        }
        sql.push_str("COMMIT;");
        Self::db(
            "cannot record the accepted edit",
            client.batch_execute(&sql).await,
        )?;
        Ok(accepted)
    }

    /// Sets the version table to `targets` without running revisions
    /// (`--purge` first empties it). Ledger rows of revisions that are no
    /// longer applied are removed, and failed rows cleared.
    #[cfg(feature = "sync")]
    pub fn stamp(
        &self,
        client: &mut postgres::Client,
        targets: &[&str],
        purge: bool,
    ) -> Result<Report, EngineError> {
        wait(self.stamp_async(client, targets, purge))
    }

    /// [`Engine::stamp`] on any [`Connection`].
    pub async fn stamp_async<C: Connection>(
        &self,
        client: &mut C,
        targets: &[&str],
        purge: bool,
    ) -> Result<Report, EngineError> {
        let session = self.settings.open_session_async(client).await?;
        let (key, current) = self.state(session);
        let result = self.stamp_locked(client, current, targets, purge).await;
        release(client, key).await;
        result
    }

    async fn stamp_locked<C: Connection>(
        &self,
        client: &mut C,
        current: Current,
        targets: &[&str],
        purge: bool,
    ) -> Result<Report, EngineError> {
        {
            if !purge && !current.unknown.is_empty() {
                return Err(EngineError::UnknownRevisions {
                    ids: current.unknown.clone(),
                });
            }
            let mut report = Report {
                before: current.heads.clone(),
                ..Report::default()
            };
            let rows = self.stamp_rows(&current, targets, purge)?;
            let sql = self.stamp_sql(&current.heads, &rows, purge);
            Self::db(
                "cannot stamp",
                client.batch_execute(&format!("BEGIN;\n{sql}COMMIT;")).await,
            )?;
            report.after = self.ids(&rows);
            let after = Current {
                known: rows,
                ..Current::default()
            };
            report.unverified = self.unverified(&Current {
                ledger: current.ledger.clone(),
                ..after
            });
            Ok(report)
        }
    }

    /// The version-table rows after a stamp, exactly as Alembic's `stamp`
    /// leaves them (`alembic_core::stamp_rows`); `--purge` starts from none.
    fn stamp_rows(
        &self,
        current: &Current,
        targets: &[&str],
        purge: bool,
    ) -> Result<Vec<usize>, EngineError> {
        let rows: &[usize] = if purge { &[] } else { &current.known };
        Ok(alembic_core::stamp_rows(self.map, rows, targets)?)
    }

    fn stamp_sql(&self, before: &[String], rows: &[usize], purge: bool) -> String {
        let v = self.version_table();
        let after: Vec<String> = self.ids(rows);
        let mut sql = String::new();
        if purge {
            sql.push_str(&format!("DELETE FROM {v};\n"));
        } else {
            for old in before.iter().filter(|b| !after.contains(b)) {
                sql.push_str(&format!(
                    "DELETE FROM {v} WHERE version_num = {};\n",
                    quote_literal(old)
                ));
            }
        }
        for new in after.iter().filter(|a| purge || !before.contains(a)) {
            sql.push_str(&format!(
                "INSERT INTO {v} (version_num) VALUES ({});\n",
                quote_literal(new)
            ));
        }
        let applied = self.map.ancestors(rows, true);
        let keep: Vec<String> = self
            .map
            .order()
            .iter()
            .filter(|&&i| applied[i])
            .map(|&i| quote_literal(&self.map.rev(i).id))
            .collect();
        let l = self.ledger_table();
        if keep.is_empty() {
            sql.push_str(&format!("DELETE FROM {l};\n"));
        } else {
            sql.push_str(&format!(
                "DELETE FROM {l} WHERE status = 'failed' OR revision NOT IN ({});\n",
                keep.join(", ")
            ));
        }
        sql
    }

    /// The SQL an upgrade from `from` (the current rows; empty for base)
    /// to `target` would run, version-table and ledger statements included.
    pub fn upgrade_sql(&self, from: &[usize], target: &str) -> Result<String, EngineError> {
        let plan = Resolver::with_current(self.map, from.to_vec()).upgrade_plan(target)?;
        self.offline(
            &plan,
            Direction::Upgrade,
            HeadState::new(from.iter().copied()),
            from.is_empty(),
        )
    }

    /// The SQL a downgrade from `from` to `target` would run.
    pub fn downgrade_sql(&self, from: &[usize], target: &str) -> Result<String, EngineError> {
        let plan = Resolver::with_current(self.map, from.to_vec()).downgrade_plan(target)?;
        self.offline(
            &plan,
            Direction::Downgrade,
            HeadState::new(from.iter().copied()),
            false,
        )
    }

    /// `upgrade --sql`: Alembic's `from:to` (an empty `from` is base) or a
    /// target alone (from base).
    pub fn upgrade_sql_range(&self, range: &str) -> Result<String, EngineError> {
        let (from, to) = range.split_once(':').unwrap_or(("", range));
        let from = self.offline_from(from)?;
        self.upgrade_sql(&from, if to.is_empty() { "heads" } else { to })
    }

    /// `downgrade --sql`: Alembic's `from:to`, which it requires.
    pub fn downgrade_sql_range(&self, range: &str) -> Result<String, EngineError> {
        let Some((from, to)) = range.split_once(':') else {
            return Err(EngineError::OfflineRange {
                given: range.to_owned(),
            });
        };
        let from = self.offline_from(from)?;
        self.downgrade_sql(&from, to)
    }

    /// The `from` side of an offline range as version-table rows.
    fn offline_from(&self, from: &str) -> Result<Vec<usize>, EngineError> {
        if from.is_empty() {
            return Ok(Vec::new());
        }
        Ok(match Resolver::new(self.map).resolve(from)? {
            Target::Base => Vec::new(),
            Target::Revisions(r) => r,
            Target::BranchBase { roots, .. } => roots,
        })
    }

    /// The SQL a stamp from `from` to `targets` would run.
    pub fn stamp_sql_offline(
        &self,
        from: &[usize],
        targets: &[&str],
        purge: bool,
    ) -> Result<String, EngineError> {
        let current = Current {
            known: from.to_vec(),
            heads: self.ids(from),
            ..Current::default()
        };
        let rows = self.stamp_rows(&current, targets, purge)?;
        let mut out = String::new();
        if from.is_empty() {
            out.push_str(&self.create_tables_sql());
            out.push('\n');
        }
        out.push_str("BEGIN;\n\n");
        out.push_str(&self.stamp_sql(&current.heads, &rows, purge));
        out.push_str("\nCOMMIT;\n");
        Ok(out)
    }

    fn offline(
        &self,
        plan: &[usize],
        direction: Direction,
        mut heads: HeadState,
        create: bool,
    ) -> Result<String, EngineError> {
        let mut out = String::new();
        if create {
            out.push_str(&self.create_tables_sql());
            out.push('\n');
        }
        let per_revision = self.settings.transaction_per_migration;
        let mut open = false;
        for &i in plan {
            let rev = self.map.rev(i);
            let ops = match direction {
                Direction::Upgrade => heads.upgrade(self.map, i)?,
                Direction::Downgrade => heads.downgrade(self.map, i)?,
            };
            if rev.transactional && !open {
                out.push_str("BEGIN;\n\n");
                open = true;
            } else if !rev.transactional && open {
                out.push_str("COMMIT;\n\n");
                open = false;
            }
            out.push_str(&format!(
                "-- {} ({})\n",
                self.describe(i, direction),
                rev.path.display()
            ));
            if !rev.transactional {
                out.push_str(
                    "-- transactional: false: these statements run outside a transaction\n",
                );
            }
            out.push_str(&self.batch(rev, direction, &ops, false)?.sql);
            out.push('\n');
            if open && per_revision {
                out.push_str("COMMIT;\n\n");
                open = false;
            }
        }
        if open {
            out.push_str("COMMIT;\n");
        }
        Ok(out)
    }
}

/// The revision a failure names, if it is a failing statement.
fn failed_revision(e: &EngineError) -> Option<&str> {
    match e {
        EngineError::Sql(f) => Some(&f.revision),
        _ => None,
    }
}

/// Says what state a failing statement left the database in.
fn with_aftermath(e: EngineError, aftermath: Aftermath) -> EngineError {
    match e {
        EngineError::Sql(mut f) => {
            f.aftermath = aftermath;
            EngineError::Sql(f)
        }
        other => other,
    }
}

/// Consecutive transactional revisions sent in one round trip, at most.
const GROUP_REVISIONS: usize = 16;
/// And at most this much SQL in one round trip.
const GROUP_BYTES: usize = 256 * 1024;
/// Marks the row each revision returns with its server-measured duration.
const TIMING: &str = "alembic:timing";

/// The statement of a batch at a byte offset, and the 1-based character
/// position inside it.
fn statement_at<'b>(batch: &'b Batch<'_>, byte: usize) -> Option<(&'b Statement, usize)> {
    let &(offset, s) = batch
        .statements
        .iter()
        .rev()
        .find(|(offset, _)| *offset <= byte)?;
    (byte <= offset + s.sql.len()).then(|| (s, batch.sql[offset..byte].chars().count() + 1))
}

/// PostgreSQL's 1-based character position of an error in the query sent.
fn error_position(error: &tokio_postgres::Error) -> Option<usize> {
    error.as_db_error().and_then(|db| match db.position() {
        Some(tokio_postgres::error::ErrorPosition::Original(p)) => usize::try_from(*p).ok(),
        _ => None,
    })
}
