//! Where a failure is: the statement and file line PostgreSQL's error
//! position points to, or, without one, found by replaying the
//! transaction statement by statement (only on the failure path).

use alembic_chain::{Revision, Statement};

use crate::connection::Connection;
use crate::errors::{Aftermath, EngineError, SqlFailure};

use super::report::Direction;
use super::run::Batch;
use super::Engine;

impl<'m> Engine<'m> {
    /// A failed group: PostgreSQL's position points into one revision's
    /// statements, or the revisions are replayed one by one to find it.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn locate_group_failure<C: Connection>(
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
            context: format!("cannot run revision {}", rev.id),
            source: error,
        }
    }

    pub(super) fn failure(
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
                Some(db.code().code().to_owned()),
                db.detail().map(str::to_owned),
                db.hint().map(str::to_owned),
            ),
            None => (error.to_string(), None, None, None),
        };
        let advice = match code.as_deref().unwrap_or_default() {
            "42P07" | "42710" | "42701" | "42P06" => Some(format!(
                "the object already exists: if the database already has this revision's changes (made by hand or by another \
                 tool), record that with `{} stamp {}` instead of running it",
                self.settings.command,
                rev.id
            )),
            "42501" => Some("the connecting role lacks a privilege: connect as the objects' owner, or GRANT the privilege".into()),
            // "out of shared memory", most often the lock table: a run in
            // one transaction holds a lock on every table it creates or
            // alters until it commits (about 3,000 new tables with the
            // server's defaults).
            "53200" if !self.settings.transaction_per_migration => Some(format!(
                "if the server's hint names max_locks_per_transaction: this run holds a lock on every table it creates or \
                 alters until it commits; run it with `{} upgrade --transaction-per-migration` (a transaction per \
                 revision), or raise max_locks_per_transaction on the server",
                self.settings.command
            )),
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
            direction,
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
}

/// Rolls the failed transaction back and runs again, in a new one, what it
/// had run before the failing batch; false if any of it fails.
pub(super) async fn replay<C: Connection>(client: &mut C, before: &[String]) -> bool {
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
