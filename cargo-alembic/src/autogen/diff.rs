//! The plan that takes a database from one catalog to another: drops in
//! the order that frees what depends on what, then creations and changes
//! in the order that builds it. Views are dropped before the columns they
//! read change and created again after; foreign keys wait for every table;
//! a new enum value, and an index built `CONCURRENTLY` on an existing
//! table, run outside the revision's transaction, in a revision of their
//! own. Every statement that can lose data or block a busy table carries
//! its hazard.

use std::collections::{BTreeMap, BTreeSet};

use crate::catalog::{Catalog, Object};

/// Where a statement runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    /// Before the main revision, outside a transaction (`ALTER TYPE ... ADD
    /// VALUE`: the value must be committed before anything uses it).
    Before,
    /// The main revision, in one transaction.
    Main,
    /// After it, outside a transaction (`CREATE INDEX CONCURRENTLY`).
    After,
}

/// One statement of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) sql: String,
    /// Why a reviewer should look twice, written above the statement.
    pub(crate) hazard: Option<String>,
    pub(crate) phase: Phase,
}

/// The statements, in order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    pub(crate) steps: Vec<Step>,
}

impl Plan {
    fn push(&mut self, sql: String) {
        self.steps.push(Step {
            sql,
            hazard: None,
            phase: Phase::Main,
        });
    }

    fn hazard(&mut self, sql: String, hazard: String) {
        self.steps.push(Step {
            sql,
            hazard: Some(hazard),
            phase: Phase::Main,
        });
    }

    fn in_phase(&mut self, phase: Phase, sql: String, hazard: Option<String>) {
        self.steps.push(Step { sql, hazard, phase });
    }

    /// The statements of one phase.
    pub(crate) fn phase(&self, phase: Phase) -> Vec<&Step> {
        self.steps.iter().filter(|s| s.phase == phase).collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// The statements that take a database whose catalog is `from` to `to`.
/// `online`: new enum values before the main revision and new indexes on
/// existing tables `CONCURRENTLY` after it (an upgrade); otherwise every
/// statement in the main revision (a downgrade).
pub(crate) fn plan(from: &Catalog, to: &Catalog, online: bool) -> Plan {
    let mut d = Differ::new(from, to);
    d.online = online;
    d.drops();
    d.creates();
    d.plan
}

/// An identifier, quoted only when it must be.
pub(crate) fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// The unquoted text of a quoted identifier.
fn unquote(name: &str) -> String {
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => name.to_owned(),
    }
}

/// Whether a column's type (as `format_type` prints it) is the type
/// `name` (`schema.type`, quoted as needed), or an array of it.
fn uses_type(column_type: &str, name: &str) -> bool {
    let base = column_type.trim_end_matches("[]");
    base == name || name.strip_prefix("public.") == Some(base)
}

/// Names on both sides, for one kind.
fn names<'a>(c: &'a Catalog, kind: &'a str) -> BTreeSet<&'a str> {
    c.of(kind).map(|o| o.name.as_str()).collect()
}

/// A SQL string literal.
pub(crate) fn literal(text: &str) -> String {
    if text.contains('\\') {
        format!("E'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", text.replace('\'', "''"))
    }
}

/// The schema-qualified name of a column's table and the column:
/// `app.users.email` → (`app.users`, `email`), from the object's parts.
fn column_parts(o: &Object) -> (&str, &str) {
    (
        o.parent.as_deref().unwrap_or_default(),
        o.local.as_deref().unwrap_or_default(),
    )
}

struct Differ<'a> {
    from: &'a Catalog,
    to: &'a Catalog,
    plan: Plan,
    /// Tables dropped, or dropped and created again.
    dropped_tables: BTreeSet<String>,
    /// Tables created (new, or created again).
    created_tables: BTreeSet<String>,
    /// Columns dropped (or dropped and added again), `table.column`.
    dropped_columns: BTreeSet<String>,
    /// Columns whose type changes, `table.column`.
    retyped_columns: BTreeSet<String>,
    /// Views and materialized views dropped (to go, or to come back).
    dropped_views: BTreeSet<String>,
    /// Routines dropped (to go, or to come back with another result).
    dropped_routines: BTreeSet<String>,
    /// Types made again under their name (the old one renamed aside, its
    /// columns moved over, then dropped).
    remade_types: BTreeSet<String>,
    /// Columns moved to a remade type (through `text`).
    via_text: BTreeSet<String>,
    online: bool,
}

impl<'a> Differ<'a> {
    fn new(from: &'a Catalog, to: &'a Catalog) -> Self {
        Differ {
            from,
            to,
            plan: Plan::default(),
            dropped_tables: BTreeSet::new(),
            created_tables: BTreeSet::new(),
            dropped_columns: BTreeSet::new(),
            retyped_columns: BTreeSet::new(),
            dropped_views: BTreeSet::new(),
            dropped_routines: BTreeSet::new(),
            remade_types: BTreeSet::new(),
            via_text: BTreeSet::new(),
            online: true,
        }
    }

    fn changed(&self, kind: &str, name: &str) -> bool {
        match (self.from.get(kind, name), self.to.get(kind, name)) {
            (Some(a), Some(b)) => a.def != b.def,
            _ => false,
        }
    }

    fn gone(&self, kind: &str, name: &str) -> bool {
        self.from.get(kind, name).is_some() && self.to.get(kind, name).is_none()
    }

    /// A table that must be dropped and created: its partitioning changed.
    fn table_recreated(&self, name: &str) -> bool {
        match (self.from.get("table", name), self.to.get("table", name)) {
            (Some(a), Some(b)) => {
                a.text("partition_by") != b.text("partition_by")
                    || a.text("partition_of") != b.text("partition_of")
                    || a.text("bound") != b.text("bound")
            }
            _ => false,
        }
    }

