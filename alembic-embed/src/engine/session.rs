//! A run's database side: the advisory lock, polled; the tables made if
//! missing; the state read after the lock was taken (usually in the lock's
//! own round trip); and the lock released on every path.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::{SimpleQueryMessage, SimpleQueryRow};

#[cfg(feature = "sync")]
use crate::connection::wait;
use crate::connection::Connection;
use crate::errors::EngineError;

use super::settings::{Settings, TablesFound};
use alembic_chain::embed::LedgerEntry;

use super::state::{Current, LedgerRow, RUN_COLUMNS};
use super::{quote_ident, quote_literal, Engine, Report};

/// A run's database side: the advisory lock held, the tables there, and
/// the state as read after the lock was taken; or, opened with
/// [`Settings::open_run`], possibly the state read without the lock (a
/// snapshot), which serves a run only when it has nothing to do.
#[derive(Debug)]
pub struct Session {
    /// The advisory lock held; `None` for a snapshot.
    key: Option<i64>,
    heads: Vec<String>,
    /// The ledger's rows as read, turned into [`LedgerRow`]s only when the
    /// engine needs them (a check off the packed chain reads them as they
    /// are).
    ledger: Vec<SimpleQueryRow>,
    /// The connection's own search path, set back on release (a tenant's run).
    restore: Option<String>,
}

impl Session {
    /// Ends the session without a run: releases the lock.
    pub async fn release_async<C: Connection>(self, client: &mut C) {
        release(client, self.key, self.restore.as_deref(), true).await;
    }

    /// [`Session::release_async`] on the synchronous client.
    #[cfg(feature = "sync")]
    pub fn release(self, client: &mut postgres::Client) {
        wait(self.release_async(client));
    }

    /// The version table's rows, read under the lock (or, for a snapshot,
    /// as last committed).
    pub fn heads(&self) -> &[String] {
        &self.heads
    }

