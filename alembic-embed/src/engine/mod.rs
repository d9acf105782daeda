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
#[derive(Clone)]
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

    /// The engine for a database whose version table holds `rows`: this
    /// one, or one on the chain before its squashes when a row is a
    /// revision a squash replaced (the database is inside a squashed
    /// range and the replaced revisions run for it, as before the squash).
    pub fn for_rows(&self, rows: &[String]) -> Result<Engine<'m>, EngineError> {
        Ok(match self.expanded_for(rows)? {
            Some(map) => self.on(map),
            None => self.clone(),
        })
    }

    /// The chain before the squashes when a row is a revision a squash
    /// replaced; `None` when this chain serves the rows (always, without a
    /// squash: one set lookup per row).
    fn expanded_for(&self, rows: &[String]) -> Result<Option<&'m RevisionMap>, EngineError> {
        let inside =
            |map: &RevisionMap, r: &String| self.map.is_replaced(r) && map.state_index(r).is_none();
        if !rows.iter().any(|r| inside(self.map, r)) {
            return Ok(None);
        }
        let map = self
            .map
            .expanded()
            .map_err(|e| EngineError::Replaced(Box::new(e)))?;
        if let Some(r) = rows.iter().find(|r| inside(map, r)) {
            return Err(EngineError::InsideSquash {
                revision: r.clone(),
                squash: self
                    .map
                    .replaced_by(r)
                    .map_or_else(String::new, |s| s.id.clone()),
            });
        }
        Ok(Some(map))
    }

    /// This engine's settings on another chain.
    fn on(&self, map: &'m RevisionMap) -> Engine<'m> {
        Engine {
            map,
            settings: self.settings.clone(),
        }
    }

    /// The engine on the chain before its squashes, when there is one
    /// (a target named a replaced revision).
    pub fn expanded(&self) -> Option<Engine<'m>> {
        let map = self.map.expanded().ok()?;
        (!std::ptr::eq(map, self.map)).then(|| self.on(map))
    }

    /// The engine `current` was read with ([`Engine::for_rows`]; this one
    /// when the replaced files are gone): its indexes are into that
    /// engine's chain.
    pub fn view(&self, current: &Current) -> Engine<'m> {
        self.view_rows(&current.heads)
    }

    pub(super) fn view_rows(&self, rows: &[String]) -> Engine<'m> {
        self.for_rows(rows).unwrap_or_else(|_| self.clone())
    }

    /// The view of `current` when it is not this engine's chain.
    pub(super) fn other_view(&self, current: &Current) -> Option<Engine<'m>> {
        match self.expanded_for(&current.heads) {
            Ok(Some(map)) => Some(self.on(map)),
            _ => None,
        }
    }

    pub(super) fn ids(&self, revs: &[usize]) -> Vec<String> {
        let mut v: Vec<String> = revs.iter().map(|&i| self.map.rev(i).id.clone()).collect();
        v.sort();
        v
    }
}
