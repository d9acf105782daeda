//! Errors of the migration engine. Each names the revision and file, and,
//! for failing SQL, the line and PostgreSQL's message, SQLSTATE, detail and
//! hint.

use std::fmt;
use std::path::PathBuf;

use alembic_core::{ParseError, ResolveError};

/// A statement that PostgreSQL refused.
#[derive(Debug)]
pub struct SqlFailure {
    /// The revision.
    pub revision: String,
    /// `upgrade` or `downgrade`.
    pub direction: &'static str,
    /// Its file.
    pub file: PathBuf,
    /// The line in the file (inside the statement when PostgreSQL gives a
    /// position, else where the statement starts).
    pub line: usize,
    /// The statement's first line, for context.
    pub statement: String,
    /// PostgreSQL's message.
    pub message: String,
    /// The SQLSTATE code.
    pub code: String,
    /// PostgreSQL's detail, if any.
    pub detail: Option<String>,
    /// PostgreSQL's hint, if any.
    pub hint: Option<String>,
    /// Our advice for well-known failures.
    pub advice: Option<String>,
}

impl fmt::Display for SqlFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of revision {} failed at {}:{}: {} (SQLSTATE {})",
            self.direction,
            self.revision,
            self.file.display(),
            self.line,
            self.message,
            self.code
        )?;
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
        write!(
            f,
            "\n  the revision was rolled back; the version table is unchanged"
        )
    }
}

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
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
    /// An identifier does not resolve.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// A revision's statements do not split.
    #[error("{}", .0.located())]
    Lex(Box<ParseError>),
    /// `alembic_version` names revisions that are not in the chain.
    #[error(
        "the database is at {}, which {} not in the revision chain: the database is ahead of these files, or they come from another project",
        ids.join(", "),
        if ids.len() == 1 { "is" } else { "are" }
    )]
    UnknownRevisions {
        /// The unknown ids.
        ids: Vec<String>,
    },
    /// An applied revision's upgrade section changed after it ran.
    #[error(
        "revision {revision} ({file}) was edited after it was applied: the database recorded {recorded}, the file now has {current}; \
         restore the file, or record the edit with `cargo alembic accept {revision} --reason \"...\"`"
    )]
    ChecksumMismatch {
        /// The revision.
        revision: String,
        /// Its file.
        file: String,
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
         database may hold part of it. Fix the database by hand, then `cargo alembic stamp` the revision before it (or the \
         revision itself if it is now complete), or re-run it after making its statements safe to repeat"
    )]
    FailedEarlier {
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
    /// An embedded chain that does not form a graph (only possible for a
    /// chain not written by `embed_migrations!`).
    #[error("the embedded revision chain is broken: {reason}")]
    Embedded {
        /// The problems.
        reason: String,
    },
}

/// PostgreSQL's message and code, or the driver's message.
pub(crate) fn db_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}