    /// Whether a column changes in a way that needs it dropped and added
    /// (a generated expression, which PostgreSQL cannot alter).
    fn column_recreated(a: &Object, b: &Object) -> bool {
        a.text("generated") != b.text("generated")
    }

    // ---- drops -------------------------------------------------------

    fn drops(&mut self) {
        self.mark_tables_and_columns();
        self.drop_on_tables("policy", |name, o| {
            format!(
                "DROP POLICY {} ON {};",
                o.local.as_deref().unwrap_or(name),
                o.parent.as_deref().unwrap_or_default()
            )
        });
        self.drop_on_tables("trigger", |name, o| {
            format!(
                "DROP TRIGGER {} ON {};",
                o.local.as_deref().unwrap_or(name),
                o.parent.as_deref().unwrap_or_default()
            )
        });
        self.drop_views();
        self.drop_constraints();
        self.drop_indexes();
        // Routines whose signature uses a dropped table's row type first.
        self.drop_routines(true);
        self.drop_columns();
        self.drop_tables();
        self.drop_routines(false);
    }

    /// Schemas and extensions that go: last, once nothing is in them.
    fn drop_namespaces(&mut self) {
        for name in names(self.from, "schema") {
            if self.gone("schema", name) {
                self.plan.push(format!("DROP SCHEMA {name};"));
            }
        }
        for name in names(self.from, "extension") {
            if self.gone("extension", name) {
                self.plan.push(format!("DROP EXTENSION {name};"));
            }
        }
    }

    /// Whether a routine's signature uses the row type of a table this plan
    /// drops.
    fn uses_dropped_row_type(&self, o: &Object) -> bool {
        o.list("rowtypes")
            .iter()
            .any(|r| self.dropped_tables.contains(r))
    }

    /// Which tables and columns go (or go and come back), and which
    /// columns change type: what views, constraints and indexes on them
    /// must make way for.
    fn mark_tables_and_columns(&mut self) {
        for name in names(self.from, "table") {
            if self.to.get("table", name).is_none() || self.table_recreated(name) {
                self.dropped_tables.insert(name.to_owned());
            }
        }
        for name in names(self.to, "table") {
            if self.from.get("table", name).is_none() || self.dropped_tables.contains(name) {
                self.created_tables.insert(name.to_owned());
            }
        }
        for a in self.from.of("type") {
            if let Some(b) = self.to.get("type", &a.name) {
                if a.def != b.def && !(self.online && enum_grows(a, b)) {
                    self.remade_types.insert(a.name.clone());
                }
            }
        }
        for a in self.from.of("column") {
            let (table, _) = column_parts(a);
            if self.dropped_tables.contains(table)
                || a.text("relkind") != Some("r") && a.text("relkind") != Some("p")
            {
                continue;
            }
            match self.to.get("column", &a.name) {
                None => {
                    self.dropped_columns.insert(a.name.clone());
                }
                Some(b) if Self::column_recreated(a, b) => {
                    self.dropped_columns.insert(a.name.clone());
                }
                Some(b)
                    if a.text("type") != b.text("type")
                        || a.text("collation") != b.text("collation") =>
                {
                    self.retyped_columns.insert(a.name.clone());
                }
                Some(_) => {
                    let ty = a.text("type").unwrap_or_default();
                    if self.remade_types.iter().any(|t| uses_type(ty, t)) {
                        self.retyped_columns.insert(a.name.clone());
                        self.via_text.insert(a.name.clone());
                    }
                }
            }
        }
    }

    /// Drops policies or triggers that go or change (those of dropped
    /// tables go with them).
    fn drop_on_tables(&mut self, kind: &str, sql: impl Fn(&str, &Object) -> String) {
        for o in self.from.of(kind) {
            let table = o.parent.as_deref().unwrap_or_default();
            if self.dropped_tables.contains(table) {
                continue;
            }
            if self.gone(kind, &o.name)
                || self.changed(kind, &o.name)
                || self.routine_of_trigger_dropped(o)
            {
                self.plan.push(sql(&o.name, o));
            }
        }
    }

    /// A trigger whose function is dropped (to come back changed) goes
    /// first.
    fn routine_of_trigger_dropped(&self, o: &Object) -> bool {
        o.kind == "trigger"
            && self.from.of("function").any(|f| {
                self.routine_dropped(&f.name)
                    && o.def.as_deref().is_some_and(|d| {
                        d.contains(&format!(
                            "EXECUTE FUNCTION {}(",
                            f.name.split('(').next().unwrap_or_default()
                        ))
                    })
            })
    }

    fn routine_dropped(&self, name: &str) -> bool {
        let (a, b) = (
            self.from.get("function", name),
            self.to.get("function", name),
        );
        match (a, b) {
            (Some(_), None) => true,
            (Some(a), Some(b)) => {
                a.text("result") != b.text("result") || self.uses_dropped_row_type(a)
            }
            _ => false,
        }
    }

