//! Offline SQL (`--sql`): what a run would send, version-table and ledger
//! statements included, printed instead of run.

use alembic_chain::{HeadState, Resolver};

use crate::errors::EngineError;

use super::report::Direction;
use super::state::Current;
use super::Engine;

impl<'m> Engine<'m> {
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

    /// The `from` side of an offline range as version-table rows: what
    /// Alembic's `get_revision` names (`heads` leaves out heads another
    /// revision depends on, as the rows of a database upgraded to `heads`
    /// do), and where that names nothing, the rest of the grammar; `show`
    /// reads an identifier the same way.
    fn offline_from(&self, from: &str) -> Result<Vec<usize>, EngineError> {
        if from.is_empty() {
            return Ok(Vec::new());
        }
        Ok(Resolver::new(self.map).show(from)?)
    }

    /// `stamp --sql`: each target may be Alembic's `from:to`, all from the
    /// same `from` (the rows the script starts from; without one, base).
    pub fn stamp_sql_range(&self, targets: &[&str], purge: bool) -> Result<String, EngineError> {
        let mut start: Option<&str> = None;
        let mut to = Vec::with_capacity(targets.len());
        for target in targets {
            let Some((from, target)) = target.split_once(':') else {
                to.push(*target);
                continue;
            };
            match start {
                Some(first) if first != from => {
                    return Err(EngineError::OfflineStampStarts {
                        first: first.to_owned(),
                        second: from.to_owned(),
                    })
                }
                _ => start = Some(from),
            }
            to.push(target);
        }
        let from = self.offline_from(start.unwrap_or_default())?;
        self.stamp_sql_offline(&from, &to, purge)
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

    pub(super) fn offline(
        &self,
        plan: &[usize],
        direction: Direction,
        heads: HeadState,
        create: bool,
    ) -> Result<String, EngineError> {
        let steps = self.steps(plan, direction, heads)?;
        let mut out = String::new();
        if create {
            out.push_str(&self.create_tables_sql());
            out.push('\n');
        }
        let per_revision = self.settings.transaction_per_migration;
        let mut open = false;
        for (&i, (ops, _)) in plan.iter().zip(steps) {
            let rev = self.map.rev(i);
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
            out.push_str(&self.script(rev, direction, &ops)?.sql);
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
