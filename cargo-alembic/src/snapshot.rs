//! A canonical text of a database's schema, built from the catalogs in one
//! query (not `pg_dump`, whose version must match the server's): one line
//! per object, sorted, so that two snapshots compare as text.

use postgres::Client;

/// Schemas that belong to PostgreSQL.
const SYSTEM: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'";

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
            statement: client.prepare(&sql(skip_tables))?,
        })
    }

    /// Takes a snapshot.
    pub(crate) fn take(&self, client: &mut Client) -> Result<Snapshot, postgres::Error> {
        let lines = client
            .query(&self.statement, &[])?
            .iter()
            .map(|row| {
                row.get::<_, String>(0)
                    .replace('\n', " ")
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        Ok(Snapshot { lines })
    }
}

/// The query: one text line per object, sorted.
fn sql(skip_tables: &[String]) -> String {
    let skip = if skip_tables.is_empty() {
        "''".to_owned()
    } else {
        skip_tables
            .iter()
            .map(|t| format!("'{}'", t.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rel = format!("{SYSTEM} AND c.relname NOT IN ({skip}) AND c.relname NOT LIKE ALL (SELECT t || '_pkc' FROM unnest(ARRAY[{skip}]) t)");
    let sql = format!(
        "SELECT kind || ' ' || name || coalesce(': ' || def, '') FROM (
           SELECT 'table' AS kind, format('%I.%I', n.nspname, c.relname) AS name, NULL::text AS def
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND {rel}
           UNION ALL
           SELECT 'column', format('%I.%I.%I', n.nspname, c.relname, a.attname),
                  format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                  || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
                  || CASE WHEN a.attidentity <> '' THEN ' IDENTITY ' || a.attidentity::text ELSE '' END
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm') AND {rel}
           UNION ALL
           SELECT 'index', format('%I.%I', n.nspname, c.relname), pg_get_indexdef(c.oid)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_class t ON t.oid = i.indrelid
            WHERE c.relkind IN ('i', 'I') AND {SYSTEM} AND t.relname NOT IN ({skip})
           UNION ALL
           SELECT 'constraint', format('%I.%I.%I', n.nspname, c.relname, con.conname), pg_get_constraintdef(con.oid)
             FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {rel}
           UNION ALL
           SELECT 'sequence', format('%I.%I', n.nspname, c.relname), NULL
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S' AND {SYSTEM}
           UNION ALL
           SELECT 'type', format('%I.%I', n.nspname, t.typname),
                  t.typtype::text || coalesce(' ' || (SELECT string_agg(e.enumlabel, ', ' ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid), '')
             FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
            WHERE t.typtype IN ('e', 'd', 'r', 'm') AND {SYSTEM}
           UNION ALL
           SELECT 'function', format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), pg_get_functiondef(p.oid)
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind IN ('f', 'p') AND {SYSTEM}
             AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
           UNION ALL
           SELECT 'view', format('%I.%I', n.nspname, c.relname), pg_get_viewdef(c.oid)
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') AND {rel}
           UNION ALL
           SELECT 'trigger', format('%I.%I.%I', n.nspname, c.relname, t.tgname), pg_get_triggerdef(t.oid)
             FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE NOT t.tgisinternal AND {rel}
           UNION ALL
           SELECT 'grant', format('%I.%I', n.nspname, c.relname), c.relacl::text
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relacl IS NOT NULL AND {rel}
           UNION ALL
           SELECT 'schema', format('%I', n.nspname), NULL FROM pg_namespace n WHERE {SYSTEM} AND n.nspname <> 'public'
         ) objects ORDER BY 1"
    );
    sql
}

/// What is in `after` and not in `before` (`+`) and the reverse (`-`).
pub(crate) fn diff(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let old: std::collections::BTreeSet<&String> = before.lines.iter().collect();
    let new: std::collections::BTreeSet<&String> = after.lines.iter().collect();
    let mut out: Vec<String> = old.difference(&new).map(|l| format!("- {l}")).collect();
    out.extend(new.difference(&old).map(|l| format!("+ {l}")));
    out
}
