//! The one reader of PostgreSQL's catalogs (13 to 17): every user object of
//! a database as `kind name: definition`, where the definition is what
//! PostgreSQL itself prints for it (`pg_get_indexdef`, `pg_get_constraintdef`,
//! `pg_get_functiondef`, ...) or, for a column, a sequence or a type, the
//! clause that would create it; with the object's table, its own name, and
//! its parts as JSON for whatever compares two schemas. One query, so that
//! `verify` takes a snapshot in one round trip; objects that belong to an
//! extension are the extension's, listed once as the extension.
//!
//! `verify`'s schema snapshots are built on it, and so is autogenerate.

use std::collections::BTreeMap;

use serde_json::Value;

/// Schemas that belong to PostgreSQL.
const SYSTEM: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

/// Not part of an extension, nor made by PostgreSQL for another object
/// (a range type's constructors, an identity column's sequence). A
/// partitioned table depends internally on its own key columns: that one
/// is no owner.
fn own(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT FROM pg_depend x WHERE x.classid = '{catalog}'::regclass AND x.objid = {oid} AND x.deptype IN ('e', 'i') \
         AND NOT (x.refclassid = x.classid AND x.refobjid = x.objid))"
    )
}

/// One user object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Object {
    /// `table`, `column`, `constraint`, `index`, `view`, `materialized
    /// view`, `sequence`, `type`, `function`, `procedure`, `trigger`,
    /// `policy`, `grant`, `comment`, `schema` or `extension`.
    pub(crate) kind: String,
    /// The qualified, quoted name (`app.users`, `app.users.email`); for a
    /// grant or a comment, what `GRANT ... ON` or `COMMENT ON` names
    /// (`TABLE app.users`, `COLUMN app.users.email`).
    pub(crate) name: String,
    /// The definition.
    pub(crate) def: Option<String>,
    /// The table of a column, constraint, index, trigger or policy.
    pub(crate) parent: Option<String>,
    /// The object's own quoted name (a column's, a constraint's, ...).
    pub(crate) local: Option<String>,
    /// Its parts (a column's type, default and so on), for the differ.
    pub(crate) attrs: Value,
}

impl Object {
    /// `kind name: definition`, whitespace collapsed: one line.
    pub(crate) fn line(&self) -> String {
        line(&self.kind, &self.name, self.def.as_deref())
    }

    /// A text part of [`Object::attrs`].
    pub(crate) fn text(&self, key: &str) -> Option<&str> {
        self.attrs.get(key).and_then(Value::as_str)
    }

    /// A true/false part of [`Object::attrs`].
    pub(crate) fn flag(&self, key: &str) -> bool {
        self.attrs
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// A list-of-text part of [`Object::attrs`].
    pub(crate) fn list(&self, key: &str) -> Vec<String> {
        self.attrs
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A database's user objects by kind and name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Catalog {
    pub(crate) objects: BTreeMap<(String, String), Object>,
}

impl Catalog {
    /// Reads every user object, leaving out the tables named in
    /// `skip_tables` (a version table and its ledger) with everything on
    /// them.
    pub(crate) fn read(
        client: &mut postgres::Client,
        skip_tables: &[String],
    ) -> Result<Catalog, postgres::Error> {
        let rows = client.query(&sql(skip_tables), &[])?;
        Ok(Catalog::from_rows(&rows))
    }

    /// The catalog of [`sql`]'s rows.
    pub(crate) fn from_rows(rows: &[postgres::Row]) -> Catalog {
        let objects = rows
            .iter()
            .map(object)
            .map(|o| ((o.kind.clone(), o.name.clone()), o))
            .collect();
        Catalog { objects }
    }

    /// The object of this kind and name.
    pub(crate) fn get(&self, kind: &str, name: &str) -> Option<&Object> {
        self.objects.get(&(kind.to_owned(), name.to_owned()))
    }

    /// The objects of one kind.
    pub(crate) fn of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Object> + 'a {
        self.objects.values().filter(move |o| o.kind == kind)
    }

    /// One line per object, sorted: what two snapshots compare.
    pub(crate) fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.objects.values().map(Object::line).collect();
        lines.sort();
        lines
    }
}

