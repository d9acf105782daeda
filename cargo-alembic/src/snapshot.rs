//! A canonical text of a database's schema, built from the catalogs by
//! [`crate::catalog`] in one query (not `pg_dump`, whose version must match
//! the server's): one line per object, sorted, so that two snapshots
//! compare as text.

use postgres::Client;

use crate::catalog;

/// One line per object: `kind name: definition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) lines: Vec<String>,
}

/// The snapshot query, prepared once per connection: planning this union
/// of catalog queries costs more than running it, and a stairway takes
/// three snapshots per revision.
pub(crate) struct Snapshotter {
    statement: postgres::Statement,
}

impl Snapshotter {
    /// Prepares the query on a connection, leaving out the given tables
    /// (the version table and the ledger, which change on purpose).
    pub(crate) fn prepare(
        client: &mut Client,
        skip_tables: &[String],
    ) -> Result<Snapshotter, postgres::Error> {
        Ok(Snapshotter {
            statement: client.prepare(&catalog::snapshot_sql(skip_tables))?,
        })
    }

    /// Takes a snapshot.
    pub(crate) fn take(&self, client: &mut Client) -> Result<Snapshot, postgres::Error> {
        let lines = client
            .query(&self.statement, &[])?
            .iter()
            .map(catalog::row_line)
            .collect();
        Ok(Snapshot { lines })
    }
}

/// What is in `after` and not in `before` (`+`) and the reverse (`-`).
pub(crate) fn diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    diff_lines(&before.lines, &after.lines)
}

/// [`diff`] of two lists of catalog lines.
pub(crate) fn diff_lines(before: &[String], after: &[String]) -> Vec<String> {
    let old: std::collections::BTreeSet<&String> = before.iter().collect();
    let new: std::collections::BTreeSet<&String> = after.iter().collect();
    let mut out: Vec<String> = old.difference(&new).map(|l| format!("- {l}")).collect();
    out.extend(new.difference(&old).map(|l| format!("+ {l}")));
    out
}