    /// Views and materialized views that go, change, or read something
    /// that goes or changes type; dependents first.
    fn drop_views(&mut self) {
        let views: Vec<&Object> = self
            .from
            .objects
            .values()
            .filter(|o| o.kind == "view" || o.kind == "materialized view")
            .collect();
        let mut dropped: BTreeSet<String> = BTreeSet::new();
        loop {
            let before = dropped.len();
            for v in &views {
                if dropped.contains(&v.name) {
                    continue;
                }
                let other = self.to.get(&v.kind, &v.name);
                let reads_changed = v
                    .list("reads")
                    .iter()
                    .any(|r| self.dropped_tables.contains(r) || dropped.contains(r))
                    || v.list("columns").iter().any(|c| {
                        self.dropped_columns.contains(c) || self.retyped_columns.contains(c)
                    })
                    || v.list("calls").iter().any(|f| self.routine_dropped(f));
                if other.is_none() || other.map(|o| &o.def) != Some(&v.def) || reads_changed {
                    dropped.insert(v.name.clone());
                }
            }
            if dropped.len() == before {
                break;
            }
        }
        // Dependents first: a view is dropped before the views it reads.
        for name in order(&views, &dropped).into_iter().rev() {
            let v = self.from.get_view(&name);
            let word = if v.is_some_and(|v| v.kind == "materialized view") {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            };
            self.plan.push(format!("DROP {word} {name};"));
        }
        self.dropped_views = dropped;
    }

    fn drop_constraints(&mut self) {
        let mut foreign = Vec::new();
        let mut other = Vec::new();
        for o in self.from.of("constraint") {
            let table = o.parent.as_deref().unwrap_or_default();
            if o.flag("inherited") {
                continue;
            }
            let goes = self.gone("constraint", &o.name) || self.changed("constraint", &o.name);
            let is_foreign = o.text("type") == Some("f");
            // A foreign key between two dropped tables is dropped first, so
            // that the tables go in any order.
            let between_dropped = is_foreign && self.dropped_tables.contains(table);
            if self.dropped_tables.contains(table) && !between_dropped {
                continue;
            }
            if !goes && !between_dropped {
                continue;
            }
            let sql = format!(
                "ALTER TABLE {table} DROP CONSTRAINT {};",
                o.local.as_deref().unwrap_or_default()
            );
            if is_foreign {
                foreign.push(sql);
            } else {
                other.push(sql);
            }
        }
        for sql in foreign.into_iter().chain(other) {
            self.plan.push(sql);
        }
    }

    fn drop_indexes(&mut self) {
        for o in self.from.of("index") {
            let table = o.parent.as_deref().unwrap_or_default();
            if o.flag("constraint")
                || o.flag("partition_child")
                || self.dropped_tables.contains(table)
                || self.dropped_views.contains(table)
            {
                continue;
            }
            if self.gone("index", &o.name) || self.changed("index", &o.name) {
                self.plan.push(format!("DROP INDEX {};", o.name));
            }
        }
    }

    fn drop_columns(&mut self) {
        let dropped: Vec<String> = self.dropped_columns.iter().cloned().collect();
        for name in dropped {
            let Some(o) = self.from.get("column", &name) else {
                continue;
            };
            if o.flag("inherited") {
                continue;
            }
            let (table, column) = column_parts(o);
            self.plan.hazard(
                format!("ALTER TABLE {table} DROP COLUMN {column};"),
                format!("deletes data: drops column {column} of {table} and its values"),
            );
        }
    }

    fn drop_tables(&mut self) {
        let dropped: Vec<String> = self.dropped_tables.iter().cloned().collect();
        for name in dropped {
            let Some(o) = self.from.get("table", &name) else {
                continue;
            };
            // A partition goes with its parent.
            if o.text("partition_of")
                .is_some_and(|p| self.dropped_tables.contains(p))
            {
                continue;
            }
            let again = if self.to.get("table", &name).is_some() {
                " (its partitioning changes: it is created again, empty)"
            } else {
                ""
            };
            self.plan.hazard(
                format!("DROP TABLE {name};"),
                format!("deletes data: drops table {name} and its rows{again}"),
            );
        }
    }

    /// Routines that go, or come back with another result; `row_types`:
    /// only those whose signature uses a dropped table's row type (which
    /// go in any case), otherwise the rest.
    fn drop_routines(&mut self, row_types: bool) {
        for kind in ["function", "procedure"] {
            for o in self.from.of(kind) {
                if self.uses_dropped_row_type(o) != row_types {
                    continue;
                }
                let goes = row_types
                    || match self.to.get(kind, &o.name) {
                        None => true,
                        Some(b) => o.text("result") != b.text("result"),
                    };
                if goes {
                    let word = kind.to_uppercase();
                    self.plan.push(format!("DROP {word} {};", o.name));
                    self.dropped_routines.insert(o.name.clone());
                }
            }
        }
    }

    fn drop_sequences(&mut self) {
        for o in self.from.of("sequence") {
            if self.to.get("sequence", &o.name).is_some() {
                continue;
            }
            // An owned sequence goes with its column or table.
            if let Some(owner) = o.text("owned_by") {
                let table = owner.rsplit_once('.').map_or(owner, |(t, _)| t);
                if self.dropped_columns.contains(owner) || self.dropped_tables.contains(table) {
                    continue;
                }
            }
            self.plan.push(format!("DROP SEQUENCE {};", o.name));
        }
    }

    /// Types that go, and the old copies of remade ones: after the columns
    /// that used them changed.
    fn drop_types(&mut self) {
        for o in self.from.of("type") {
            if self.to.get("type", &o.name).is_none() {
                self.plan.push(format!("DROP TYPE {};", o.name));
            } else if self.remade_types.contains(&o.name) {
                self.plan.push(format!("DROP TYPE {};", aside(&o.name)));
            }
        }
    }

    // ---- creations and changes ---------------------------------------