/// One row of [`sql`] as its [`Object::line`], read from the row without
/// building the object (a snapshot needs only the line).
pub(crate) fn row_line(row: &postgres::Row) -> String {
    line(row.get(0), row.get(1), row.get(2))
}

/// `kind name: definition` with every run of whitespace made one space and
/// none at either end: `split_whitespace` joined with spaces, in one pass
/// without the pieces (a `verify` of 100 revisions collapses the lines of
/// 202 snapshots, function bodies included).
fn line(kind: &str, name: &str, def: Option<&str>) -> String {
    let mut out =
        String::with_capacity(kind.len() + name.len() + def.map_or(0, |d| d.len() + 2) + 1);
    let mut space = false;
    collapse_into(&mut out, kind, &mut space);
    space = true;
    collapse_into(&mut out, name, &mut space);
    if let Some(def) = def {
        collapse_into(&mut out, ":", &mut space);
        space = true;
        collapse_into(&mut out, def, &mut space);
    }
    out
}

/// Appends `text` to `out` with whitespace (Unicode's, as
/// [`char::is_whitespace`]) collapsed; `space` carries a pending separator
/// across calls and is written only before something that follows it.
fn collapse_into(out: &mut String, text: &str, space: &mut bool) {
    // Each run of characters that are not whitespace is copied at once.
    let mut flush = |run: &str, space: &mut bool| {
        if !run.is_empty() {
            if *space && !out.is_empty() {
                out.push(' ');
            }
            *space = false;
            out.push_str(run);
        }
    };
    let (mut i, mut run) = (0, 0);
    while i < text.len() {
        let (white, len) = char_at(text, i);
        if white {
            flush(&text[run..i], space);
            *space = true;
            run = i + len;
        }
        i += len;
    }
    flush(&text[run..], space);
}

/// Whether the character at byte `i` (a character boundary) is whitespace,
/// and its length; ASCII without decoding (the vertical tab counts, as in
/// [`char::is_whitespace`] and unlike [`u8::is_ascii_whitespace`]).
#[inline]
fn char_at(text: &str, i: usize) -> (bool, usize) {
    let b = text.as_bytes()[i];
    if b < 0x80 {
        return (matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c), 1);
    }
    let c = text[i..].chars().next().unwrap_or('x');
    (c.is_whitespace(), c.len_utf8())
}

/// One row of [`sql`] as an object.
pub(crate) fn object(row: &postgres::Row) -> Object {
    let attrs: Option<String> = row.get(5);
    Object {
        kind: row.get(0),
        name: row.get(1),
        def: row.get(2),
        parent: row.get(3),
        local: row.get(4),
        attrs: attrs
            .and_then(|a| serde_json::from_str(&a).ok())
            .unwrap_or(Value::Null),
    }
}

/// The snapshot's query: [`sql`] without the parts (`attrs` is NULL), which
/// only the differ reads and which cost as much again to compute.
pub(crate) fn snapshot_sql(skip_tables: &[String]) -> String {
    without_parts(&sql(skip_tables))
}

