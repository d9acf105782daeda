//! The one reader of PostgreSQL's catalogs (13 to 17): every user object of
//! a database as `kind name: definition`, where the definition is what
//! PostgreSQL itself prints for it (`pg_get_indexdef`, `pg_get_constraintdef`,
//! `pg_get_functiondef`, ...) or, for a column, a sequence or a type, the
//! clause that would create it. One query, so that `verify` can take a
//! snapshot in one round trip; objects that belong to an extension are the
//! extension's, listed once as the extension.
//!
//! `verify`'s schema snapshots are built on it, and so is everything that
//! compares two schemas.

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

/// One user object: its kind (`table`, `column`, `index`, ...), its
/// qualified, quoted name, and its definition.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Object {
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) def: Option<String>,
}

impl Object {
    /// `kind name: definition`, whitespace collapsed: one line.
    pub(crate) fn line(&self) -> String {
        let text = match &self.def {
            Some(def) => format!("{} {}: {def}", self.kind, self.name),
            None => format!("{} {}", self.kind, self.name),
        };
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// One row of [`sql`] as an object.
pub(crate) fn object(row: &postgres::Row) -> Object {
    Object {
        kind: row.get(0),
        name: row.get(1),
        def: row.get(2),
    }
}

/// The catalog query: `(kind, name, def)` rows, sorted.
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
        "SELECT kind, name, def FROM ({}) objects ORDER BY 1, 2, 3",
        parts.join("\nUNION ALL\n")
    )
}

/// Tables (with partitioning and row security), views, materialized
/// views and sequences.
fn relations(rel: &str) -> String {
    format!(
        "SELECT 'table' AS kind, format('%I.%I', n.nspname, c.relname) AS name,
                nullif(concat_ws(' ',
                  CASE WHEN c.relpersistence = 'u' THEN 'UNLOGGED' END,
                  CASE WHEN c.relispartition THEN (SELECT format('PARTITION OF %I.%I ', pn.nspname, pc.relname)
                         FROM pg_inherits i JOIN pg_class pc ON pc.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = pc.relnamespace
                        WHERE i.inhrelid = c.oid) || pg_get_expr(c.relpartbound, c.oid) END,
                  CASE WHEN c.relkind = 'p' THEN 'PARTITION BY ' || pg_get_partkeydef(c.oid) END,
                  CASE WHEN c.relrowsecurity THEN 'ROW LEVEL SECURITY' END,
                  CASE WHEN c.relforcerowsecurity THEN 'FORCE ROW LEVEL SECURITY' END), '') AS def
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND {rel}
         UNION ALL
         SELECT CASE c.relkind WHEN 'v' THEN 'view' ELSE 'materialized view' END, format('%I.%I', n.nspname, c.relname),
                pg_get_viewdef(c.oid)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm') AND {rel}
         UNION ALL
         SELECT 'sequence', format('%I.%I', n.nspname, c.relname),
                format('AS %s INCREMENT %s MINVALUE %s MAXVALUE %s START %s CACHE %s%s%s', format_type(s.seqtypid, NULL),
                       s.seqincrement, s.seqmin, s.seqmax, s.seqstart, s.seqcache, CASE WHEN s.seqcycle THEN ' CYCLE' ELSE '' END,
                       (SELECT format(' OWNED BY %I.%I.%I', tn.nspname, t.relname, a.attname)
                          FROM pg_depend d JOIN pg_class t ON t.oid = d.refobjid JOIN pg_namespace tn ON tn.oid = t.relnamespace
                          JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass
                           AND d.deptype IN ('a', 'i')))
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_sequence s ON s.seqrelid = c.oid
          WHERE c.relkind = 'S' AND {rel}"
    )
}

/// Columns of tables, views and materialized views: type, collation when
/// not the type's, NOT NULL, default, identity, generated expression.
fn columns(rel: &str) -> String {
    format!(
        "SELECT 'column', format('%I.%I.%I', n.nspname, c.relname, a.attname),
                format_type(a.atttypid, a.atttypmod)
                || CASE WHEN a.attcollation <> t.typcollation AND a.attcollation <> 0
                        THEN (SELECT format(' COLLATE %I.%I', cn.nspname, co.collname) FROM pg_collation co
                                JOIN pg_namespace cn ON cn.oid = co.collnamespace WHERE co.oid = a.attcollation) ELSE '' END
                || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                || CASE WHEN a.attgenerated = 's' THEN ' GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED'
                        ELSE coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '') END
                || CASE a.attidentity WHEN 'a' THEN ' GENERATED ALWAYS AS IDENTITY' WHEN 'd' THEN ' GENERATED BY DEFAULT AS IDENTITY' ELSE '' END
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_type t ON t.oid = a.atttypid
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
          WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm') AND {rel}"
    )
}

