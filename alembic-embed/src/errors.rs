//! Errors of the migration engine. Each names the revision and file, and,
//! for failing SQL, the line and PostgreSQL's message, SQLSTATE, detail and
//! hint.

use std::fmt;
use std::path::PathBuf;

use alembic_chain::{ParseError, ResolveError};

use crate::engine::Direction;

/// A statement that PostgreSQL refused.
#[derive(Debug)]
#[non_exhaustive]
pub struct SqlFailure {
    /// The revision.
    pub revision: String,
    /// Whether it was being applied or undone.
    pub direction: Direction,
    /// Its file.
    pub file: PathBuf,
    /// The line in the file (inside the statement when PostgreSQL gives a
    /// position, else where the statement starts).
    pub line: usize,
    /// The statement's first line, for context.
    pub statement: String,
    /// PostgreSQL's message.
    pub message: String,
    /// The SQLSTATE code (`None` when the failure was not the server's,
    /// such as a lost connection).
    pub code: Option<String>,
    /// PostgreSQL's detail, if any.
    pub detail: Option<String>,
    /// PostgreSQL's hint, if any.
    pub hint: Option<String>,
    /// Our advice for well-known failures.
    pub advice: Option<String>,
    /// What the failure left the database in.
    pub aftermath: Aftermath,
}

/// What a failing statement left the database in, which depends on how the
/// run was split into transactions.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Aftermath {
    /// One transaction for the run (the default): it was rolled back, with
    /// the revisions of the run that had run in it before.
    RunRolledBack {
        /// Revisions of this run rolled back with the failing one.
        undone: Vec<String>,
        /// The version table's rows now (as before the run, or as of the
        /// last commit before a `transactional: false` revision).
        version_table: Vec<String>,
    },
    /// A transaction per revision: this revision's was rolled back; the
    /// revisions before it in the run stay committed.
    RevisionRolledBack {
        /// The version table's rows now.
        version_table: Vec<String>,
    },
    /// A `transactional: false` revision: nothing was rolled back; the
    /// statements before the failing one stay applied.
    NotTransactional {
        /// The version table's rows now.
        version_table: Vec<String>,
    },
}

impl fmt::Display for Aftermath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = |rows: &[String]| {
            if rows.is_empty() {
                "base".to_owned()
            } else {
                rows.join(", ")
            }
        };
        match self {
            Aftermath::RunRolledBack {
                undone,
                version_table,
            } if undone.is_empty() => write!(
                f,
                "the run's transaction was rolled back: nothing of this revision is applied, and the version table is still at {}",
                at(version_table)
            ),
            Aftermath::RunRolledBack {
                undone,
                version_table,
            } => write!(
                f,
                "the run's transaction was rolled back, with the {} revision{} it had applied before ({}): none of them is applied, \
                 and the version table is still at {}",
                undone.len(),
                if undone.len() == 1 { "" } else { "s" },
                some_of(undone),
                at(version_table)
            ),
            Aftermath::RevisionRolledBack { version_table } => write!(
                f,
                "this revision's transaction was rolled back; the revisions before it in this run stay committed, and the \
                 version table is at {}",
                at(version_table)
            ),
            Aftermath::NotTransactional { version_table } => write!(
                f,
                "this revision runs outside a transaction, so nothing was rolled back: its statements before the failing one \
                 stay applied; the version table is at {} and the ledger marks the revision failed",
                at(version_table)
            ),
        }
    }
}

/// Ids for a message: all of them when they are few, else the first
/// five, `...` and the last (a run of thousands of revisions rolled
/// back is one line, not a page).
pub(crate) fn some_of(ids: &[String]) -> String {
    match ids {
        [first @ .., last] if ids.len() > 10 => format!("{}, ..., {last}", first[..5].join(", ")),
        _ => ids.join(", "),
    }
}