/// Replaces each `jsonb_build_object(...)` (the parts) with `NULL::jsonb`,
/// minding quoted text.
fn without_parts(sql: &str) -> String {
    const PARTS: &str = "jsonb_build_object(";
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(at) = rest.find(PARTS) {
        out.push_str(&rest[..at]);
        let (mut depth, mut quoted, mut end) = (0usize, false, rest.len());
        for (i, c) in rest[at + PARTS.len() - 1..].char_indices() {
            match c {
                '\'' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => {
                    depth -= 1;
                    if depth == 0 {
                        end = at + PARTS.len() - 1 + i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.push_str("NULL::jsonb");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The catalog query: `(kind, name, def, parent, local, attrs)` rows,
/// sorted.
pub(crate) fn sql(skip_tables: &[String]) -> String {
    let skip = if skip_tables.is_empty() {
        "''".to_owned()
    } else {
        skip_tables
            .iter()
            .map(|t| format!("'{}'", t.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let rel = format!(
        "{SYSTEM} AND c.relname NOT IN ({skip}) AND c.relname NOT LIKE ALL (SELECT t || '_pkc' FROM unnest(ARRAY[{skip}]) t) AND {}",
        own("pg_class", "c.oid")
    );
    let parts = [
        relations(&rel),
        columns(&rel),
        constraints_and_indexes(&rel, &skip),
        types(),
        routines(),
        table_extras(&rel),
        others(),
    ];
    format!(
        "SELECT kind, name, def, parent, local, attrs::text FROM ({}) objects ORDER BY 1, 2, 3",
        parts.join("\nUNION ALL\n")
    )
}

/// Tables (with partitioning and row security), views, materialized
/// views (with the relations and columns they read) and sequences.
fn relations(rel: &str) -> String {
    format!(
        "SELECT 'table'::text AS kind, format('%I.%I', n.nspname, c.relname) AS name,
                nullif(concat_ws(' ',
                  CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED' END,
                  CASE WHEN c.relispartition THEN 'PARTITION OF ' || p.parent || ' ' || pg_get_expr(c.relpartbound, c.oid) END,
                  CASE WHEN c.relkind = 'p' THEN 'PARTITION BY ' || pg_get_partkeydef(c.oid) END,
                  CASE WHEN c.relrowsecurity THEN 'ROW LEVEL SECURITY' END,
                  CASE WHEN c.relforcerowsecurity THEN 'FORCE ROW LEVEL SECURITY' END), '') AS def,
                NULL::text AS parent, quote_ident(c.relname) AS local,
                jsonb_build_object('unlogged', c.relpersistence = 'u', 'partition_of', p.parent,
                  'bound', CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
                  'partition_by', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
                  'rls', c.relrowsecurity, 'force_rls', c.relforcerowsecurity) AS attrs
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN LATERAL (SELECT format('%I.%I', pn.nspname, pc.relname) AS parent FROM pg_inherits i
                                JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                               WHERE i.inhrelid = c.oid AND c.relispartition) p ON true
          WHERE c.relkind IN ('r', 'p') AND {rel}
         UNION ALL
         SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END, format('%I.%I', n.nspname, c.relname),
                pg_get_viewdef(c.oid), NULL, quote_ident(c.relname),
                jsonb_build_object(
                  'reads', (SELECT coalesce(jsonb_agg(DISTINCT format('%I.%I', dn.nspname, dc.relname)), '[]')
                              FROM pg_rewrite rw JOIN pg_depend dd ON dd.classid = 'pg_rewrite'::regclass AND dd.objid = rw.oid
                              JOIN pg_class dc ON dc.oid = dd.refobjid AND dd.refclassid = 'pg_class'::regclass
                              JOIN pg_namespace dn ON dn.oid = dc.relnamespace
                             WHERE rw.ev_class = c.oid AND dd.refobjid <> c.oid),
                  'columns', (SELECT coalesce(jsonb_agg(DISTINCT format('%I.%I.%I', dn.nspname, dc.relname, da.attname)), '[]')
                              FROM pg_rewrite rw JOIN pg_depend dd ON dd.classid = 'pg_rewrite'::regclass AND dd.objid = rw.oid
                              JOIN pg_class dc ON dc.oid = dd.refobjid AND dd.refclassid = 'pg_class'::regclass
                              JOIN pg_namespace dn ON dn.oid = dc.relnamespace
                              JOIN pg_attribute da ON da.attrelid = dc.oid AND da.attnum = dd.refobjsubid
                             WHERE rw.ev_class = c.oid AND dd.refobjid <> c.oid AND dd.refobjsubid > 0),
                  'calls', (SELECT coalesce(jsonb_agg(DISTINCT format('%I.%I(%s)', pn.nspname, p.proname, pg_get_function_identity_arguments(p.oid))), '[]')
                              FROM pg_rewrite rw JOIN pg_depend dd ON dd.classid = 'pg_rewrite'::regclass AND dd.objid = rw.oid
                              JOIN pg_proc p ON p.oid = dd.refobjid AND dd.refclassid = 'pg_proc'::regclass
                              JOIN pg_namespace pn ON pn.oid = p.pronamespace
                             WHERE rw.ev_class = c.oid))
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') AND {rel}
         UNION ALL
         SELECT 'sequence', format('%I.%I', n.nspname, c.relname),
                format('AS %s INCREMENT %s MINVALUE %s MAXVALUE %s START %s CACHE %s%s%s', format_type(s.seqtypid, NULL),
                       s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache, CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END,
                       ' OWNED BY ' || o.owner),
                NULL, quote_ident(c.relname),
                jsonb_build_object('options', format('AS %s INCREMENT %s MINVALUE %s MAXVALUE %s START %s CACHE %s%s',
                       format_type(s.seqtypid, NULL), s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache,
                       CASE WHEN s.seqcycle THEN ' CYCLE' ELSE ' NO CYCLE' END), 'owned_by', o.owner)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_sequence s ON s.seqrelid = c.oid
           LEFT JOIN LATERAL (SELECT format('%I.%I.%I', tn.nspname, t.relname, a.attname) AS owner
                          FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
                          JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
                           AND d.deptype = 'a') o ON true
          WHERE c.relkind = 'S' AND {rel}"
    )
}

/// Columns of tables, views and materialized views: type, collation when
/// not the type's, NOT NULL, default, identity, generated expression.
fn columns(rel: &str) -> String {
    format!(
        "SELECT 'column', format('%I.%I.%I', n.nspname, c.relname, a.attname),
                format_type(a.atttypid, a.atttypmod) || coalesce(' COLLATE ' || co.name, '')
                || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                || CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED'
                        ELSE coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '') END
                || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY' WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END,
                format('%I.%I', n.nspname, c.relname), quote_ident(a.attname),
                jsonb_build_object('type', format_type(a.atttypid, a.atttypmod), 'collation', co.name,
                  'not_null', a.attnotnull, 'position', a.attnum, 'inherited', NOT a.attislocal,
                  'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
                  'generated', CASE WHEN a.attgenerated = 's' THEN pg_get_expr(d.adbin, d.adrelid) END,
                  'identity', CASE a.attidentity WHEN 'a' THEN 'ALWAYS' WHEN 'd' THEN 'BY DEFAULT' END,
                  'relkind', c.relkind)
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_type t ON t.oid = a.atttypid
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           LEFT JOIN LATERAL (SELECT format('%I.%I', cn.nspname, col.collname) AS name FROM pg_collation col
                                JOIN pg_namespace cn ON cn.oid = col.collnamespace
                               WHERE col.oid = a.attcollation AND a.attcollation <> t.typcollation AND a.attcollation <> 0) co ON true
          WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm') AND {rel}"
    )
}

/// Constraints of tables (`pg_get_constraintdef` says NOT VALID,
/// DEFERRABLE and a foreign key's actions) and indexes (whether one is a
/// constraint's).
fn constraints_and_indexes(rel: &str, skip: &str) -> String {
    format!(
        "SELECT 'constraint', format('%I.%I.%I', n.nspname, c.relname, con.conname), pg_get_constraintdef(con.oid),
                format('%I.%I', n.nspname, c.relname), quote_ident(con.conname),
                jsonb_build_object('type', con.contype, 'inherited', NOT con.conislocal)
           FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {rel}
         UNION ALL
         SELECT 'index', format('%I.%I', n.nspname, c.relname), pg_get_indexdef(c.oid),
                format('%I.%I', tn.nspname, t.relname), quote_ident(c.relname),
                jsonb_build_object('constraint', EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = c.oid AND k.contype IN ('p', 'u', 'x')),
                                   'partition_child', EXISTS (SELECT FROM pg_inherits h WHERE h.inhrelid = c.oid))
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_class t ON t.oid = i.indrelid
           JOIN pg_namespace tn ON tn.oid = t.relnamespace
          WHERE c.relkind IN ('i', 'I') AND {SYSTEM} AND t.relname NOT IN ({skip}) AND {}",
        own("pg_class", "t.oid")
    )
}

/// Enum types (labels in order), domains (base type, NOT NULL, default,
/// constraints), composite types (attributes) and range types.
fn types() -> String {
    format!(
        "SELECT 'type', format('%I.%I', n.nspname, t.typname),
                CASE t.typtype
                  WHEN 'e' THEN 'ENUM (' || (SELECT string_agg(quote_literal(e.enumlabel), ', ' ORDER BY e.enumsortorder)
                                             FROM pg_enum e WHERE e.enumtypid = t.oid) || ')'
                  WHEN 'd' THEN 'DOMAIN ' || format_type(t.typbasetype, t.typtypmod)
                                || CASE WHEN t.typnotnull THEN ' NOT NULL' ELSE '' END
                                || coalesce(' DEFAULT ' || t.typdefault, '')
                                || coalesce((SELECT string_agg(format(' CONSTRAINT %I %s', dc.conname, pg_get_constraintdef(dc.oid)), '' ORDER BY dc.conname)
                                               FROM pg_constraint dc WHERE dc.contypid = t.oid), '')
                  WHEN 'c' THEN 'AS (' || (SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
                                           FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) || ')'
                  WHEN 'r' THEN 'RANGE (SUBTYPE = ' || (SELECT format_type(r.rngsubtype, NULL) FROM pg_range r WHERE r.rngtypid = t.oid) || ')'
                END,
                NULL, quote_ident(t.typname),
                jsonb_build_object('type', t.typtype,
                  'labels', (SELECT jsonb_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum e WHERE e.enumtypid = t.oid))
           FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
          WHERE (t.typtype IN ('e', 'd', 'r')
                 OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c'))
            AND {SYSTEM} AND {}",
        own("pg_type", "t.oid")
    )
}

/// Functions and procedures, with their privileges.
fn routines() -> String {
    format!(
        "SELECT CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
                format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), pg_get_functiondef(p.oid),
                NULL, quote_ident(p.proname), jsonb_build_object('result', pg_get_function_result(p.oid),
                  'rowtypes', (SELECT coalesce(jsonb_agg(DISTINCT format('%I.%I', rn.nspname, r.relname)), '[]')
                                 FROM pg_depend d JOIN pg_type ty ON ty.oid = d.refobjid AND d.refclassid = 'pg_type'::regclass
                                 JOIN pg_class r ON r.oid = ty.typrelid JOIN pg_namespace rn ON rn.oid = r.relnamespace
                                WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND r.relkind <> 'c'))
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind IN ('f', 'p') AND {SYSTEM} AND {own}
         UNION ALL
         SELECT 'grant', format('%s %I.%I(%s)', CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
                                n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
                p.proacl::text, NULL, NULL, jsonb_build_object('acl', to_jsonb(p.proacl::text[]), 'owner', pg_get_userbyid(p.proowner))
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE p.prokind IN ('f', 'p') AND p.proacl IS NOT NULL AND {SYSTEM} AND {own} AND NOT {default}",
        own = own("pg_proc", "p.oid"),
        default = default_acl("p.proacl", "'f'", "p.proowner")
    )
}

/// `TABLE`, `VIEW`, `SEQUENCE`, ... for a relation kind.
const REL_WORD: &str = "CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' \
                        WHEN 'i' THEN 'INDEX' WHEN 'I' THEN 'INDEX' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END";

/// What hangs on a table: triggers, row-level-security policies, grants
/// and comments (on the relation and on its columns).
fn table_extras(rel: &str) -> String {
    format!(
        "SELECT 'trigger', format('%I.%I.%I', n.nspname, c.relname, t.tgname), pg_get_triggerdef(t.oid),
                format('%I.%I', n.nspname, c.relname), quote_ident(t.tgname), NULL::jsonb
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE NOT t.tgisinternal AND t.tgparentid = 0 AND {rel}
         UNION ALL
         SELECT 'policy', format('%I.%I.%I', n.nspname, c.relname, p.polname),
                concat_ws(' ', CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                          'FOR ' || CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                                  WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                          'TO ' || (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', ' ORDER BY 1)
                                      FROM unnest(p.polroles) r),
                          'USING (' || pg_get_expr(p.polqual, p.polrelid) || ')',
                          'WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')'),
                format('%I.%I', n.nspname, c.relname), quote_ident(p.polname), NULL
           FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {rel}
         UNION ALL
         SELECT 'grant', format('%s %I.%I', CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, n.nspname, c.relname),
                c.relacl::text,
                format('%I.%I', n.nspname, c.relname), NULL,
                jsonb_build_object('acl', to_jsonb(c.relacl::text[]), 'owner', pg_get_userbyid(c.relowner))
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relacl IS NOT NULL AND {rel} AND NOT {}
         UNION ALL
         SELECT 'comment', CASE WHEN d.objsubid = 0 THEN format('%s %I.%I', {REL_WORD}, n.nspname, c.relname)
                                ELSE format('COLUMN %I.%I.%I', n.nspname, c.relname, a.attname) END, d.description,
                format('%I.%I', n.nspname, c.relname), NULL, NULL
           FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
           JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
          WHERE {rel}",
        default_acl("c.relacl", "CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END", "c.relowner")
    )
}

/// Whether an ACL is the default for its kind of object (`acldefault`), in
/// any order: as good as none.
fn default_acl(acl: &str, kind: &str, owner: &str) -> String {
    format!("({acl} @> acldefault(({kind})::\"char\", {owner}) AND {acl} <@ acldefault(({kind})::\"char\", {owner}))")
}

/// Schemas (with their privileges and comments) and extensions.
fn others() -> String {
    format!(
        "SELECT 'schema', format('%I', n.nspname), NULL, NULL, NULL, NULL FROM pg_namespace n WHERE {SYSTEM} AND n.nspname <> 'public' AND {own}
         UNION ALL
         SELECT 'grant', format('SCHEMA %I', n.nspname), n.nspacl::text, NULL, NULL,
                jsonb_build_object('acl', to_jsonb(n.nspacl::text[]), 'owner', pg_get_userbyid(n.nspowner))
           FROM pg_namespace n WHERE {SYSTEM} AND n.nspname <> 'public' AND n.nspacl IS NOT NULL AND {own} AND NOT {default}
         UNION ALL
         SELECT 'comment', format('SCHEMA %I', n.nspname), d.description, NULL, NULL, NULL FROM pg_namespace n
           JOIN pg_description d ON d.objoid = n.oid AND d.classoid = 'pg_namespace'::regclass
          WHERE {SYSTEM} AND n.nspname <> 'public'
         UNION ALL
         SELECT 'extension', format('%I', e.extname), format('SCHEMA %I VERSION %s', n.nspname, quote_literal(e.extversion)),
                NULL, NULL, jsonb_build_object('schema', quote_ident(n.nspname), 'version', e.extversion)
           FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'",
        own = own("pg_namespace", "n.oid"),
        default = default_acl("n.nspacl", "'n'", "n.nspowner")
    )
}

#[cfg(test)]
mod tests {
    use crate::snapshot::Snapshotter;

    /// What a line was before it was built in one pass: the text formatted,
    /// then `split_whitespace` joined with spaces.
    fn line_as_before(kind: &str, name: &str, def: Option<&str>) -> String {
        let text = match def {
            Some(def) => format!("{kind} {name}: {def}"),
            None => format!("{kind} {name}"),
        };
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn a_line_collapses_whitespace_exactly_as_split_whitespace_and_join() {
        // Unicode's whitespace (vertical tab, no-break space, line
        // separator, ideographic space) and characters that are not
        // (zero-width space, é, a multi-byte letter), at either end,
        // doubled, and in each of the three parts.
        let alphabet = [
            "a", "b", " ", "\t", "\n", "\r", "\u{b}", "\u{c}", "\u{85}", "\u{a0}", "\u{2028}",
            "\u{3000}", "\u{200b}", "é", "中", ":", "\"",
        ];
        // A fixed xorshift sequence: the same cases on every run.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut cases = vec![
            ("", "", None),
            ("", "", Some(String::new())),
            ("table", "app.t", Some("  CREATE TABLE\n\tx  ".to_owned())),
            ("column", "\"a \" ", Some(" text ".to_owned())),
            (" ", " ", Some(" ".to_owned())),
        ]
        .into_iter()
        .map(|(k, n, d)| (k.to_owned(), n.to_owned(), d))
        .collect::<Vec<_>>();
        for _ in 0..5000 {
            let mut text = |max: usize| -> String {
                let len = next(max);
                (0..len).map(|_| alphabet[next(alphabet.len())]).collect()
            };
            let (k, n) = (text(4), text(6));
            let d = text(24);
            let d = (!d.starts_with('a')).then_some(d);
            cases.push((k, n, d));
        }
        for (kind, name, def) in &cases {
            assert_eq!(
                super::line(kind, name, def.as_deref()),
                line_as_before(kind, name, def.as_deref()),
                "{kind:?} {name:?} {def:?}"
            );
        }
    }

    #[test]
    fn a_snapshot_query_leaves_the_parts_out() {
        assert_eq!(
            super::without_parts(
                "SELECT a, jsonb_build_object('x(', f(b), 'y', ')') AS attrs FROM t"
            ),
            "SELECT a, NULL::jsonb AS attrs FROM t"
        );
        let sql = super::snapshot_sql(&[]);
        assert!(!sql.contains("jsonb_build_object") && sql.contains("NULL::jsonb"));
    }

    /// Every kind the reader knows, on a real server, as the lines a
    /// snapshot holds.
    #[test]
    fn every_object_kind_is_read_from_the_catalogs() {
        let server = alembic_throwaway::Server::start(alembic_throwaway::Choice::Local).unwrap();
        let db = server.database().unwrap();
        let mut client = db.connect().unwrap();
        client
            .batch_execute(
                "CREATE SCHEMA app; COMMENT ON SCHEMA app IS 'the app';
                 CREATE EXTENSION hstore;
                 CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');
                 CREATE DOMAIN app.email AS text NOT NULL CONSTRAINT has_at CHECK (VALUE LIKE '%@%');
                 CREATE TYPE app.pair AS (a int, b text);
                 CREATE TYPE app.span AS RANGE (subtype = float8);
                 CREATE TABLE app.users (
                     id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     email app.email,
                     name text COLLATE \"C\" NOT NULL DEFAULT 'x',
                     upper_name text GENERATED ALWAYS AS (upper(name)) STORED,
                     mood app.mood DEFAULT 'ok',
                     tags hstore
                 );
                 COMMENT ON TABLE app.users IS 'people';
                 COMMENT ON COLUMN app.users.name IS 'shown';
                 CREATE TABLE app.orders (
                     id serial PRIMARY KEY,
                     user_id bigint,
                     total numeric(10,2),
                     CONSTRAINT orders_user FOREIGN KEY (user_id) REFERENCES app.users (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED
                 );
                 ALTER TABLE app.orders ADD CONSTRAINT orders_total_check CHECK (total >= 0) NOT VALID;
                 CREATE UNIQUE INDEX orders_partial ON app.orders (user_id) INCLUDE (total) WHERE total > 100;
                 CREATE INDEX users_lower ON app.users USING hash (lower(name));
                 CREATE SEQUENCE app.counter AS int INCREMENT 5 START 10 CACHE 2 CYCLE;
                 CREATE TABLE app.events (at date NOT NULL, what text) PARTITION BY RANGE (at);
                 CREATE TABLE app.events_2026 PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
                 CREATE VIEW app.big AS SELECT id, total FROM app.orders WHERE total > 100;
                 CREATE MATERIALIZED VIEW app.counts AS SELECT count(*) AS n FROM app.orders;
                 CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
                 CREATE PROCEDURE app.noop(n int) LANGUAGE sql AS $$ SELECT 1 $$;
                 REVOKE ALL ON FUNCTION app.touch() FROM PUBLIC;
                 CREATE TRIGGER orders_touch BEFORE UPDATE ON app.orders FOR EACH ROW EXECUTE FUNCTION app.touch();
                 ALTER TABLE app.orders ENABLE ROW LEVEL SECURITY;
                 CREATE POLICY own_orders ON app.orders AS RESTRICTIVE FOR SELECT TO PUBLIC USING (user_id > 0);
                 GRANT SELECT ON app.big TO PUBLIC;",
            )
            .unwrap();
        let snapshot = Snapshotter::prepare(&mut client, &[])
            .unwrap()
            .take(&mut client)
            .unwrap();
        let text = snapshot.lines.join("\n");
        for line in [
            "schema app",
            "comment SCHEMA app: the app",
            "extension hstore: SCHEMA public VERSION '",
            "type app.mood: ENUM ('sad', 'ok', 'happy')",
            "type app.email: DOMAIN text NOT NULL CONSTRAINT has_at CHECK ((VALUE ~~ '%@%'::text))",
            "type app.pair: AS (a integer, b text)",
            "type app.span: RANGE (SUBTYPE = double precision)",
            "column app.users.id: bigint NOT NULL GENERATED ALWAYS AS IDENTITY",
            "column app.users.email: app.email",
            "column app.users.name: text COLLATE pg_catalog.\"C\" NOT NULL DEFAULT 'x'::text",
            "column app.users.upper_name: text GENERATED ALWAYS AS (upper(name)) STORED",
            "column app.users.mood: app.mood DEFAULT 'ok'::app.mood",
            "column app.users.tags: hstore",
            "comment TABLE app.users: people",
            "comment COLUMN app.users.name: shown",
            "column app.orders.id: integer NOT NULL DEFAULT nextval('app.orders_id_seq'::regclass)",
            "sequence app.orders_id_seq: AS integer INCREMENT 1 MINVALUE 1 MAXVALUE 2147483647 START 1 CACHE 1 OWNED BY app.orders.id",
            "sequence app.counter: AS integer INCREMENT 5 MINVALUE 1 MAXVALUE 2147483647 START 10 CACHE 2 CYCLE",
            "constraint app.orders.orders_total_check: CHECK ((total >= (0)::numeric)) NOT VALID",
            "constraint app.orders.orders_user: FOREIGN KEY (user_id) REFERENCES app.users(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED",
            "index app.orders_partial: CREATE UNIQUE INDEX orders_partial ON app.orders USING btree (user_id) INCLUDE (total) WHERE (total > (100)::numeric)",
            "index app.users_lower: CREATE INDEX users_lower ON app.users USING hash (lower(name))",
            "table app.events: PARTITION BY RANGE (at)",
            "table app.events_2026: PARTITION OF app.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')",
            "table app.orders: ROW LEVEL SECURITY",
            "table app.users\n",
            "view app.big: SELECT orders.id, orders.total FROM app.orders WHERE (orders.total > (100)::numeric);",
            "materialized view app.counts: SELECT count(*) AS n FROM app.orders;",
            "function app.touch(): CREATE OR REPLACE FUNCTION app.touch()",
            "procedure app.noop(IN n integer): CREATE OR REPLACE PROCEDURE app.noop(IN n integer)",
            "trigger app.orders.orders_touch: CREATE TRIGGER orders_touch BEFORE UPDATE ON app.orders FOR EACH ROW EXECUTE FUNCTION app.touch()",
            "policy app.orders.own_orders: RESTRICTIVE FOR SELECT TO PUBLIC USING ((user_id > 0))",
            "grant TABLE app.big: {",
            "grant FUNCTION app.touch(): {",
        ] {
            assert!(text.contains(line), "missing {line:?} in:\n{text}");
        }
        // The extension's own functions and types are the extension's.
        assert!(!text.contains("function public.hstore"), "{text}");
        assert!(!text.contains("type public.hstore"), "{text}");
        // An identity column's sequence is the column's.
        assert!(!text.contains("sequence app.users_id_seq"), "{text}");
    }
}
