//! The desired schema as SQL: a file, or a folder whose `*.sql` files are
//! applied in sorted order; and the renames its lines declare with
//! `-- renamed from: OLD`.

use std::path::{Path, PathBuf};

use alembic_chain::{split_sql, Statement};

use crate::errors::CliError;

/// One schema file, read and split.
pub(crate) struct SchemaFile {
    /// The file as messages name it (relative to the current folder when
    /// under it).
    pub(crate) path: PathBuf,
    pub(crate) statements: Vec<Statement>,
    pub(crate) renames: Vec<Rename>,
}

/// A rename a schema file declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rename {
    /// `ALTER TABLE old RENAME TO new`: both qualified as written (an
    /// unqualified name is in `public`).
    Table { old: String, new: String },
    /// `ALTER TABLE table RENAME COLUMN old TO new` (`table` as the schema
    /// file names it).
    Column {
        table: String,
        old: String,
        new: String,
    },
}

impl Rename {
    /// The statement that renames, on the database as it was.
    pub(crate) fn forward(&self) -> String {
        match self {
            Rename::Table { old, new } => format!("ALTER TABLE {old} RENAME TO {};", local(new)),
            Rename::Column { table, old, new } => {
                format!("ALTER TABLE {table} RENAME COLUMN {old} TO {new};")
            }
        }
    }

    /// A query of two booleans: whether the old name exists, and whether
    /// the new one does.
    pub(crate) fn probe(&self) -> String {
        let lit = |t: &str| format!("'{}'", t.replace('\'', "''"));
        match self {
            Rename::Table { old, new } => format!(
                "SELECT to_regclass({}) IS NOT NULL, to_regclass({}) IS NOT NULL",
                lit(old),
                lit(new)
            ),
            Rename::Column { table, old, new } => {
                let has = |column: &str| {
                    format!(
                        "EXISTS (SELECT FROM pg_attribute WHERE attrelid = to_regclass({}) AND attname = {} AND NOT attisdropped)",
                        lit(table),
                        lit(&unquote(column))
                    )
                };
                format!("SELECT {}, {}", has(old), has(new))
            }
        }
    }

    /// The statement that undoes it.
    pub(crate) fn backward(&self) -> String {
        match self {
            Rename::Table { old, new } => format!("ALTER TABLE {new} RENAME TO {};", local(old)),
            Rename::Column { table, old, new } => {
                format!("ALTER TABLE {table} RENAME COLUMN {new} TO {old};")
            }
        }
    }
}

/// The text of an identifier as written: quoted, or folded to lower case.
fn unquote(name: &str) -> String {
    match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) => inner.replace("\"\"", "\""),
        None => name.to_lowercase(),
    }
}

/// The last part of a qualified name.
fn local(name: &str) -> &str {
    split_name(name).1
}

/// `schema.name` → (`schema`, `name`), an unqualified name in `public`;
/// dots inside double quotes are part of a name.
fn split_name(name: &str) -> (&str, &str) {
    let mut quoted = false;
    let mut last_dot = None;
    for (i, c) in name.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => last_dot = Some(i),
            _ => {}
        }
    }
    match last_dot {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => ("public", name),
    }
}

/// `name` qualified: `public.name` when it has no schema.
fn qualified(name: &str) -> String {
    let (schema, local) = split_name(name);
    format!("{schema}.{local}")
}