    fn creates(&mut self) {
        for o in self.to.of("extension") {
            let schema = o.text("schema").unwrap_or("public");
            match self.from.get("extension", &o.name) {
                None => self.plan.push(format!(
                    "CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {schema};",
                    o.name
                )),
                Some(a) if a.text("version") != o.text("version") => self.plan.push(format!(
                    "ALTER EXTENSION {} UPDATE TO {};",
                    o.name,
                    literal(o.text("version").unwrap_or_default())
                )),
                Some(_) => {}
            }
        }
        for name in names(self.to, "schema") {
            if self.from.get("schema", name).is_none() {
                self.plan.push(format!("CREATE SCHEMA {name};"));
            }
        }
        self.create_types();
        self.create_sequences();
        self.create_routines(false);
        self.create_tables();
        self.alter_tables();
        self.create_routines(true);
        self.create_constraints();
        self.create_indexes();
        self.create_foreign_keys();
        self.drop_sequences();
        self.drop_types();
        self.create_views();
        self.create_on_tables();
        self.sequence_owners();
        self.comments();
        self.grants();
        self.drop_namespaces();
    }

    fn create_types(&mut self) {
        for o in self.to.of("type") {
            let def = o.def.as_deref().unwrap_or_default();
            match self.from.get("type", &o.name) {
                Some(a) if a.def == o.def => {}
                Some(a) if self.online && enum_grows(a, o) => self.add_enum_values(a, o),
                Some(a) => {
                    // Made again: the old one renamed aside until its
                    // columns have moved over.
                    let word = if a.text("type") == Some("d") {
                        "DOMAIN"
                    } else {
                        "TYPE"
                    };
                    let local = aside(&o.name);
                    let local = local.rsplit_once('.').map_or(local.as_str(), |(_, l)| l);
                    self.plan.hazard(
                        format!("ALTER {word} {} RENAME TO {local};", o.name),
                        format!("{} is made again: its columns move over through text, which fails on a value the new one lacks", o.name),
                    );
                    let sql = match def.strip_prefix("DOMAIN ") {
                        Some(rest) => format!("CREATE DOMAIN {} AS {rest};", o.name),
                        None => format!("CREATE TYPE {} AS {def};", o.name),
                    };
                    self.plan.push(sql);
                }
                None => {
                    let sql = match def.strip_prefix("DOMAIN ") {
                        Some(rest) => format!("CREATE DOMAIN {} AS {rest};", o.name),
                        None => format!("CREATE TYPE {} AS {def};", o.name),
                    };
                    self.plan.push(sql);
                }
            }
        }
    }

    /// `ALTER TYPE ... ADD VALUE` for each new label, in place: before the
    /// main revision and outside its transaction.
    fn add_enum_values(&mut self, a: &Object, b: &Object) {
        let old = a.list("labels");
        let new = b.list("labels");
        for (i, label) in new.iter().enumerate() {
            if old.contains(label) {
                continue;
            }
            let place = match new[i + 1..].iter().find(|l| old.contains(l)) {
                Some(next) => format!(" BEFORE {}", literal(next)),
                None => String::new(),
            };
            self.plan.in_phase(
                Phase::Before,
                format!(
                    "ALTER TYPE {} ADD VALUE IF NOT EXISTS {}{place};",
                    b.name,
                    literal(label)
                ),
                None,
            );
        }
    }

    fn create_sequences(&mut self) {
        for o in self.to.of("sequence") {
            let options = o.text("options").unwrap_or_default();
            match self.from.get("sequence", &o.name) {
                None => self
                    .plan
                    .push(format!("CREATE SEQUENCE {} {options};", o.name)),
                Some(a) if a.text("options") != o.text("options") => {
                    self.plan
                        .push(format!("ALTER SEQUENCE {} {options};", o.name));
                }
                Some(_) => {}
            }
        }
    }

    /// New and changed routines. Those whose signature uses the row type of
    /// a table or view this plan makes come after it (`late`); the others
    /// before the tables, whose defaults and checks may call them, with
    /// SQL bodies not checked yet when they read tables made later (as
    /// `pg_dump` does).
    fn create_routines(&mut self, late: bool) {
        let mut defs = Vec::new();
        for kind in ["function", "procedure"] {
            for o in self.to.of(kind) {
                let new = self.from.get(kind, &o.name).is_none()
                    || self.dropped_routines.contains(&o.name);
                let needs_made = o
                    .list("rowtypes")
                    .iter()
                    .any(|r| self.created_tables.contains(r) || self.view_made(r));
                if (new || self.changed(kind, &o.name)) && needs_made == late {
                    defs.push(o.def.as_deref().unwrap_or_default().trim_end());
                }
            }
        }
        let sql_bodies = defs.iter().any(|d| d.contains(" LANGUAGE sql"));
        if !late && sql_bodies && !self.created_tables.is_empty() {
            self.plan
                .push("SET LOCAL check_function_bodies = off;".to_owned());
        }
        for def in defs {
            self.plan.push(format!("{def};"));
        }
    }

    /// New tables, partitioned parents first, with their columns (in the
    /// desired order) and their constraints but foreign keys.
    fn create_tables(&mut self) {
        let mut tables: Vec<&Object> = self
            .to
            .of("table")
            .filter(|o| self.created_tables.contains(&o.name))
            .collect();
        tables.sort_by_key(|o| (o.text("partition_of").is_some(), o.name.clone()));
        for t in tables {
            let body = self.table_body(t);
            let unlogged = if t.flag("unlogged") { "UNLOGGED " } else { "" };
            let sql = match (t.text("partition_of"), t.text("bound")) {
                (Some(parent), Some(bound)) if body.is_empty() => {
                    format!("CREATE TABLE {} PARTITION OF {parent} {bound};", t.name)
                }
                (Some(parent), Some(bound)) => format!(
                    "CREATE TABLE {} PARTITION OF {parent} (\n    {}\n) {bound};",
                    t.name,
                    body.join(",\n    ")
                ),
                _ => {
                    let by = t
                        .text("partition_by")
                        .map_or(String::new(), |p| format!(" PARTITION BY {p}"));
                    format!(
                        "CREATE {unlogged}TABLE {} (\n    {}\n){by};",
                        t.name,
                        body.join(",\n    ")
                    )
                }
            };
            self.plan.push(sql);
            self.row_security(None, t);
        }
    }