impl fmt::Display for SqlFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of revision {} failed at {}:{}: {}",
            self.direction.word(),
            self.revision,
            self.file.display(),
            self.line,
            self.message,
        )?;
        if let Some(code) = &self.code {
            write!(f, " (SQLSTATE {code})")?;
        }
        write!(f, "\n  statement: {}", self.statement)?;
        if let Some(d) = &self.detail {
            write!(f, "\n  detail: {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        if let Some(a) = &self.advice {
            write!(f, "\n  advice: {a}")?;
        }
        write!(f, "\n  {}", self.aftermath)
    }
}

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// A database command outside the revisions failed (locking, the
    /// version table, the ledger).
    #[error("{context}: {}", db_message(.source))]
    Database {
        /// What was being done.
        context: String,
        /// The driver's error.
        source: tokio_postgres::Error,
    },
    /// The migration lock could not be taken.
    #[error("cannot take the migration lock: {reason}")]
    Lock {
        /// Why.
        reason: String,
    },
    /// Another migrator held the lock for longer than `lock_timeout`.
    #[error(
        "another migrator held the lock of this version table for longer than the lock timeout ({}); nothing was run{}",
        humanize(*.waited),
        if holders.is_empty() { String::new() } else { format!("; held by {}", holders.join("; ")) }
    )]
    LockTimeout {
        /// How long this run waited.
        waited: std::time::Duration,
        /// Who holds the lock: pid, application, user, address, since when.
        holders: Vec<String>,
    },
    /// An identifier does not resolve.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The version table cannot record a step of the plan the way Alembic
    /// does (Alembic would fail on it too); nothing was run.
    #[error("{0}; nothing was run")]
    Step(#[from] alembic_chain::StepError),
    /// A revision's statements do not split.
    #[error("{}", .0.located())]
    Lex(Box<ParseError>),
    /// `alembic_version` names revisions that are not in the chain.
    #[error(
        "the database is at {}, which {} not in the revision chain: the database is ahead of these files, or they come from another project",
        some_of(ids),
        if ids.len() == 1 { "is" } else { "are" }
    )]
    UnknownRevisions {
        /// The unknown ids.
        ids: Vec<String>,
    },
    /// An applied revision's upgrade section changed after it ran.
    #[error(
        "revision {revision} ({}) was edited after it was applied: the database recorded {recorded}, the file now has {current}; \
         restore the file, or record the edit with `{command} accept {revision} --reason \"...\"`",
        .file.display()
    )]
    ChecksumMismatch {
        /// The command to run (`cargo alembic`, `myapp migrate`).
        command: String,
        /// The revision.
        revision: String,
        /// Its file.
        file: PathBuf,
        /// The checksum in the ledger.
        recorded: String,
        /// The file's checksum now.
        current: String,
    },
    /// A downgrade would go through a revision without a downgrade section.
    #[error("revision {revision} ({file}) has no `-- alembic:downgrade` section: it is irreversible, so nothing was downgraded")]
    Irreversible {
        /// The revision.
        revision: String,
        /// Its file.
        file: String,
    },
    /// A non-transactional revision failed half way earlier.
    #[error(
        "revision {revision} failed part way on an earlier run ({error}); its statements ran outside a transaction, so the \
         database may hold part of it. Fix the database by hand, then `{command} stamp` the revision before it (or the \
         revision itself if it is now complete), or re-run it after making its statements safe to repeat"
    )]
    FailedEarlier {
        /// The command to run (`cargo alembic`, `myapp migrate`).
        command: String,
        /// The revision.
        revision: String,
        /// What failed, as recorded.
        error: String,
    },
    /// `accept` of a revision the database does not have.
    #[error("revision {revision} is not applied to this database: there is no recorded checksum to replace")]
    NotApplied {
        /// The revision.
        revision: String,
    },
    /// `accept` of a revision whose file matches the ledger.
    #[error("revision {revision} matches its recorded checksums: nothing to accept")]
    NothingToAccept {
        /// The revision.
        revision: String,
    },
    /// A statement failed.
    #[error("{0}")]
    Sql(Box<SqlFailure>),
    /// `downgrade --sql` without a `from:to` range.
    #[error("offline downgrade needs a range `from:to`, e.g. `head:base` (given `{given}`)")]
    OfflineRange {
        /// What was given.
        given: String,
    },
    /// `stamp --sql` with ranges that start from different revisions.
    #[error("offline stamp starts from one revision at a time (given `{first}:` and `{second}:`)")]
    OfflineStampStarts {
        /// The first start given.
        first: String,
        /// Another.
        second: String,
    },
    /// The database is inside a squashed range whose replaced files were
    /// pruned: the revisions it still needs are gone.
    #[error(
        "the database is at {revision}, inside the range squash {squash} replaced, and the replaced files were pruned: \
         upgrade this database with a release that still has them (before `squash --prune {squash}`), or restore them"
    )]
    InsideSquash {
        /// The version-table row.
        revision: String,
        /// The squash that replaced it.
        squash: String,
    },
    /// The revisions a squash replaced do not form a graph.
    #[error("{0}")]
    Replaced(Box<alembic_chain::LoadError>),
    /// An embedded chain that does not form a graph (only possible for a
    /// chain not written by `embed_migrations!`).
    #[error("the embedded revision chain is broken: {reason}")]
    Embedded {
        /// The problems.
        reason: String,
    },
}

/// Exit codes of `cargo alembic` and of an embedded `migrate` command
/// (CONTRACT section 5), one name per meaning.
pub mod exit_codes {
    /// Success.
    pub const OK: u8 = 0;
    /// The operation failed or a check found problems.
    pub const FAILED: u8 = 1;
    /// Bad usage or unreadable configuration.
    pub const USAGE: u8 = 2;
}

impl EngineError {
    /// The exit code this error ends a command with: a malformed identifier
    /// or range is bad usage (2); one that names nothing, and everything
    /// the database refuses, is a failed operation (1).
    pub fn exit_code(&self) -> u8 {
        match self {
            EngineError::Resolve(ResolveError::Syntax { .. })
            | EngineError::OfflineRange { .. }
            | EngineError::OfflineStampStarts { .. } => exit_codes::USAGE,
            _ => exit_codes::FAILED,
        }
    }
}

impl crate::tls::ConnectError {
    /// The exit code: a URL that does not parse is bad usage (2); a server
    /// that cannot be reached, or refuses, is a failure (1).
    pub fn exit_code(&self) -> u8 {
        match self {
            crate::tls::ConnectError::Url(_) => exit_codes::USAGE,
            _ => exit_codes::FAILED,
        }
    }
}

/// A duration as people write it: `30s`, `1.5s`, `250ms`.
pub(crate) fn humanize(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// PostgreSQL's message and code, or the driver's message.
pub(crate) fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run of thousands of revisions rolled back says how many, and
    /// names the first few and the last, on one line.
    #[test]
    fn a_long_rollback_names_a_few_revisions_not_all() {
        let ids = |n: usize| (0..n).map(|i| format!("a{i:011x}")).collect::<Vec<_>>();
        let text = |n: usize| {
            Aftermath::RunRolledBack {
                undone: ids(n),
                version_table: Vec::new(),
            }
            .to_string()
        };
        assert!(text(3212).starts_with(
            "the run's transaction was rolled back, with the 3212 revisions it had applied before \
             (a00000000000, a00000000001, a00000000002, a00000000003, a00000000004, ..., a00000000c8b): \
             none of them is applied"
        ));
        assert!(text(3212).len() < 250, "{}", text(3212));
        assert!(text(10).contains(&ids(10).join(", ")));
    }
}
