//! `stamp`: the version table set without running revisions, as
//! Alembic's `stamp` leaves it; ledger rows of what is no longer applied
//! removed.

#[cfg(feature = "sync")]
use crate::connection::wait;
use crate::connection::Connection;
use crate::errors::EngineError;

use super::report::Report;
use super::state::Current;
use super::{quote_literal, Engine};

impl<'m> Engine<'m> {
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
        self.locked(client, None, async |client, current| {
            // A target only the replaced revisions of a squash have.
            let (engine, current) = self
                .view(&current)
                .or_expanded(current, |e, c| e.stamp_rows(c, targets, purge).is_ok());
            engine.stamp_locked(client, current, targets, purge).await
        })
        .await
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
    /// leaves them (`alembic_chain::stamp_rows`); `--purge` starts from none.
    pub(super) fn stamp_rows(
        &self,
        current: &Current,
        targets: &[&str],
        purge: bool,
    ) -> Result<Vec<usize>, EngineError> {
        let rows: &[usize] = if purge { &[] } else { &current.known };
        Ok(alembic_chain::stamp_rows(self.map, rows, targets)?)
    }

    pub(super) fn stamp_sql(&self, before: &[String], rows: &[usize], purge: bool) -> String {
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
}