    /// A new table's lines: its own columns in the desired order, then its
    /// constraints but foreign keys.
    fn table_body(&self, t: &Object) -> Vec<String> {
        let mut columns: Vec<(i64, String)> = self
            .to
            .of("column")
            .filter(|c| c.parent.as_deref() == Some(t.name.as_str()) && !c.flag("inherited"))
            .map(|c| {
                let position = c
                    .attrs
                    .get("position")
                    .and_then(|p| p.as_i64())
                    .unwrap_or(0);
                let (local, def) = (c.local.as_deref(), c.def.as_deref());
                (
                    position,
                    format!("{} {}", local.unwrap_or_default(), def.unwrap_or_default()),
                )
            })
            .collect();
        columns.sort();
        let constraints = self
            .to
            .of("constraint")
            .filter(|c| {
                c.parent.as_deref() == Some(t.name.as_str())
                    && c.text("type") != Some("f")
                    && !c.flag("inherited")
            })
            .map(|c| {
                let (local, def) = (c.local.as_deref(), c.def.as_deref());
                format!(
                    "CONSTRAINT {} {}",
                    local.unwrap_or_default(),
                    def.unwrap_or_default()
                )
            });
        columns
            .into_iter()
            .map(|(_, l)| l)
            .chain(constraints)
            .collect()
    }

    /// `ENABLE`/`FORCE ROW LEVEL SECURITY` and their opposites.
    fn row_security(&mut self, from: Option<&Object>, to: &Object) {
        for (key, on, off) in [
            (
                "rls",
                "ENABLE ROW LEVEL SECURITY",
                "DISABLE ROW LEVEL SECURITY",
            ),
            (
                "force_rls",
                "FORCE ROW LEVEL SECURITY",
                "NO FORCE ROW LEVEL SECURITY",
            ),
        ] {
            let was = from.is_some_and(|f| f.flag(key));
            match (was, to.flag(key)) {
                (false, true) => self.plan.push(format!("ALTER TABLE {} {on};", to.name)),
                (true, false) => self.plan.push(format!("ALTER TABLE {} {off};", to.name)),
                _ => {}
            }
        }
    }

    /// Tables on both sides: row security, persistence, new columns and
    /// changed ones.
    fn alter_tables(&mut self) {
        let kept: Vec<&Object> = self
            .to
            .of("table")
            .filter(|t| !self.created_tables.contains(&t.name))
            .collect();
        for t in kept {
            let Some(a) = self.from.get("table", &t.name) else {
                continue;
            };
            self.row_security(Some(a), t);
            if a.flag("unlogged") != t.flag("unlogged") {
                let to = if t.flag("unlogged") {
                    "UNLOGGED"
                } else {
                    "LOGGED"
                };
                self.plan.hazard(
                    format!("ALTER TABLE {} SET {to};", t.name),
                    format!("rewrites {} under an ACCESS EXCLUSIVE lock", t.name),
                );
            }
            let columns: Vec<&Object> = self
                .to
                .of("column")
                .filter(|c| c.parent.as_deref() == Some(t.name.as_str()) && !c.flag("inherited"))
                .collect();
            for c in columns {
                match self.from.get("column", &c.name) {
                    Some(old) if !self.dropped_columns.contains(&c.name) => {
                        self.alter_column(old, c)
                    }
                    _ => self.add_column(c),
                }
            }
        }
    }

    fn add_column(&mut self, c: &Object) {
        let (table, column) = column_parts(c);
        let def = c.def.as_deref().unwrap_or_default();
        let sql = format!("ALTER TABLE {table} ADD COLUMN {column} {def};");
        let rewrites = c.text("generated").is_some()
            || c.text("identity").is_some()
            || c.text("default")
                .is_some_and(|d| d.contains('(') && !d.contains("::"));
        if rewrites {
            self.plan.hazard(
                sql,
                format!(
                    "takes an ACCESS EXCLUSIVE lock on {table} and rewrites it to fill {column}"
                ),
            );
        } else if c.flag("not_null") && c.text("default").is_none() {
            self.plan.hazard(
                sql,
                format!("fails if {table} has rows: {column} is NOT NULL without a default"),
            );
        } else {
            self.plan.push(sql);
        }
    }

    fn alter_column(&mut self, a: &Object, b: &Object) {
        let (table, column) = column_parts(b);
        let alter = |what: String| format!("ALTER TABLE {table} ALTER COLUMN {column} {what};");
        let retyped = self.retyped_columns.contains(&b.name);
        if retyped && a.text("default").is_some() {
            self.plan.push(alter("DROP DEFAULT".into()));
        }
        if retyped {
            let ty = b.text("type").unwrap_or_default();
            let collate = b
                .text("collation")
                .map_or(String::new(), |c| format!(" COLLATE {c}"));
            let via = if self.via_text.contains(&b.name) {
                "::text"
            } else {
                ""
            };
            self.plan.hazard(
                alter(format!("TYPE {ty}{collate} USING {column}{via}::{ty}")),
                format!(
                    "can fail, and rewrites {table} under an ACCESS EXCLUSIVE lock: changes the type of {column} from {} to {ty}",
                    a.text("type").unwrap_or_default()
                ),
            );
        }
        if a.text("identity") != b.text("identity") {
            if a.text("identity").is_some() {
                self.plan.push(alter("DROP IDENTITY".into()));
            }
            if let Some(kind) = b.text("identity") {
                self.plan
                    .push(alter(format!("ADD GENERATED {kind} AS IDENTITY")));
            }
        }
        if a.text("default") != b.text("default") || (retyped && b.text("default").is_some()) {
            match b.text("default") {
                Some(d) => self.plan.push(alter(format!("SET DEFAULT {d}"))),
                None if !retyped => self.plan.push(alter("DROP DEFAULT".into())),
                None => {}
            }
        }
        match (a.flag("not_null"), b.flag("not_null")) {
            (false, true) => self.plan.hazard(
                alter("SET NOT NULL".into()),
                format!(
                    "scans {table} under an ACCESS EXCLUSIVE lock, and fails if {column} has NULLs"
                ),
            ),
            (true, false) => self.plan.push(alter("DROP NOT NULL".into())),
            _ => {}
        }
    }