/// Reads the schema: a `.sql` file, or every `*.sql` file of a folder in
/// sorted order. `shown` is `path` as messages name it; a file of the
/// folder is named under it.
pub(crate) fn read(path: &Path, shown: &Path) -> Result<Vec<SchemaFile>, CliError> {
    let io = |source, p: &Path| CliError::Io {
        path: p.to_owned(),
        reason: source,
    };
    let mut files = Vec::new();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(|e| io(e, shown))? {
            let entry = entry.map_err(|e| io(e, shown))?;
            let p = entry.path();
            if p.extension().is_some_and(|e| e == "sql") && p.is_file() {
                let name = shown.join(entry.file_name());
                files.push((p, name));
            }
        }
        files.sort();
        if files.is_empty() {
            return Err(CliError::usage(
                format!("the schema folder {} has no .sql file", shown.display()),
                None,
            ));
        }
    } else if path.is_file() {
        files.push((path.to_owned(), shown.to_owned()));
    } else {
        return Err(CliError::usage(
            format!("the schema {} does not exist", shown.display()),
            Some("`schema` (in [package.metadata.alembic] or [workspace.metadata.alembic], relative to the workspace root) or --schema names a .sql file or a folder of them".into()),
        ));
    }
    files
        .into_iter()
        .map(|(p, shown)| {
            let bytes = std::fs::read(&p).map_err(|e| io(e, &shown))?;
            let text = String::from_utf8(bytes).map_err(|e| {
                CliError::failed(
                    format!(
                        "{}: not UTF-8 (at byte {})",
                        shown.display(),
                        e.utf8_error().valid_up_to()
                    ),
                    None,
                )
            })?;
            let statements = split_sql(&text).map_err(|(line, kind)| {
                CliError::failed(format!("{}:{line}: {kind}", shown.display()), None)
            })?;
            Ok(SchemaFile {
                renames: renames(&text),
                path: shown,
                statements,
            })
        })
        .collect()
}

/// The `-- renamed from: OLD` comments: on a `CREATE TABLE` line the
/// table's old name, on a line inside its column list the column's.
pub(crate) fn renames(text: &str) -> Vec<Rename> {
    let mut out = Vec::new();
    let mut table: Option<String> = None;
    for line in text.lines() {
        let (code, comment) = match line.split_once("--") {
            Some((code, comment)) => (code, Some(comment)),
            None => (line, None),
        };
        let words: Vec<&str> = code.split_whitespace().collect();
        let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
        let create = upper.iter().position(|w| w == "TABLE").filter(|&i| {
            upper.first().map(String::as_str) == Some("CREATE")
                && upper[..i]
                    .iter()
                    .all(|w| matches!(w.as_str(), "CREATE" | "UNLOGGED" | "TEMP" | "TEMPORARY"))
        });
        let old = comment
            .map(str::trim)
            .and_then(|c| c.strip_prefix("renamed from:"))
            .map(|o| o.trim().trim_end_matches(',').to_owned());
        if let Some(i) = create {
            let mut rest = &words[i + 1..];
            if rest.len() >= 3 && upper[i + 1] == "IF" {
                rest = &rest[3..];
            }
            let name = rest
                .first()
                .map(|n| n.trim_end_matches('(').to_owned())
                .unwrap_or_default();
            if let Some(old) = old {
                let (schema, _) = split_name(&name);
                let old = if old.contains('.') {
                    old
                } else {
                    format!("{schema}.{old}")
                };
                out.push(Rename::Table {
                    old,
                    new: qualified(&name),
                });
            }
            table = Some(qualified(&name));
            continue;
        }
        if code.trim_start().starts_with(')') {
            table = None;
            continue;
        }
        if let (Some(t), Some(old), Some(column)) = (&table, old, words.first()) {
            out.push(Rename::Column {
                table: t.clone(),
                old,
                new: column.trim_end_matches(',').to_owned(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_declared_on_table_and_column_lines() {
        let text = "CREATE TABLE app.people ( -- renamed from: users\n    \
                    id bigint PRIMARY KEY,\n    \
                    full_name text NOT NULL, -- renamed from: name\n    \
                    email text\n);\n\
                    CREATE TABLE IF NOT EXISTS notes ( -- renamed from: public.memos\n    \
                    body text -- renamed from: text\n);\n";
        assert_eq!(
            renames(text),
            [
                Rename::Table {
                    old: "app.users".into(),
                    new: "app.people".into()
                },
                Rename::Column {
                    table: "app.people".into(),
                    old: "name".into(),
                    new: "full_name".into()
                },
                Rename::Table {
                    old: "public.memos".into(),
                    new: "public.notes".into()
                },
                Rename::Column {
                    table: "public.notes".into(),
                    old: "text".into(),
                    new: "body".into()
                },
            ]
        );
        let r = &renames(text)[0];
        assert_eq!(r.forward(), "ALTER TABLE app.users RENAME TO people;");
        assert_eq!(r.backward(), "ALTER TABLE app.people RENAME TO users;");
        assert!(renames("CREATE TABLE t (a int); -- a note\n").is_empty());
    }
}
