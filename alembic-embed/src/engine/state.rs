//! The database's state against the chain: the version table's rows,
//! the ledger, what is applied, edited or unverified, and whether a run may
//! start.

use std::collections::HashMap;

use alembic_chain::display::{log_entry, one_line, LineStyle};
use alembic_chain::Resolver;
use tokio_postgres::{SimpleQueryMessage, SimpleQueryRow};

#[cfg(feature = "sync")]
use crate::connection::wait;
use crate::connection::Connection;
use crate::errors::EngineError;

use super::report::{Direction, Report, Warning};
use super::settings::ChecksumPolicy;
use super::{quote_literal, Engine};

/// A ledger row. Its text columns share one allocation: a startup reads a
/// thousand rows, and four strings each were a third of its work.
#[derive(Clone, Debug)]
pub struct LedgerRow {
    /// The text columns, in [`TEXT_COLUMNS`] order, one after the other.
    text: Box<str>,
    /// Where each text column ends in `text`.
    ends: [u32; TEXT_COLUMNS.len()],
    /// Which text columns are not NULL, one bit each.
    present: u8,
    duration_ms: Option<f64>,
}

/// The text columns of a ledger row, by their place in either column list.
const TEXT_COLUMNS: [usize; 7] = [1, 2, 3, 4, 5, 7, 8];

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
        let get = |i: usize| if i < row.len() { row.get(i) } else { None };
        let values = TEXT_COLUMNS.map(get);
        let mut text = String::with_capacity(values.iter().flatten().map(|v| v.len()).sum());
        let mut ends = [0; TEXT_COLUMNS.len()];
        let mut present = 0;
        for (k, value) in values.iter().enumerate() {
            if let Some(value) = value {
                text.push_str(value);
                present |= 1 << k;
            }
            ends[k] = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        (
            get(0).unwrap_or_default().to_owned(),
            LedgerRow {
                text: text.into_boxed_str(),
                ends,
                present,
                duration_ms: get(6).and_then(|d| d.parse().ok()),
            },
        )
    }

    /// Text column `k` of [`TEXT_COLUMNS`]; `None` for NULL.
    fn column(&self, k: usize) -> Option<&str> {
        if self.present & (1 << k) == 0 {
            return None;
        }
        let start = if k == 0 { 0 } else { self.ends[k - 1] as usize };
        self.text.get(start..self.ends[k] as usize)
    }

    /// The upgrade checksum recorded when the revision ran.
    pub fn upgrade_checksum(&self) -> &str {
        self.column(0).unwrap_or_default()
    }

    /// The downgrade checksum recorded then.
    pub fn downgrade_checksum(&self) -> Option<&str> {
        self.column(1)
    }

    /// `applied` or `failed`.
    pub fn status(&self) -> &str {
        self.column(2).unwrap_or_default()
    }

    /// What failed, for a failed row.
    pub fn error(&self) -> Option<&str> {
        self.column(3)
    }

    /// When, as text (empty unless read for `current`).
    pub fn applied_at(&self) -> &str {
        self.column(4).unwrap_or_default()
    }

    /// How long it took, in milliseconds.
    pub fn duration_ms(&self) -> Option<f64> {
        self.duration_ms
    }

    /// Which tool ran it (empty unless read for `current`).
    pub fn tool(&self) -> &str {
        self.column(5).unwrap_or_default()
    }

    /// The `--tag` of the run that applied it.
    pub fn tag(&self) -> Option<&str> {
        self.column(6)
    }

    /// The lines `current -v` and `history -v -i` show under a revision:
    /// when, by what, how long, and the run's tag.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "Applied: {} by {} in {:.1} ms ({})\n",
            self.applied_at(),
            self.tool(),
            self.duration_ms.unwrap_or(0.0),
            self.status()
        );
        if let Some(tag) = self.tag() {
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

impl Current {
    /// The lines under a revision in `current -v` and `history -v -i`: its
    /// ledger record; for a squash the database reached through the
    /// revisions it replaced, theirs.
    pub fn record_text(&self, map: &alembic_chain::RevisionMap, i: usize) -> String {
        let rev = map.rev(i);
        if let Some(row) = self.ledger.get(&rev.id) {
            return row.describe();
        }
        match rev.replaces.last().and_then(|p| Some((p, self.ledger.get(p)?))) {
            Some((point, row)) => format!(
                "Reached through the {} revision{} it replaces, recorded in the ledger up to {point}:\n{}",
                rev.replaces.len(),
                if rev.replaces.len() == 1 { "" } else { "s" },
                row.describe()
            ),
            None => String::new(),
        }
    }
}

/// Applied revisions compared with the ledger ([`Engine::check_applied`]),
/// by index into the chain.
#[derive(Clone, Debug, Default)]
pub struct Checked {
    /// Applied revisions (the rows and everything they imply), in order.
    pub applied: Vec<usize>,
    /// Applied revisions without a ledger row.
    pub unverified: Vec<usize>,
    /// Applied revisions whose upgrade section differs from the ledger's.
    pub edited: Vec<Drift>,
    /// Applied revisions whose downgrade section differs from the ledger's.
    pub downgrade_changed: Vec<Drift>,
}

/// A section whose checksum differs from the one recorded when it ran.
#[derive(Clone, Debug)]
pub struct Drift {
    /// The revision, by index.
    pub index: usize,
    /// The ledger's checksum (`None`: the section did not exist).
    pub recorded: Option<String>,
    /// The file's checksum now (`None`: the section is gone).
    pub current: Option<String>,
}

impl Drift {
    /// The recorded checksum, or `none`.
    pub fn recorded_text(&self) -> String {
        self.recorded.clone().unwrap_or_else(|| "none".into())
    }

    /// The current checksum, or `none`.
    pub fn current_text(&self) -> String {
        self.current.clone().unwrap_or_else(|| "none".into())
    }
}

/// The database's state against the chain ([`Engine::status`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// Rows of the version table (sorted).
    pub heads: Vec<String>,
    /// Applied revisions of the chain (the rows and everything below them),
    /// in the chain's order.
    pub applied: Vec<String>,
    /// Revisions an upgrade to the heads would apply, in order (empty when
    /// the database has revisions the chain does not know).
    pub pending: Vec<String>,
    /// Rows of the version table the chain does not know (the database is
    /// ahead of it).
    pub unknown: Vec<String>,
    /// Applied revisions without a ledger row (adopted from Python Alembic,
    /// or stamped): their checksums cannot be verified.
    pub unverified: Vec<String>,
    /// Applied revisions whose upgrade section differs from the ledger's.
    pub edited: Vec<String>,
}