    /// Constraints that are new or changed: checks, unique and primary
    /// keys first, then foreign keys; on an existing table a foreign key or
    /// a check is added `NOT VALID` and validated after.
    /// The new foreign keys (`foreign`) or the other new constraints.
    fn new_constraints(&self, foreign: bool) -> Vec<&'a Object> {
        self.to
            .of("constraint")
            .filter(|c| {
                let table = c.parent.as_deref().unwrap_or_default();
                let is_foreign = c.text("type") == Some("f");
                let new_table = self.created_tables.contains(table);
                let is_new = self.from.get("constraint", &c.name).is_none()
                    || self.changed("constraint", &c.name)
                    || self.dropped_tables.contains(table);
                // A new table has its other constraints in CREATE TABLE.
                let in_create_table = new_table && !is_foreign;
                let wanted = if in_create_table {
                    false
                } else {
                    is_new || new_table
                };
                !c.flag("inherited") && is_foreign == foreign && wanted
            })
            .collect()
    }

    /// Checks, unique and primary keys that are new or changed; on an
    /// existing table a check is added `NOT VALID` and validated after.
    fn create_constraints(&mut self) {
        for c in self.new_constraints(false) {
            let table = c.parent.as_deref().unwrap_or_default();
            let new_table = self.created_tables.contains(table);
            self.add_constraint(c, new_table);
        }
    }

    /// Foreign keys, after every table, key and index they need; on an
    /// existing table added `NOT VALID` and validated after.
    fn create_foreign_keys(&mut self) {
        for c in self.new_constraints(true) {
            let table = c.parent.as_deref().unwrap_or_default();
            let new_table = self.created_tables.contains(table);
            self.add_constraint(c, new_table);
        }
    }

    /// The tables new foreign keys point at (qualified): a unique index
    /// they need is built in the main revision, before them.
    fn referenced_tables(&self) -> BTreeSet<String> {
        self.new_constraints(true)
            .iter()
            .filter_map(|c| {
                let def = c.def.as_deref()?;
                let after = def.split_once("REFERENCES ")?.1;
                let name = after.split('(').next()?.trim();
                Some(if name.contains('.') {
                    name.to_owned()
                } else {
                    format!("public.{name}")
                })
            })
            .collect()
    }

    fn add_constraint(&mut self, c: &Object, new_table: bool) {
        let table = c.parent.as_deref().unwrap_or_default();
        let name = c.local.as_deref().unwrap_or_default();
        let def = c.def.as_deref().unwrap_or_default();
        let kind = c.text("type").unwrap_or_default();
        let validate_later = !new_table && matches!(kind, "f" | "c") && !def.ends_with("NOT VALID");
        if validate_later {
            self.plan.push(format!(
                "ALTER TABLE {table} ADD CONSTRAINT {name} {def} NOT VALID;"
            ));
            self.plan.hazard(
                format!("ALTER TABLE {table} VALIDATE CONSTRAINT {name};"),
                format!("reads every row of {table} (writes go on meanwhile), and fails if one breaks {name}"),
            );
        } else if new_table {
            self.plan
                .push(format!("ALTER TABLE {table} ADD CONSTRAINT {name} {def};"));
        } else {
            self.plan.hazard(
                format!("ALTER TABLE {table} ADD CONSTRAINT {name} {def};"),
                format!("takes an ACCESS EXCLUSIVE lock on {table} while it checks every row (and builds an index for a key)"),
            );
        }
    }

    /// New and changed indexes; on an existing table built `CONCURRENTLY`
    /// in a revision of its own.
    fn create_indexes(&mut self) {
        let referenced = self.referenced_tables();
        for o in self.to.of("index") {
            let table = o.parent.as_deref().unwrap_or_default();
            if o.flag("constraint") || o.flag("partition_child") || self.view_made(table) {
                continue;
            }
            let new = self.from.get("index", &o.name).is_none()
                || self.changed("index", &o.name)
                || self.dropped_tables.contains(table);
            if !new {
                continue;
            }
            let def = o.def.as_deref().unwrap_or_default();
            let partitioned = self
                .to
                .get("table", table)
                .is_some_and(|t| t.text("partition_by").is_some());
            if partitioned {
                // Without ONLY, the index is made on every partition too.
                let sql = format!("{};", def.replacen(" ON ONLY ", " ON ", 1));
                if self.created_tables.contains(table) {
                    self.plan.push(sql);
                } else {
                    self.plan.hazard(
                        sql,
                        format!("builds the index on every partition of {table} without CONCURRENTLY (a partitioned table cannot): writes wait until it is built"),
                    );
                }
            } else if self.created_tables.contains(table) || !self.online {
                self.plan.push(format!("{def};"));
            } else if def.starts_with("CREATE UNIQUE") && referenced.contains(table) {
                self.plan.hazard(
                    format!("{def};"),
                    format!("builds the index without CONCURRENTLY, in this revision, because a new foreign key needs it: writes to {table} wait until it is built"),
                );
            } else {
                let concurrent = def.replacen(" INDEX ", " INDEX CONCURRENTLY ", 1);
                self.plan
                    .in_phase(Phase::After, format!("{concurrent};"), None);
            }
        }
    }

    /// Views and materialized views that are new or were dropped, each
    /// after the views it reads.
    fn create_views(&mut self) {
        let views: Vec<&Object> = self
            .to
            .objects
            .values()
            .filter(|o| o.kind == "view" || o.kind == "materialized view")
            .collect();
        let wanted: BTreeSet<String> = views
            .iter()
            .filter(|v| {
                self.from.get(&v.kind, &v.name).is_none() || self.dropped_views.contains(&v.name)
            })
            .map(|v| v.name.clone())
            .collect();
        for name in order(&views, &wanted) {
            let Some(v) = self.to.get_view(&name) else {
                continue;
            };
            let body = v
                .def
                .as_deref()
                .unwrap_or_default()
                .trim_end()
                .trim_end_matches(';')
                .trim_start_matches('\n');
            let word = if v.kind == "materialized view" {
                "MATERIALIZED VIEW"
            } else {
                "VIEW"
            };
            self.plan.push(format!("CREATE {word} {name} AS\n{body};"));
            // A materialized view's indexes come with it.
            for index in self
                .to
                .of("index")
                .filter(|i| i.parent.as_deref() == Some(name.as_str()))
            {
                let def = index.def.as_deref().unwrap_or_default();
                self.plan.push(format!("{def};"));
            }
        }
    }

    /// Whether a view or materialized view is created (new, or dropped
    /// to come back) by this plan.
    fn view_made(&self, name: &str) -> bool {
        self.to.get_view(name).is_some()
            && (self.from.get_view(name).is_none() || self.dropped_views.contains(name))
    }

    /// Triggers and policies that are new or changed (or whose table or
    /// function came back).
    fn create_on_tables(&mut self) {
        for kind in ["trigger", "policy"] {
            for o in self.to.of(kind) {
                let table = o.parent.as_deref().unwrap_or_default();
                let redo = self.from.get(kind, &o.name).is_none()
                    || self.changed(kind, &o.name)
                    || self.dropped_tables.contains(table)
                    || self
                        .from
                        .get(kind, &o.name)
                        .is_some_and(|f| self.routine_of_trigger_dropped(f));
                if !redo {
                    continue;
                }
                let def = o.def.as_deref().unwrap_or_default();
                let sql = if kind == "trigger" {
                    format!("{def};")
                } else {
                    format!(
                        "CREATE POLICY {} ON {table} AS {def};",
                        o.local.as_deref().unwrap_or_default()
                    )
                };
                self.plan.push(sql);
            }
        }
    }

    fn sequence_owners(&mut self) {
        for o in self.to.of("sequence") {
            let was = self
                .from
                .get("sequence", &o.name)
                .and_then(|a| a.text("owned_by"));
            let owner = o.text("owned_by");
            let table_back = owner.is_some_and(|w| {
                let table = w.rsplit_once('.').map_or(w, |(t, _)| t);
                self.created_tables.contains(table) || self.dropped_columns.contains(w)
            });
            if was != owner || table_back {
                let owner = owner.unwrap_or("NONE");
                self.plan
                    .push(format!("ALTER SEQUENCE {} OWNED BY {owner};", o.name));
            }
        }
    }

    /// Whether an object's comment or grant went with it (its table, view
    /// or column was dropped and comes back).
    fn recreated(&self, o: &Object) -> bool {
        let (_, target) = target_of(&o.name);
        self.dropped_tables.contains(target)
            || self.dropped_views.contains(target)
            || self.dropped_columns.contains(target)
            || self.dropped_routines.contains(target)
            || o.parent
                .as_deref()
                .is_some_and(|p| self.dropped_tables.contains(p))
    }

    fn comments(&mut self) {
        for o in self.to.of("comment") {
            let same = self
                .from
                .get("comment", &o.name)
                .is_some_and(|a| a.def == o.def);
            if !same || self.recreated(o) {
                let text = o.def.as_deref().unwrap_or_default();
                self.plan
                    .push(format!("COMMENT ON {} IS {};", o.name, literal(text)));
            }
        }
        for o in self.from.of("comment") {
            if self.to.get("comment", &o.name).is_none()
                && !self.recreated(o)
                && self.target_exists(o)
            {
                self.plan.push(format!("COMMENT ON {} IS NULL;", o.name));
            }
        }
    }

    /// Whether what a comment or grant is on still exists on the `to` side.
    fn target_exists(&self, o: &Object) -> bool {
        let (kind, target) = target_of(&o.name);
        // `GRANT ... ON TABLE` names views too.
        let kinds: &[&str] = if kind == "table" {
            &["table", "view", "materialized view"]
        } else {
            &[kind]
        };
        kinds.iter().any(|k| self.to.get(k, target).is_some())
    }

    fn grants(&mut self) {
        let mut targets: BTreeSet<&str> = names(self.to, "grant");
        targets.extend(names(self.from, "grant"));
        for name in targets {
            let (a, b) = (self.from.get("grant", name), self.to.get("grant", name));
            let probe = a.or(b).expect("one side has it");
            if b.is_none() && !self.target_exists(probe) {
                continue;
            }
            let old = if self.recreated(probe) { None } else { a };
            let before = privileges(name, old);
            let after = privileges(name, b);
            let grantees: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
            for grantee in grantees {
                let none: BTreeSet<String> = BTreeSet::new();
                let was = before.get(grantee).unwrap_or(&none);
                let will = after.get(grantee).unwrap_or(&none);
                // `SELECT*`: with its grant option. A privilege whose
                // option changes is revoked and granted again.
                let to_revoke: Vec<&str> = was
                    .difference(will)
                    .map(|p| p.trim_end_matches('*'))
                    .collect();
                if !to_revoke.is_empty() {
                    self.plan.push(format!(
                        "REVOKE {} ON {name} FROM {grantee};",
                        to_revoke.join(", ")
                    ));
                }
                let (with_option, plain): (Vec<&str>, Vec<&str>) = will
                    .difference(was)
                    .map(String::as_str)
                    .partition(|p| p.ends_with('*'));
                if !plain.is_empty() {
                    self.plan.push(format!(
                        "GRANT {} ON {name} TO {grantee};",
                        plain.join(", ")
                    ));
                }
                if !with_option.is_empty() {
                    let privileges: Vec<&str> = with_option
                        .iter()
                        .map(|p| p.trim_end_matches('*'))
                        .collect();
                    self.plan.push(format!(
                        "GRANT {} ON {name} TO {grantee} WITH GRANT OPTION;",
                        privileges.join(", ")
                    ));
                }
            }
        }
    }
}