/// Constraints of tables (`pg_get_constraintdef` says NOT VALID,
/// DEFERRABLE and a foreign key's actions) and indexes.
fn constraints_and_indexes(rel: &str, skip: &str) -> String {
    format!(
        "SELECT 'constraint', format('%I.%I.%I', n.nspname, c.relname, con.conname), pg_get_constraintdef(con.oid)
           FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {rel}
         UNION ALL
         SELECT 'index', format('%I.%I', n.nspname, c.relname), pg_get_indexdef(c.oid)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           JOIN pg_index i ON i.indexrelid = c.oid JOIN pg_class t ON t.oid = i.indrelid
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
                END
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
                format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), pg_get_functiondef(p.oid)
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE p.prokind IN ('f', 'p') AND {SYSTEM} AND {own}
         UNION ALL
         SELECT 'grant', format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), p.proacl::text
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE p.prokind IN ('f', 'p') AND p.proacl IS NOT NULL AND {SYSTEM} AND {own}",
        own = own("pg_proc", "p.oid")
    )
}

/// What hangs on a table: triggers, row-level-security policies, grants
/// and comments (on the relation and on its columns).
fn table_extras(rel: &str) -> String {
    format!(
        "SELECT 'trigger', format('%I.%I.%I', n.nspname, c.relname, t.tgname), pg_get_triggerdef(t.oid)
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE NOT t.tgisinternal AND {rel}
         UNION ALL
         SELECT 'policy', format('%I.%I.%I', n.nspname, c.relname, p.polname),
                concat_ws(' ', CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END,
                          'FOR ' || CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE'
                                                  WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
                          'TO ' || (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r)) END, ', ' ORDER BY 1)
                                      FROM unnest(p.polroles) r),
                          'USING (' || pg_get_expr(p.polqual, p.polrelid) || ')',
                          'WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')')
           FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {rel}
         UNION ALL
         SELECT 'grant', format('%I.%I', n.nspname, c.relname), c.relacl::text
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relacl IS NOT NULL AND {rel}
         UNION ALL
         SELECT 'comment', CASE WHEN d.objsubid = 0 THEN format('%I.%I', n.nspname, c.relname)
                                ELSE format('%I.%I.%I', n.nspname, c.relname, a.attname) END, d.description
           FROM pg_description d JOIN pg_class c ON c.oid = d.objoid AND d.classoid = 'pg_class'::regclass
           JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = d.objsubid AND d.objsubid > 0
          WHERE {rel}"
    )
}

/// Schemas (with their privileges and comments) and extensions.
fn others() -> String {
    format!(
        "SELECT 'schema', format('%I', n.nspname), NULL FROM pg_namespace n WHERE {SYSTEM} AND n.nspname <> 'public' AND {own}
         UNION ALL
         SELECT 'grant', format('%I', n.nspname), n.nspacl::text FROM pg_namespace n
          WHERE {SYSTEM} AND n.nspname <> 'public' AND n.nspacl IS NOT NULL AND {own}
         UNION ALL
         SELECT 'comment', format('%I', n.nspname), d.description FROM pg_namespace n
           JOIN pg_description d ON d.objoid = n.oid AND d.classoid = 'pg_namespace'::regclass
          WHERE {SYSTEM} AND n.nspname <> 'public'
         UNION ALL
         SELECT 'extension', format('%I', e.extname), format('SCHEMA %I VERSION %s', n.nspname, quote_literal(e.extversion))
           FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname <> 'plpgsql'",
        own = own("pg_namespace", "n.oid")
    )
}

#[cfg(test)]
mod tests {
    use crate::snapshot::Snapshotter;

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
            "comment app: the app",
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
            "comment app.users: people",
            "comment app.users.name: shown",
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
            "grant app.big: {",
            "grant app.touch(): {",
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