impl Status {
    /// Nothing pending, nothing unknown.
    pub fn is_up_to_date(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty()
    }
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
        Ok(self
            .view_rows(&current.heads)
            .classify(current.heads, ledger))
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
            match self.map.state_index(id) {
                Some(i) => current.known.push(i),
                None => current.unknown.push(id.clone()),
            }
        }
        current.heads = heads;
        current
    }

    /// Applied revisions (the rows and everything they imply) in order.
    pub fn applied(&self, current: &Current) -> Vec<usize> {
        if let Some(view) = self.other_view(current) {
            return view.applied(current);
        }
        let set = self.map.ancestors(&current.known, true);
        self.map
            .order()
            .iter()
            .copied()
            .filter(|&i| set[i])
            .collect()
    }

    /// Applied revisions without a ledger row (adopted from Python Alembic,
    /// or stamped), in order; no checksum is computed.
    pub fn unverified(&self, current: &Current) -> Vec<String> {
        self.applied(current)
            .into_iter()
            .map(|i| &self.map.rev(i).id)
            .filter(|id| !current.ledger.contains_key(*id))
            .cloned()
            .collect()
    }

    /// The one comparison of applied revisions with the ledger: which are
    /// unverified (no ledger row), which upgrade sections were edited after
    /// they ran, and which downgrade sections changed. `current`, `status`,
    /// a run's check and `verify --against` all read it.
    pub fn check_applied(&self, current: &Current) -> Checked {
        if let Some(view) = self.other_view(current) {
            return view.check_applied(current);
        }
        let mut checked = Checked {
            applied: self.applied(current),
            ..Checked::default()
        };
        // Revisions a squash the database ran stands for (in the graph
        // before the squash): its record stands for theirs.
        let covered = self
            .map
            .covered_by_squashes(&|id| current.ledger.contains_key(id));
        for &i in &checked.applied {
            let rev = self.map.rev(i);
            let Some(row) = current.ledger.get(&rev.id) else {
                // A squash reached through the revisions it replaced: their
                // records stand for it.
                let through = rev
                    .replaces
                    .last()
                    .filter(|p| current.ledger.contains_key(*p));
                if through.is_none() && covered.get(i) != Some(&true) {
                    checked.unverified.push(i);
                }
                continue;
            };
            let now = rev.upgrade.checksum().as_str();
            if row.upgrade_checksum() != now {
                checked.edited.push(Drift {
                    index: i,
                    recorded: Some(row.upgrade_checksum().to_owned()),
                    current: Some(now.to_owned()),
                });
            }
            let down_now = rev.downgrade.as_ref().map(|d| d.checksum().as_str());
            if row.downgrade_checksum() != down_now {
                checked.downgrade_changed.push(Drift {
                    index: i,
                    recorded: row.downgrade_checksum().map(str::to_owned),
                    current: down_now.map(str::to_owned),
                });
            }
        }
        checked
    }

    /// The database's state against the chain, as `current`, `verify
    /// --against` and [`Runner::status`](crate::Runner::status) show it:
    /// what is applied, pending (when nothing is unknown), unverified and
    /// edited.
    pub fn status(&self, current: &Current) -> Result<Status, EngineError> {
        if let Some(view) = self.other_view(current) {
            return view.status(current);
        }
        let checked = self.check_applied(current);
        let ids = |v: &mut dyn Iterator<Item = usize>| -> Vec<String> {
            v.map(|i| self.map.rev(i).id.clone()).collect()
        };
        let pending = if current.unknown.is_empty() {
            match Resolver::with_current(self.map, current.known.clone()).upgrade_plan("heads") {
                Ok(plan) => plan,
                // Rows of which one is below another (Alembic's `stamp a b`
                // writes them): `upgrade` refuses to start from them, as
                // Alembic does, but the state is still shown, with what is
                // not applied in the chain's order.
                Err(alembic_chain::ResolveError::Overlapping { .. }) => {
                    let applied = self.map.ancestors(&current.known, true);
                    self.map
                        .order()
                        .iter()
                        .copied()
                        .filter(|&i| !applied[i])
                        .collect()
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            Vec::new()
        };
        Ok(Status {
            heads: current.heads.clone(),
            applied: ids(&mut checked.applied.iter().copied()),
            pending: ids(&mut pending.into_iter()),
            unknown: current.unknown.clone(),
            unverified: ids(&mut checked.unverified.iter().copied()),
            edited: ids(&mut checked.edited.iter().map(|d| d.index)),
        })
    }

    /// `current`'s text: each row in Alembic's one-line form, or verbosely
    /// with its ledger record; rows not in the chain are marked.
    pub fn current_text(&self, current: &Current, verbose: bool) -> String {
        let mut out = String::new();
        for &i in &current.known {
            if verbose {
                out.push_str(&log_entry(self.map, i));
                out.push_str(&current.record_text(self.map, i));
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
        if let Some((id, row)) = current.ledger.iter().find(|(_, r)| r.status() == "failed") {
            return Err(EngineError::FailedEarlier {
                command: self.settings.command.clone(),
                revision: id.clone(),
                error: row.error().unwrap_or_default().to_owned(),
            });
        }
        let checked = self.check_applied(current);
        report.unverified = checked
            .unverified
            .iter()
            .map(|&i| self.map.rev(i).id.clone())
            .collect();
        if direction == Direction::Upgrade {
            for drift in &checked.edited {
                let rev = self.map.rev(drift.index);
                let (recorded, now) = (drift.recorded_text(), drift.current_text());
                match self.settings.checksum_mismatch {
                    ChecksumPolicy::Refuse => {
                        return Err(EngineError::ChecksumMismatch {
                            command: self.settings.command.clone(),
                            revision: rev.id.clone(),
                            file: rev.path.clone(),
                            recorded,
                            current: now,
                        })
                    }
                    ChecksumPolicy::Warn => report.warnings.push(Warning::Edited {
                        revision: rev.id.clone(),
                        file: rev.path.clone(),
                        recorded,
                        current: now,
                    }),
                }
            }
        }
        for drift in &checked.downgrade_changed {
            let rev = self.map.rev(drift.index);
            report.warnings.push(Warning::DowngradeChanged {
                revision: rev.id.clone(),
                file: rev.path.clone(),
                recorded: drift.recorded.clone(),
                current: drift.current.clone(),
            });
        }
        Ok(())
    }
}
