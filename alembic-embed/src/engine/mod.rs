//! The migration engine: applies and undoes revisions on PostgreSQL and
//! keeps `alembic_version` and the ledger, for the CLI and for embedded
//! binaries alike.
//!
//! Every run that writes takes a PostgreSQL advisory lock first, then reads
//! the state, verifies applied revisions' checksums, plans, and runs.
//! Consecutive transactional revisions go to the server in one round trip:
//! their statements, version-table and ledger rows, each revision's
//! duration measured by the server. The engine is written once, `async`,
//! over [`Connection`]; the synchronous methods drive it over a
//! `postgres::Client`, the `_async` ones over a `tokio_postgres::Client`.

mod accept;
mod locate;
mod offline;
mod report;
mod run;
mod session;
mod settings;
mod stamp;
mod state;

use alembic_chain::RevisionMap;

use crate::errors::EngineError;

pub use report::{accepted_text, Accepted, Direction, Report, Step, Warning};
pub use session::Session;
pub use settings::{AheadPolicy, ChecksumPolicy, Settings};
pub use state::{Checked, Current, Drift, LedgerRow, Status};

/// Applies and undoes revisions of one chain.
pub struct Engine<'m> {
    map: &'m RevisionMap,
    settings: Settings,
}

/// Quotes an identifier when it needs it (PostgreSQL folds bare names to
/// lowercase).
pub fn quote_ident(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if bare {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A SQL string literal.
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

impl<'m> Engine<'m> {
    /// An engine for a chain.
    pub fn new(map: &'m RevisionMap, settings: Settings) -> Self {
        Engine { map, settings }
    }

    /// The chain.
    pub fn map(&self) -> &'m RevisionMap {
        self.map
    }

    /// The version table, qualified and quoted.
    pub fn version_table(&self) -> String {
        self.settings.version_table_sql()
    }

    /// The ledger table: `<version_table>_ledger` beside the version table.
    pub fn ledger_table(&self) -> String {
        self.settings.ledger_table_sql()
    }

    /// `CREATE TABLE` for the version table and the ledger.
    pub fn create_tables_sql(&self) -> String {
        self.settings.create_tables_sql()
    }

    pub(super) fn db<T>(
        context: &str,
        r: Result<T, tokio_postgres::Error>,
    ) -> Result<T, EngineError> {
        r.map_err(|source| EngineError::Database {
            context: context.to_owned(),
            source,
        })
    }

    pub(super) fn ids(&self, revs: &[usize]) -> Vec<String> {
        let mut v: Vec<String> = revs.iter().map(|&i| self.map.rev(i).id.clone()).collect();
        v.sort();
        v
    }
}
