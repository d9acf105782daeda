//! Running a plan: revisions grouped into round trips, transactions as
//! configured, `transactional: false` revisions on their own, each step
//! reported.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use alembic_chain::{HeadState, Resolver, Revision, Statement, VersionOp};
use tokio_postgres::SimpleQueryMessage;

#[cfg(feature = "sync")]
use crate::connection::wait;
use crate::connection::Connection;
use crate::errors::{Aftermath, EngineError};

use super::report::{Direction, Report, Step, Warning};
use super::session::Session;
use super::settings::AheadPolicy;
use super::state::Current;
use super::{quote_literal, Engine};

/// What one revision sends to the server, and where its statements are.
pub(super) struct Batch<'r> {
    pub(super) sql: String,
    /// (byte offset in `sql`, statement)
    pub(super) statements: Vec<(usize, &'r Statement)>,
}

impl<'m> Engine<'m> {
    pub(super) fn statements<'r>(
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
    pub(super) fn describe(&self, i: usize, direction: Direction) -> String {
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
            VersionOp::Delete(id) => {
                format!("DELETE FROM {v} WHERE version_num {};\n", self.row_of(id))
            }
            VersionOp::Update { from, to } => {
                format!(
                    "UPDATE {v} SET version_num = {} WHERE version_num {};\n",
                    quote_literal(to),
                    self.row_of(from)
                )
            }
        }
    }

    /// The version-table row of a revision: `= 'id'`, or `IN (...)` every
    /// row that stands for it: a squash and its squash point are one place,
    /// whichever way the database got there.
    fn row_of(&self, id: &str) -> String {
        match self.map.index_of(id).map(|i| self.map.version_rows(i)) {
            Some(rows) if rows.len() > 1 => format!(
                "IN ({})",
                rows.iter()
                    .map(|r| quote_literal(r))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            _ => format!("= {}", quote_literal(id)),
        }
    }

    /// The ledger's side of revisions applied (`Upgrade`: a row each,
    /// inserted or refreshed, with its duration in milliseconds, `None`
    /// for NULL) or undone (`Downgrade`: their rows deleted, a squash's
    /// with the rows of what it replaced); one statement for them all.
    fn ledger_sql(&self, direction: Direction, revs: &[(&Revision, Option<f64>)]) -> String {
        let l = self.ledger_table();
        match direction {
            Direction::Upgrade => {
                // The column is named only when there is a tag, so that
                // offline SQL without one runs on a ledger made before tags.
                let (tag_column, tag, tag_update) = match &self.settings.tag {
                    Some(tag) => (
                        ", tag",
                        format!(", {}", quote_literal(tag)),
                        ", tag = EXCLUDED.tag",
                    ),
                    None => ("", String::new(), ""),
                };
                let tool = quote_literal(&self.settings.tool);
                let rows: Vec<String> =
                    revs.iter()
                        .map(|(rev, duration)| {
                            let down = rev.downgrade.as_ref().map_or("NULL".to_owned(), |d| {
                                quote_literal(d.checksum().as_str())
                            });
                            let duration = duration.map_or("NULL".to_owned(), |ms| format!("{ms}"));
                            format!(
                                "({}, {}, {down}, {duration}, {tool}{tag})",
                                quote_literal(&rev.id),
                                quote_literal(rev.upgrade.checksum().as_str()),
                            )
                        })
                        .collect();
                format!(
                    "INSERT INTO {l} (revision, upgrade_checksum, downgrade_checksum, duration_ms, tool{tag_column}) VALUES {} \
                     ON CONFLICT (revision) DO UPDATE SET upgrade_checksum = EXCLUDED.upgrade_checksum, downgrade_checksum = \
                     EXCLUDED.downgrade_checksum, applied_at = now(), duration_ms = EXCLUDED.duration_ms, tool = EXCLUDED.tool, \
                     status = 'applied', error = NULL{tag_update};\n",
                    rows.join(", ")
                )
            }
            // A squash's undo also ends the records of what it replaced.
            Direction::Downgrade => format!(
                "DELETE FROM {l} WHERE revision IN ({});\n",
                revs.iter()
                    .flat_map(|(rev, _)| std::iter::once(&rev.id).chain(&rev.replaces))
                    .map(|id| quote_literal(id))
                    .collect::<Vec<_>>()
                    .join(", ")
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

    /// One revision in a round trip: its statements, then a row with the
    /// milliseconds since the server received the round trip's query
    /// (`statement_timestamp()` stays that moment through all of its
    /// statements), from which each revision's duration is taken. Its
    /// version-table change and ledger row go with the transaction's
    /// commit ([`Engine::bookkeeping_sql`]).
    pub(super) fn batch<'r>(
        &self,
        rev: &'r Revision,
        direction: Direction,
    ) -> Result<Batch<'r>, EngineError> {
        let mut batch = self.statements_batch(rev, direction)?;
        batch.sql.push_str(&format!(
            "SELECT '{TIMING}', {}, {SINCE_RECEIVED};\n",
            quote_literal(&rev.id)
        ));
        Ok(batch)
    }

    /// One revision in an offline script: its statements, its version-table
    /// change and its ledger row (without a duration).
    pub(super) fn script<'r>(
        &self,
        rev: &'r Revision,
        direction: Direction,
        ops: &[VersionOp],
    ) -> Result<Batch<'r>, EngineError> {
        let mut batch = self.statements_batch(rev, direction)?;
        for op in ops {
            batch.sql.push_str(&self.version_sql(op));
        }
        batch
            .sql
            .push_str(&self.ledger_sql(direction, &[(rev, None)]));
        Ok(batch)
    }

    fn statements_batch<'r>(
        &self,
        rev: &'r Revision,
        direction: Direction,
    ) -> Result<Batch<'r>, EngineError> {
        let statements = self.statements(rev, direction)?;
        let mut sql = String::new();
        let mut located = Vec::with_capacity(statements.len());
        for s in statements {
            located.push((sql.len(), s));
            sql.push_str(&s.sql);
            sql.push_str(";\n");
        }
        Ok(Batch {
            sql,
            statements: located,
        })
    }

    /// What a transaction's commit records, before its `COMMIT`: the
    /// version table taken from the rows at its start to `heads` in one go
    /// ([`HeadState::changes_to`]), and one ledger statement for all of its
    /// revisions. Nobody sees the rows between, so recording each step on
    /// its own (as Alembic does) cost a third of the server's work on
    /// a run of small revisions and showed nothing more.
    fn bookkeeping_sql(&self, tx: &Transaction, heads: &HeadState, direction: Direction) -> String {
        let mut sql = String::new();
        for op in tx.committed.changes_to(self.map, heads) {
            sql.push_str(&self.version_sql(&op));
        }
        if !tx.done.is_empty() {
            let revs: Vec<(&Revision, Option<f64>)> = tx
                .done
                .iter()
                .map(|&(i, ms)| (self.map.rev(i), Some(ms)))
                .collect();
            sql.push_str(&self.ledger_sql(direction, &revs));
        }
        sql
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

    /// An upgrade or downgrade in a session opened with
    /// [`Settings::open_session`] (for instance while the chain was
    /// loading); releases its lock.
    #[cfg(feature = "sync")]
    pub fn run_in(
        &self,
        client: &mut postgres::Client,
        session: Session,
        target: &str,
        direction: Direction,
        on_step: &mut dyn FnMut(&Step),
    ) -> Result<Report, EngineError> {
        wait(self.run_async(client, Some(session), target, direction, on_step))
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
        if let Some(report) = session
            .as_ref()
            .and_then(|s| self.all_recorded(s, target, direction))
        {
            return Ok(report);
        }
        let session = match session {
            Some(s) if s.is_snapshot() => match self.nothing_to_do(s, target, direction) {
                Some(report) => return Ok(report),
                None => None,
            },
            other => other,
        };
        self.locked(client, session, async |client, current| {
            let (engine, current) = self.view(&current).for_target(current, target, direction);
            engine
                .run_to(client, current, target, direction, on_step)
                .await
        })
        .await
    }

    /// The report of a run on a snapshot of a database at the heads with
    /// every revision recorded as it is now, when the run is an upgrade to
    /// them (`heads`, or `head` of a single head): nothing to do, read off
    /// the rows as they came without building the state, the checks or a
    /// plan ([`RevisionMap::all_applied`], the check a service's packed
    /// chain makes). Anything else is [`Engine::nothing_to_do`]'s to decide.
    ///
    /// [`RevisionMap::all_applied`]: alembic_chain::RevisionMap::all_applied
    fn all_recorded(
        &self,
        session: &Session,
        target: &str,
        direction: Direction,
    ) -> Option<Report> {
        let to_heads = match target {
            "heads" => true,
            "head" => self.map.heads().len() == 1,
            _ => false,
        };
        if direction != Direction::Upgrade || !to_heads {
            return None;
        }
        session.up_to_date(|rows, ledger| self.map.all_applied(rows, ledger))
    }

    /// A run's report from a snapshot ([`Settings::open_run`]) when the
    /// run would write nothing: the same checks and plan as under the lock,
    /// and an empty plan. `None` for anything else (revisions to run, or an
    /// error, which the run under the lock reports from its own read).
    fn nothing_to_do(
        &self,
        snapshot: Session,
        target: &str,
        direction: Direction,
    ) -> Option<Report> {
        let (heads, ledger) = snapshot.into_state();
        let current = self.for_rows(&heads).ok()?.classify(heads, ledger);
        let (engine, current) = self.view(&current).for_target(current, target, direction);
        let (mut report, plan) = engine.prepare_run(&current, target, direction).ok()?;
        if !plan.is_empty() {
            return None;
        }
        if current.unknown.is_empty() {
            report.after = engine.ids(&HeadState::new(current.known.iter().copied()).heads());
        }
        Some(report)
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
        self.locked(client, None, async |client, current| {
            self.view(&current)
                .step_one_locked(client, current, revision, direction)
                .await
        })
        .await
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
                alembic_chain::ResolveError::InvalidTarget {
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
        let (mut report, plan) = self.prepare_run(&current, target, direction)?;
        if !current.unknown.is_empty() {
            // Allowed ahead: nothing runs.
            return Ok(report);
        }
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

    /// Everything a run decides before it writes: its report so far (the
    /// rows before, what is unverified, the warnings) and its plan, empty
    /// when the database is ahead and that is allowed (the report is then
    /// complete); the errors that stop it before any SQL.
    fn prepare_run(
        &self,
        current: &Current,
        target: &str,
        direction: Direction,
    ) -> Result<(Report, Vec<usize>), EngineError> {
        let mut report = Report {
            before: current.heads.clone(),
            ..Report::default()
        };
        if !current.unknown.is_empty()
            && direction == Direction::Upgrade
            && self.settings.database_ahead == AheadPolicy::Allow
        {
            report.warnings.push(Warning::DatabaseAhead {
                ids: current.unknown.clone(),
            });
            report.after = current.heads.clone();
            return Ok((report, Vec::new()));
        }
        self.check_state(current, direction, &mut report)?;
        let plan = self.plan(current, target, direction)?;
        Ok((report, plan))
    }

    fn plan(
        &self,
        current: &Current,
        target: &str,
        direction: Direction,
    ) -> Result<Vec<usize>, alembic_chain::ResolveError> {
        let resolver = Resolver::with_current(self.map, current.known.clone());
        match direction {
            Direction::Upgrade => resolver.upgrade_plan(target),
            Direction::Downgrade => resolver.downgrade_plan(target),
        }
    }

    /// This engine, or the one on the chain before its squashes when only
    /// that one has `target` (it names a revision a squash replaced: the
    /// run goes through the replaced revisions, as before the squash).
    fn for_target(self, current: Current, target: &str, direction: Direction) -> (Self, Current) {
        self.or_expanded(current, |e, c| e.plan(c, target, direction).is_ok())
    }

    /// This engine when `works` on it, else the one on the chain before
    /// its squashes when `works` there (with the state read again).
    pub(super) fn or_expanded(
        self,
        current: Current,
        works: impl Fn(&Self, &Current) -> bool,
    ) -> (Self, Current) {
        if works(&self, &current) {
            return (self, current);
        }
        match self.expanded() {
            Some(engine) => {
                let before = engine.classify(current.heads.clone(), current.ledger.clone());
                if works(&engine, &before) {
                    (engine, before)
                } else {
                    (self, current)
                }
            }
            None => (self, current),
        }
    }

    /// Runs a plan from the version table's rows `heads`; returns the rows
    /// after it.
    pub(super) async fn run<C: Connection, S: FnMut(&Step) + ?Sized>(
        &self,
        client: &mut C,
        plan: &[usize],
        direction: Direction,
        mut heads: HeadState,
        report: &mut Report,
        on_step: &mut S,
    ) -> Result<HeadState, EngineError> {
        let steps = self.steps(plan, direction, heads.clone())?;
        let mut tx = Transaction::new(heads.clone());
        let mut group: Vec<(usize, Batch<'m>)> = Vec::new();
        let mut group_len = 0;
        let mut run = RunProgress {
            direction,
            total: plan.len(),
            report,
            on_step,
        };
        for (n, (&i, (ops, after))) in plan.iter().zip(steps).enumerate() {
            let rev = self.map.rev(i);
            let before = std::mem::replace(&mut heads, after);
            if rev.transactional {
                let batch = self.batch(rev, direction)?;
                group_len += batch.sql.len();
                group.push((i, batch));
                let next_joins = plan
                    .get(n + 1)
                    .is_some_and(|&j| self.map.rev(j).transactional);
                if self.settings.transaction_per_migration
                    || !next_joins
                    || group.len() == GROUP_REVISIONS
                    || group_len > GROUP_BYTES
                {
                    self.flush(client, &group, &mut tx, &mut run).await?;
                    group.clear();
                    group_len = 0;
                    if self.settings.transaction_per_migration {
                        self.commit(client, &mut tx, heads.clone(), direction)
                            .await?;
                    }
                }
            } else {
                if tx.open {
                    self.commit(client, &mut tx, before, direction).await?;
                }
                let started = Instant::now();
                self.run_outside_transaction(client, rev, direction, &ops)
                    .await
                    .map_err(|e| {
                        with_aftermath(
                            e,
                            Aftermath::NotTransactional {
                                version_table: self.ids(&tx.committed.heads()),
                            },
                        )
                    })?;
                tx.committed = heads.clone();
                self.step_done(i, started.elapsed(), &mut run);
            }
        }
        if tx.open {
            self.commit(client, &mut tx, heads.clone(), direction)
                .await?;
        }
        Ok(heads)
    }

    /// Every step of a plan, computed before anything runs: its
    /// version-table changes and the rows after it. Every statement of the
    /// plan is split first (a broken file stops the run before its first
    /// revision), and a step Alembic could not record stops it too.
    pub(super) fn steps(
        &self,
        plan: &[usize],
        direction: Direction,
        mut heads: HeadState,
    ) -> Result<Vec<(Vec<VersionOp>, HeadState)>, EngineError> {
        for &i in plan {
            self.statements(self.map.rev(i), direction)?;
        }
        plan.iter()
            .map(|&i| {
                let ops = match direction {
                    Direction::Upgrade => heads.upgrade(self.map, i)?,
                    Direction::Downgrade => heads.downgrade(self.map, i)?,
                };
                Ok((ops, heads.clone()))
            })
            .collect()
    }

    /// Sends a group of transactional revisions in the open transaction
    /// (beginning one if needed); a failure says what the transaction
    /// mode left.
    async fn flush<C: Connection, S: FnMut(&Step) + ?Sized>(
        &self,
        client: &mut C,
        group: &[(usize, Batch<'m>)],
        tx: &mut Transaction,
        run: &mut RunProgress<'_, S>,
    ) -> Result<(), EngineError> {
        // The transaction begins in the round trip of its first group.
        let begin = (!tx.open).then(|| self.begin_sql());
        tx.open = true;
        if let Err(e) = self.send_group(client, begin, group, tx, run).await {
            let version_table = self.ids(&tx.committed.heads());
            let aftermath = if self.settings.transaction_per_migration {
                Aftermath::RevisionRolledBack { version_table }
            } else {
                // The revisions of this transaction before the failing one.
                let mut undone = self.done_ids(tx);
                undone.extend(
                    group
                        .iter()
                        .map(|(g, _)| self.map.rev(*g).id.clone())
                        .take_while(|id| Some(id.as_str()) != failed_revision(&e)),
                );
                Aftermath::RunRolledBack {
                    undone,
                    version_table,
                }
            };
            return Err(with_aftermath(e, aftermath));
        }
        Ok(())
    }

    /// The ids of the revisions a transaction has run, in the order run.
    fn done_ids(&self, tx: &Transaction) -> Vec<String> {
        tx.done
            .iter()
            .map(|&(i, _)| self.map.rev(i).id.clone())
            .collect()
    }

    /// Records the open transaction's revisions (the version table's rows
    /// `heads`, their ledger rows) and commits, in one round trip, naming
    /// its revisions if that fails (a deferred constraint, a serialization
    /// failure, a version table changed by a revision); `heads` are then
    /// the committed rows.
    async fn commit<C: Connection>(
        &self,
        client: &mut C,
        tx: &mut Transaction,
        heads: HeadState,
        direction: Direction,
    ) -> Result<(), EngineError> {
        let mut sql = self.bookkeeping_sql(tx, &heads, direction);
        sql.push_str("COMMIT;\n");
        if let Err(source) = client.batch_execute(&sql).await {
            // A statement that failed before the COMMIT leaves the
            // transaction open: the lock's release rolls it back.
            let revisions = self.done_ids(tx);
            return Err(EngineError::Database {
                context: format!(
                    "cannot record and commit the transaction of revision{} {} (it was rolled back: none of {} is applied)",
                    if revisions.len() == 1 { "" } else { "s" },
                    revisions.join(", "),
                    if revisions.len() == 1 { "it" } else { "them" }
                ),
                source,
            });
        }
        *tx = Transaction::new(heads);
        Ok(())
    }

    fn step_done<S: FnMut(&Step) + ?Sized>(
        &self,
        i: usize,
        duration: Duration,
        run: &mut RunProgress<'_, S>,
    ) {
        let step = Step {
            revision: self.map.rev(i).id.clone(),
            direction: run.direction,
            description: self.describe(i, run.direction),
            duration,
            position: run.report.steps.len() + 1,
            total: run.total,
        };
        (run.on_step)(&step);
        run.report.steps.push(step);
    }

    /// Sends consecutive revisions in one round trip (after `begin`, which
    /// opens the transaction); each reports its own duration as measured
    /// by the server, kept for its ledger row.
    async fn send_group<C: Connection, S: FnMut(&Step) + ?Sized>(
        &self,
        client: &mut C,
        begin: Option<String>,
        group: &[(usize, Batch<'m>)],
        tx: &mut Transaction,
        run: &mut RunProgress<'_, S>,
    ) -> Result<(), EngineError> {
        let mut sql = begin.map_or_else(String::new, |b| b + ";\n");
        let body = sql.len();
        // The first row marks when the server began (after parsing the
        // whole query): each revision's duration runs from the row before.
        sql.push_str(&format!("SELECT '{TIMING}', '', {SINCE_RECEIVED};\n"));
        sql.reserve(group.iter().map(|(_, b)| b.sql.len()).sum());
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
                        run.direction,
                        group,
                        &sql,
                        &starts,
                        error,
                        &tx.sent,
                    )
                    .await)
            }
        };
        let elapsed = started.elapsed();
        let mut measured: HashMap<&str, f64> = HashMap::new();
        let mut last = 0.0;
        for message in &messages {
            if let SimpleQueryMessage::Row(row) = message {
                if row.len() == 3 && row.get(0) == Some(TIMING) {
                    if let (Some(id), Some(ms)) =
                        (row.get(1), row.get(2).and_then(|m| m.parse::<f64>().ok()))
                    {
                        if !id.is_empty() {
                            measured.insert(id, (ms - last).max(0.0));
                        }
                        last = ms;
                    }
                }
            }
        }
        let fallback = elapsed / u32::try_from(group.len()).unwrap_or(1).max(1);
        for (i, _) in group {
            let ms = measured
                .get(self.map.rev(*i).id.as_str())
                .copied()
                .unwrap_or(fallback.as_secs_f64() * 1000.0);
            tx.done.push((*i, ms));
            self.step_done(*i, Duration::from_secs_f64(ms / 1000.0), run);
        }
        // What a replay after `ROLLBACK; BEGIN` sends again.
        tx.sent.push(sql.split_off(body));
        Ok(())
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
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        sql.push_str(&self.ledger_sql(direction, &[(rev, Some(ms))]));
        sql.push_str("COMMIT;\n");
        Self::db(
            &format!(
                "revision {} ran outside a transaction, but cannot be recorded in the version table and the ledger",
                rev.id
            ),
            client.batch_execute(&sql).await,
        )
    }
}

/// The open transaction of a run: what it sent (to replay when a failure
/// must be located statement by statement), its revisions with their
/// durations in milliseconds (recorded at its commit), and the version
/// table's rows as last committed (for failure messages, and where its
/// commit takes them from).
struct Transaction {
    open: bool,
    sent: Vec<String>,
    done: Vec<(usize, f64)>,
    committed: HeadState,
}

impl Transaction {
    fn new(committed: HeadState) -> Transaction {
        Transaction {
            open: false,
            sent: Vec::new(),
            done: Vec::new(),
            committed,
        }
    }
}

/// Where a run reports each revision as it completes.
struct RunProgress<'r, S: ?Sized> {
    direction: Direction,
    total: usize,
    report: &'r mut Report,
    on_step: &'r mut S,
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
/// Marks the row each revision returns with its server-measured time.
const TIMING: &str = "alembic:timing";
/// Milliseconds since the server received the query being run.
const SINCE_RECEIVED: &str = "extract(epoch FROM clock_timestamp() - statement_timestamp()) * 1000";