    /// The report of an upgrade to the heads with nothing to do, when this
    /// is a snapshot ([`Settings::open_run`]) whose rows and ledger
    /// `all_applied` finds at the chain's heads with every revision recorded
    /// as it is now (a service's packed chain or the graph answers it):
    /// nothing unverified, no warning. The ledger is given as read
    /// (revision, upgrade and downgrade checksums); a failed row, or one
    /// that does not read, is for the engine to report (`None`).
    pub(crate) fn up_to_date(
        &self,
        all_applied: impl FnOnce(&[String], &[LedgerEntry<'_>]) -> bool,
    ) -> Option<Report> {
        if !self.is_snapshot() {
            return None;
        }
        let ledger = self
            .ledger
            .iter()
            .map(|row| {
                if row.get(3) != Some("applied") {
                    return None;
                }
                Some((row.get(0)?, row.get(1)?, row.get(2)))
            })
            .collect::<Option<Vec<_>>>()?;
        all_applied(&self.heads, &ledger).then(|| Report {
            before: self.heads.clone(),
            after: self.heads.clone(),
            ..Report::default()
        })
    }

    /// Whether the state was read without the lock ([`Settings::open_run`]).
    pub fn is_snapshot(&self) -> bool {
        self.key.is_none()
    }

    /// The rows and the ledger, by revision, given up.
    pub(super) fn into_state(self) -> (Vec<String>, HashMap<String, LedgerRow>) {
        let mut ledger = HashMap::with_capacity(self.ledger.len());
        for row in &self.ledger {
            let (revision, row) = LedgerRow::from_row(row);
            ledger.insert(revision, row);
        }
        (self.heads, ledger)
    }
}

impl Settings {
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
        self.open_session_from(client, true).await
    }

    /// [`Settings::open_session_async`]; `tables_likely` false when a read
    /// just found a table missing, so that the lock and the read in one
    /// round trip, which would fail the same way, are not tried.
    async fn open_session_from<C: Connection>(
        &self,
        client: &mut C,
        tables_likely: bool,
    ) -> Result<Session, EngineError> {
        // A tenant's run: the connection's own search path, to restore.
        let restore = match &self.search_path {
            Some(_) => Some(current_search_path(client).await?),
            None => None,
        };
        let lock = lock_query(&self.lock_key_sql(), &self.tables_probe_sql());
        if restore.is_none() && tables_likely {
            if let Some(session) = self.lock_and_read(client, &lock).await {
                return session;
            }
        }
        let (key, found) = acquire(client, &lock, self.lock_timeout).await?;
        self.prepare_and_read(client, key, found, restore).await
    }

    /// How an upgrade or downgrade starts: the version table and the ledger
    /// read without the lock, in one statement (one snapshot), when the
    /// tables are there and no tenant's search path is set; else, or when
    /// that read fails, [`Settings::open_session`]. A run that finds
    /// nothing to do in the snapshot ends there, writing nothing and
    /// taking no lock: replicas starting together on an up-to-date
    /// database do not queue for it. Anything else takes the lock and
    /// reads again under it ([`Engine::run_async`](super::Engine::run_async)).
    #[cfg(feature = "sync")]
    pub fn open_run(&self, client: &mut postgres::Client) -> Result<Session, EngineError> {
        wait(self.open_run_async(client))
    }

    /// [`Settings::open_run`] on any [`Connection`].
    pub async fn open_run_async<C: Connection>(
        &self,
        client: &mut C,
    ) -> Result<Session, EngineError> {
        if self.search_path.is_none() {
            // A statement that fails leaves no transaction open (no BEGIN):
            // missing tables are a first run, which takes the long way
            // straight away (one error in the server's log, not two).
            match client.simple_query(&self.reads_sql()).await {
                Ok(messages) => return Ok(Session::from_reads(None, messages, 0, None)),
                Err(e) if e.code() == Some(&SqlState::UNDEFINED_TABLE) => {
                    return self.open_session_from(client, false).await
                }
                Err(_) => {}
            }
        }
        self.open_session_async(client).await
    }

    /// The usual start in one round trip: the lock is taken in a
    /// transaction of its own, then the version table and the ledger are
    /// read in the next, whose snapshot is taken after the lock (so under
    /// any default isolation level it sees what the lock's last holder
    /// committed). `None` when the lock is held elsewhere, or when a read
    /// failed (tables to make: a first run); then whatever this took is
    /// released and the caller takes the long way: polling, making the
    /// tables, reading.
    async fn lock_and_read<C: Connection>(
        &self,
        client: &mut C,
        lock: &str,
    ) -> Option<Result<Session, EngineError>> {
        let sql = format!("BEGIN; {lock}; COMMIT;\n{}", self.reads_sql());
        let messages = match client.simple_query(&sql).await {
            Ok(messages) => messages,
            Err(e) => {
                // A failed read leaves no transaction open; anything else
                // may have failed inside the one begun here.
                let read_failed = e.code().is_some_and(|c| {
                    *c == SqlState::UNDEFINED_TABLE || *c == SqlState::UNDEFINED_COLUMN
                });
                let rollback = if read_failed { "" } else { "ROLLBACK; " };
                let unlock = format!(
                    "{rollback}SELECT pg_catalog.pg_advisory_unlock({})",
                    self.lock_key_sql()
                );
                let _ = client.batch_execute(&unlock).await;
                return None;
            }
        };
        let (Some(key), true, found) = lock_row(&messages)? else {
            // Held elsewhere (or no key: the long way reports it).
            return None;
        };
        if !self.ensure_tables_sql(found).is_empty() {
            return Some(self.prepare_and_read(client, key, found, None).await);
        }
        // Statements: BEGIN, the lock, COMMIT, then the reads.
        Some(Ok(Session::from_reads(Some(key), messages, 3, None)))
    }

    /// Under the lock: makes what the probe found missing, sets a tenant's
    /// search path, and reads the version table and the ledger.
    async fn prepare_and_read<C: Connection>(
        &self,
        client: &mut C,
        key: i64,
        found: TablesFound,
        restore: Option<String>,
    ) -> Result<Session, EngineError> {
        let ensure = self.ensure_tables_sql(found);
        let set_path = self
            .search_path
            .as_ref()
            .map_or_else(String::new, |schema| {
                format!("SET search_path TO {}, public;\n", quote_ident(schema))
            });
        let sql = format!("{set_path}{}{}", ensure.concat(), self.reads_sql());
        match client.simple_query(&sql).await {
            // Statements: the search path, the tables to make, the reads.
            Ok(messages) => {
                let first = ensure.len() + usize::from(self.search_path.is_some());
                Ok(Session::from_reads(Some(key), messages, first, restore))
            }
            Err(source) => {
                release(client, Some(key), restore.as_deref(), true).await;
                Err(EngineError::Database {
                    context: "cannot lock and read the version table".into(),
                    source,
                })
            }
        }
    }

    /// The read of a session, one statement (so one snapshot under any
    /// isolation level): the version table's rows, their first column
    /// NULL, then the ledger's rows, whose first column (the revision) is
    /// never NULL.
    fn reads_sql(&self) -> String {
        format!(
            "SELECT NULL, version_num, NULL, NULL, NULL FROM {} UNION ALL SELECT {} FROM {};",
            self.version_table_sql(),
            RUN_COLUMNS,
            self.ledger_table_sql()
        )
    }
}

impl Session {
    /// The session from the rows of [`Settings::reads_sql`], statement
    /// `first` of `messages`.
    fn from_reads(
        key: Option<i64>,
        messages: Vec<SimpleQueryMessage>,
        first: usize,
        restore: Option<String>,
    ) -> Session {
        let mut session = Session {
            key,
            heads: Vec::new(),
            ledger: Vec::new(),
            restore,
        };
        let mut statement = 0;
        for message in messages {
            match message {
                SimpleQueryMessage::CommandComplete(_) => statement += 1,
                SimpleQueryMessage::Row(row) if statement == first && row.get(0).is_none() => {
                    session
                        .heads
                        .push(row.get(1).unwrap_or_default().to_owned());
                }
                SimpleQueryMessage::Row(row) if statement == first => session.ledger.push(row),
                _ => {}
            }
        }
        session.heads.sort();
        session
    }
}

/// The lock query: the key, whether the lock was taken, and what
/// [`Settings::tables_probe_sql`] reports.
fn lock_query(key_sql: &str, probe_sql: &str) -> String {
    format!(
        "SELECT k, pg_catalog.pg_try_advisory_lock(k), {probe_sql} FROM (SELECT {key_sql} AS k) AS key"
    )
}

/// The lock query's row: the key (`None` if the server sent none), whether
/// the lock was taken, and which tables exist; `None` without a row.
fn lock_row(messages: &[SimpleQueryMessage]) -> Option<(Option<i64>, bool, TablesFound)> {
    let row = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    })?;
    Some((
        row.get(0).and_then(|k| k.parse::<i64>().ok()),
        row.get(1) == Some("t"),
        TablesFound {
            version_table: row.get(2) == Some("t"),
            ledger: row.get(3) == Some("t"),
            tag: row.get(4) == Some("t"),
        },
    ))
}

