//! How the engine names and creates its tables, finds its lock, and
//! what it does when the database is not what the chain expects.

use std::time::Duration;

use super::{quote_ident, quote_literal};

/// How the engine names its tables and runs its transactions.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The version table (`alembic_version`).
    pub version_table: String,
    /// Its schema (`None`: the search path).
    pub version_table_schema: Option<String>,
    /// Commit each revision on its own instead of one transaction per run.
    pub transaction_per_migration: bool,
    /// Recorded in the ledger, e.g. `cargo-alembic 0.1.0`.
    pub tool: String,
    /// What an upgrade does when an applied revision's upgrade section
    /// changed since it ran.
    pub checksum_mismatch: ChecksumPolicy,
    /// What an upgrade does when the version table names revisions the
    /// chain does not have.
    pub database_ahead: AheadPolicy,
    /// How long to wait for another migrator's lock (`None`: as long as it
    /// takes).
    pub lock_timeout: Option<Duration>,
    /// `SET lock_timeout` while revisions run, so that a statement never
    /// queues behind a long transaction for longer than this while every
    /// query on its table queues behind it.
    pub statement_lock_timeout: Option<Duration>,
    /// Recorded with each revision a run applies (`--tag`).
    pub tag: Option<String>,
    /// How messages name the command to run (`cargo alembic`, or an
    /// embedding binary's `myapp migrate`): `<command> accept ...`.
    pub command: String,
    /// A tenant schema: revisions run with `search_path` set to it (then
    /// `public`), so that a chain written without schema names serves every
    /// tenant; the connection's own `search_path` is restored afterwards.
    pub search_path: Option<String>,
}

/// What an upgrade does when an applied revision was edited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChecksumPolicy {
    /// Stop before any SQL runs, naming the revision and both checksums.
    #[default]
    Refuse,
    /// Carry on, with the same message as a warning in the report (and the
    /// log).
    Warn,
}

/// What an upgrade does when the database has revisions the chain does not
/// know, typically after a binary was rolled back to an older release.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AheadPolicy {
    /// Stop with an error naming the unknown revisions.
    #[default]
    Refuse,
    /// Run nothing and report a warning: the database is left as it is.
    Allow,
}

impl Settings {
    pub(super) fn qualified(&self, table: &str) -> String {
        match &self.version_table_schema {
            Some(schema) => format!("{}.{}", quote_ident(schema), quote_ident(table)),
            None => quote_ident(table),
        }
    }

    /// The version table, qualified and quoted.
    pub fn version_table_sql(&self) -> String {
        self.qualified(&self.version_table)
    }

    /// The ledger table, `<version_table>_ledger` beside the version table.
    pub fn ledger_table_sql(&self) -> String {
        self.qualified(&format!("{}_ledger", self.version_table))
    }

    /// The advisory-lock key of this version table, as a SQL expression the
    /// server evaluates: a hash of `alembic:<schema>.<table>` where the
    /// schema is the one the table is (or will be created) in, whatever
    /// spelling configured it: the configured schema, else the schema where
    /// the search path finds the table, else `current_schema()`. So a
    /// migrator configured with `version_table_schema = "public"` and one
    /// with no schema take the same lock on the same table.
    pub fn lock_key_sql(&self) -> String {
        let table = quote_literal(&self.version_table);
        let schema = match &self.version_table_schema {
            Some(schema) => quote_literal(schema),
            // The schema of the relation the search path finds, from the
            // system caches (`pg_identify_object` of `to_regclass`, whose
            // schema is quoted: `parse_ident` takes the quotes off), else
            // where it will be created. The same key as the first release's
            // walk over `current_schemas(false)`, which a fresh backend took
            // 0.4 ms longer to plan; it differs only for a temporary table
            // of the same name, which the unqualified reads of the run would
            // use, and which this key now locks.
            None => format!(
                "COALESCE((pg_catalog.parse_ident((pg_catalog.pg_identify_object('pg_catalog.pg_class'::pg_catalog.regclass, \
                 pg_catalog.to_regclass({}), 0)).schema))[1], pg_catalog.current_schema())",
                quote_literal(&quote_ident(&self.version_table))
            ),
        };
        // `concat`, not `||`: no operator to resolve on a fresh backend, and
        // a missing schema is the empty string, as before.
        format!(
            "pg_catalog.hashtextextended(pg_catalog.concat('alembic:', {schema}, '.', {table}), 0)"
        )
    }