/// What a comment or grant names (`MATERIALIZED VIEW app.mv`): the
/// catalog's kind and the object's name.
fn target_of(name: &str) -> (&'static str, &str) {
    for (word, kind) in [
        ("MATERIALIZED VIEW ", "materialized view"),
        ("TABLE ", "table"),
        ("VIEW ", "view"),
        ("COLUMN ", "column"),
        ("SEQUENCE ", "sequence"),
        ("INDEX ", "index"),
        ("SCHEMA ", "schema"),
        ("FUNCTION ", "function"),
        ("PROCEDURE ", "procedure"),
        ("TYPE ", "type"),
    ] {
        if let Some(target) = name.strip_prefix(word) {
            return (kind, target);
        }
    }
    ("", name)
}

/// Where a remade type's old copy waits: `app.mood` → `app.mood__old`.
fn aside(name: &str) -> String {
    let (schema, local) = name.rsplit_once('.').unwrap_or(("", name));
    let moved = ident(&format!("{}__old", unquote(local)));
    if schema.is_empty() {
        moved
    } else {
        format!("{schema}.{moved}")
    }
}

/// Whether `b` is the enum `a` with labels added, the old ones in the same
/// order.
fn enum_grows(a: &Object, b: &Object) -> bool {
    if a.text("type") != Some("e") || b.text("type") != Some("e") {
        return false;
    }
    let (old, new) = (a.list("labels"), b.list("labels"));
    let kept: Vec<&String> = new.iter().filter(|l| old.contains(l)).collect();
    kept.len() == old.len() && kept.iter().zip(&old).all(|(k, o)| *k == o) && new.len() > old.len()
}