/// Takes the advisory lock by polling `pg_try_advisory_lock` rather than
/// waiting in `pg_advisory_lock`. A session blocked inside a statement holds
/// a snapshot, and a `CREATE INDEX CONCURRENTLY` run by the lock's holder
/// waits for every older snapshot to go: a deadlock, which PostgreSQL ends
/// by failing one side. Between polls a waiting migrator holds nothing.
async fn acquire<C: Connection>(
    client: &mut C,
    sql: &str,
    timeout: Option<Duration>,
) -> Result<(i64, TablesFound), EngineError> {
    let mut pause = Duration::from_millis(5);
    let mut announced = false;
    let started = Instant::now();
    loop {
        let messages = client
            .simple_query(sql)
            .await
            .map_err(|source| EngineError::Database {
                context: "cannot take the migration lock".into(),
                source,
            })?;
        let Some((Some(key), taken, found)) = lock_row(&messages) else {
            return Err(EngineError::Lock {
                reason: "the server returned no lock key".into(),
            });
        };
        if taken {
            return Ok((key, found));
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

/// Restores the connection's search path after a tenant's run and releases
/// the advisory lock, in one round trip. After a failure (`failed`) a
/// transaction may still be open and must end first (ROLLBACK; without one
/// it is only a warning); a run that succeeded committed what it began.
/// A snapshot (no `key`) has nothing to release.
pub(super) async fn release<C: Connection>(
    client: &mut C,
    key: Option<i64>,
    restore: Option<&str>,
    failed: bool,
) {
    let Some(key) = key else {
        return;
    };
    let path = restore.map_or_else(String::new, |p| {
        format!(
            "SELECT pg_catalog.set_config('search_path', {}, false); ",
            quote_literal(p)
        )
    });
    let rollback = if failed { "ROLLBACK; " } else { "" };
    let _ = client
        .batch_execute(&format!(
            "{rollback}{path}SELECT pg_catalog.pg_advisory_unlock({key})"
        ))
        .await;
}

/// The connection's `search_path`, as `SHOW` gives it.
async fn current_search_path<C: Connection>(client: &mut C) -> Result<String, EngineError> {
    let messages = client
        .simple_query("SHOW search_path")
        .await
        .map_err(|source| EngineError::Database {
            context: "cannot read the search path".into(),
            source,
        })?;
    Ok(messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap_or_default())
}

impl<'m> Engine<'m> {
    /// Runs `act` under the migration lock: with the session given (opened
    /// while the chain was loading) or a new one, on the state read after
    /// the lock was taken; the lock is released on every path. Every
    /// command that writes goes through here. The state is read with the
    /// engine for its rows ([`Engine::for_rows`]): `act` works with
    /// [`Engine::view`] of it.
    pub(super) async fn locked<C: Connection, T>(
        &self,
        client: &mut C,
        session: Option<Session>,
        act: impl AsyncFnOnce(&mut C, Current) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        // A snapshot serves no command that writes: the lock first.
        let mut session = match session {
            Some(s) if !s.is_snapshot() => s,
            _ => self.settings.open_session_async(client).await?,
        };
        let (key, restore) = (session.key, session.restore.take());
        let result = match self.for_rows(&session.heads) {
            Ok(engine) => {
                let (heads, ledger) = session.into_state();
                let current = engine.classify(heads, ledger);
                act(client, current).await
            }
            Err(e) => Err(e),
        };
        release(client, key, restore.as_deref(), result.is_err()).await;
        result
    }
}