    /// `CREATE TABLE` for the version table, as Alembic creates it, and for
    /// the ledger: exactly two statements.
    pub fn create_tables_sql(&self) -> String {
        format!(
            "{}\n{}",
            self.create_version_table_sql(),
            self.create_ledger_sql()
        )
    }

    fn create_version_table_sql(&self) -> String {
        let pk = quote_ident(&format!("{}_pkc", self.version_table));
        format!(
            "CREATE TABLE IF NOT EXISTS {v} (\n    version_num VARCHAR(32) NOT NULL,\n    CONSTRAINT {pk} PRIMARY KEY (version_num)\n);\n",
            v = self.version_table_sql()
        )
    }

    fn create_ledger_sql(&self) -> String {
        format!(
            "CREATE TABLE IF NOT EXISTS {l} (\n    revision VARCHAR(32) NOT NULL PRIMARY KEY,\n    upgrade_checksum TEXT NOT NULL,\n    \
             downgrade_checksum TEXT,\n    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n    duration_ms DOUBLE PRECISION,\n    \
             tool TEXT NOT NULL,\n    status TEXT NOT NULL DEFAULT 'applied',\n    error TEXT,\n    \
             accepted JSONB NOT NULL DEFAULT '[]'::jsonb,\n    tag TEXT\n);\n",
            l = self.ledger_table_sql()
        )
    }

    /// What the lock query also reports, after the key and whether the lock
    /// was taken: whether the version table and the ledger exist, and, for a
    /// run that records a tag, whether the ledger has the `tag` column (a
    /// catalog query, left out otherwise).
    pub(super) fn tables_probe_sql(&self) -> String {
        let (v, l) = (
            quote_literal(&self.version_table_sql()),
            quote_literal(&self.ledger_table_sql()),
        );
        let tag = if self.tag.is_some() {
            format!(
                "EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass({l}) \
                 AND attname = 'tag' AND NOT attisdropped)"
            )
        } else {
            "true".to_owned()
        };
        format!(
            "pg_catalog.to_regclass({v}) IS NOT NULL, pg_catalog.to_regclass({l}) IS NOT NULL, {tag}"
        )
    }

    /// Creates what the probe found missing, and only that: `CREATE TABLE
    /// IF NOT EXISTS` needs the CREATE privilege even when the table exists,
    /// and the usual application role has none. (`IF NOT EXISTS` still, in
    /// case another migrator made them since.) A ledger made by an earlier
    /// version gets the `tag` column when a run records a tag. Plain
    /// statements, no `DO` block: a
    /// fresh backend would load and compile PL/pgSQL for it on every run.
    pub(super) fn ensure_tables_sql(&self, found: TablesFound) -> Vec<String> {
        let mut sql = Vec::new();
        if !found.version_table {
            sql.push(self.create_version_table_sql());
        }
        if !found.ledger {
            sql.push(self.create_ledger_sql());
        } else if !found.tag {
            sql.push(format!(
                "ALTER TABLE {} ADD COLUMN IF NOT EXISTS tag TEXT;\n",
                self.ledger_table_sql()
            ));
        }
        sql
    }
}

/// Which of the engine's tables exist, as the lock query found them.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct TablesFound {
    pub(super) version_table: bool,
    pub(super) ledger: bool,
    pub(super) tag: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            version_table: "alembic_version".into(),
            version_table_schema: None,
            transaction_per_migration: false,
            tool: format!("alembic-embed {}", env!("CARGO_PKG_VERSION")),
            checksum_mismatch: ChecksumPolicy::Refuse,
            database_ahead: AheadPolicy::Refuse,
            lock_timeout: None,
            statement_lock_timeout: None,
            tag: None,
            command: "cargo alembic".to_owned(),
            search_path: None,
        }
    }
}