/// The privileges each grantee other than the owner holds, by name
/// (`SELECT`, `EXECUTE`, ...; `SELECT*` with its grant option); without an ACL, the defaults: `EXECUTE` for
/// `PUBLIC` on a routine, nothing otherwise.
fn privileges(target: &str, grant: Option<&Object>) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let Some(grant) = grant else {
        if target.starts_with("FUNCTION ") || target.starts_with("PROCEDURE ") {
            out.entry("PUBLIC".into())
                .or_default()
                .insert("EXECUTE".to_owned());
        }
        return out;
    };
    let owner = grant.text("owner").unwrap_or_default();
    for item in grant.list("acl") {
        let Some((grantee, rest)) = item.split_once('=') else {
            continue;
        };
        let privs = rest.split('/').next().unwrap_or_default();
        let grantee = if grantee.is_empty() {
            "PUBLIC".to_owned()
        } else {
            grantee.to_owned()
        };
        if grantee == owner || grantee.trim_matches('"') == owner {
            continue;
        }
        let set = out.entry(grantee).or_default();
        let mut chars = privs.chars().peekable();
        while let Some(c) = chars.next() {
            let name = match c {
                'r' => "SELECT",
                'a' => "INSERT",
                'w' => "UPDATE",
                'd' => "DELETE",
                'D' => "TRUNCATE",
                'x' => "REFERENCES",
                't' => "TRIGGER",
                'X' => "EXECUTE",
                'U' => "USAGE",
                'C' => "CREATE",
                'c' => "CONNECT",
                'T' => "TEMPORARY",
                'm' => "MAINTAIN",
                _ => continue,
            };
            // `r*`: granted with its grant option.
            let option = chars.next_if_eq(&'*').map_or("", |_| "*");
            set.insert(format!("{name}{option}"));
        }
    }
    out
}

/// The `wanted` views in creation order: each after the views it reads.
fn order(views: &[&Object], wanted: &BTreeSet<String>) -> Vec<String> {
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    fn visit(
        name: &str,
        views: &[&Object],
        wanted: &BTreeSet<String>,
        done: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        if !done.insert(name.to_owned()) {
            return;
        }
        if let Some(v) = views.iter().find(|v| v.name == name) {
            for r in v.list("reads") {
                visit(&r, views, wanted, done, out);
            }
        }
        if wanted.contains(name) {
            out.push(name.to_owned());
        }
    }
    for name in wanted {
        visit(name, views, wanted, &mut done, &mut out);
    }
    out
}

impl Catalog {
    /// A view or a materialized view of this name.
    fn get_view(&self, name: &str) -> Option<&Object> {
        self.get("view", name)
            .or_else(|| self.get("materialized view", name))
    }
}
