//! The database's state against the chain: the version table's rows,
//! the ledger, what is applied, edited or unverified, and whether a run may
//! start.

use std::collections::HashMap;

use alembic_core::display::{log_entry, one_line, LineStyle};
use tokio_postgres::{SimpleQueryMessage, SimpleQueryRow};

#[cfg(feature = "sync")]
use crate::connection::wait;
use crate::connection::Connection;
use crate::errors::EngineError;

use super::report::{Direction, Report};
use super::settings::ChecksumPolicy;
use super::{quote_literal, Engine};

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

/// The ledger's columns a run needs, in [`LedgerRow::from_row`]'s order.
pub(super) const RUN_COLUMNS: &str =
    "revision, upgrade_checksum, downgrade_checksum, status, error";

/// All of them, for `current`; `tag` through `to_jsonb`, so that a ledger
/// made before tags reads too. The table is aliased `l`.
const ALL_COLUMNS: &str =
    "revision, upgrade_checksum, downgrade_checksum, status, error, applied_at::text, \
     duration_ms, tool, to_jsonb(l.*)->>'tag'";

impl LedgerRow {
    /// The one reader of ledger rows, for either column list: the revision
    /// and its record (what a shorter list leaves out is empty).
    pub(super) fn from_row(row: &SimpleQueryRow) -> (String, LedgerRow) {
        let text = |i: usize| {
            if i < row.len() {
                row.get(i).map(str::to_owned)
            } else {
                None
            }
        };
        (
            text(0).unwrap_or_default(),
            LedgerRow {
                upgrade_checksum: text(1).unwrap_or_default(),
                downgrade_checksum: text(2),
                status: text(3).unwrap_or_default(),
                error: text(4),
                applied_at: text(5).unwrap_or_default(),
                duration_ms: text(6).and_then(|d| d.parse().ok()),
                tool: text(7).unwrap_or_default(),
                tag: text(8),
            },
        )
    }

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

impl<'m> Engine<'m> {
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
        let mut ledger = HashMap::new();
        if has_ledger {
            let sql = format!("SELECT {ALL_COLUMNS} FROM {l} AS l");
            for m in Self::db("cannot read the ledger", client.simple_query(&sql).await)? {
                if let SimpleQueryMessage::Row(r) = m {
                    let (revision, row) = LedgerRow::from_row(&r);
                    ledger.insert(revision, row);
                }
            }
        }
        let current = self.classify(current.heads, ledger);
        Ok(current)
    }

    /// The state from the version table's rows and the ledger: the rows
    /// sorted, and split into revisions of this chain and unknown ones.
    pub(super) fn classify(
        &self,
        mut heads: Vec<String>,
        ledger: HashMap<String, LedgerRow>,
    ) -> Current {
        heads.sort();
        let mut current = Current {
            ledger,
            ..Current::default()
        };
        for id in &heads {
            match self.map.index_of(id) {
                Some(i) => current.known.push(i),
                None => current.unknown.push(id.clone()),
            }
        }
        current.heads = heads;
        current
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

    pub(super) fn check_state(
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
}
