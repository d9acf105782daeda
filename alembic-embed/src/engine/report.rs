//! What a run reports: each revision's step, the run's report, and the
//! revisions `accept` recorded.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

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
#[non_exhaustive]
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
#[non_exhaustive]
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
    pub warnings: Vec<Warning>,
}

/// What a run noticed, or let through by policy, without stopping.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Warning {
    /// An applied revision's upgrade section was edited after it ran, and
    /// [`ChecksumPolicy::Warn`](crate::ChecksumPolicy::Warn) let the run go on.
    Edited {
        /// The revision.
        revision: String,
        /// Its file.
        file: PathBuf,
        /// The checksum in the ledger.
        recorded: String,
        /// The file's checksum now.
        current: String,
    },
    /// An applied revision's downgrade section changed since it ran.
    DowngradeChanged {
        /// The revision.
        revision: String,
        /// Its file.
        file: PathBuf,
        /// The checksum in the ledger (`None`: it had no downgrade).
        recorded: Option<String>,
        /// The file's checksum now (`None`: the section is gone).
        current: Option<String>,
    },
    /// The database has revisions the chain does not know, and
    /// [`AheadPolicy::Allow`](crate::AheadPolicy::Allow) made the upgrade
    /// a no-op.
    DatabaseAhead {
        /// The unknown rows of the version table.
        ids: Vec<String>,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::Edited {
                revision,
                file,
                recorded,
                current,
            } => write!(
                f,
                "revision {revision} ({}) was edited after it was applied: the database recorded {recorded}, \
                 the file now has {current}",
                file.display()
            ),
            Warning::DowngradeChanged {
                revision,
                file,
                recorded,
                current,
            } => write!(
                f,
                "the downgrade section of revision {revision} ({}) changed since it was applied: recorded {}, now {}",
                file.display(),
                recorded.as_deref().unwrap_or("none"),
                current.as_deref().unwrap_or("none")
            ),
            Warning::DatabaseAhead { ids } => write!(
                f,
                "{}; nothing was run",
                crate::EngineError::UnknownRevisions { ids: ids.clone() }
            ),
        }
    }
}

impl Report {
    #[doc(hidden)]
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

    #[doc(hidden)]
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
    /// upgrades under [`ChecksumPolicy::Warn`](crate::ChecksumPolicy::Warn)), unverified revisions.
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
