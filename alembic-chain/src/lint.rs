//! Static checks of a revision's statements: what PostgreSQL refuses in a
//! transaction (errors, in transactional revisions), and what loses data or
//! depends on it (warnings, in upgrades), silenced per revision with the
//! header key `allow: <rule>, ...`.

use crate::errors::ParseError;
use crate::revision::Revision;

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The revision cannot run as written.
    Error,
    /// The revision may lose data or fail on existing data.
    Warning,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// The rule, as `allow:` names it (`drop-table`, ...).
    pub rule: &'static str,
    /// 1-based line of the statement in the file.
    pub line: usize,
    /// What is wrong, and what to do.
    pub message: String,
}

/// Rules whose warnings `allow:` can silence.
pub const WARNING_RULES: [&str; 8] = [
    "drop-table",
    "drop-column",
    "truncate",
    "set-not-null",
    "unique-index",
    "alter-type",
    "index-lock",
    "add-constraint",
];

/// The statement's leading words, upper-cased, without punctuation.
fn words(sql: &str, n: usize) -> Vec<String> {
    sql.split(|c: char| c.is_whitespace() || c == '(' || c == ';' || c == ',')
        .filter(|w| !w.is_empty())
        .take(n)
        .map(|w| w.to_ascii_uppercase())
        .collect()
}

/// Lints one revision. Statements that do not lex are reported by the
/// parser, not here.
#[allow(clippy::result_large_err)] // the parser's error, on the cold path
pub fn lint(rev: &Revision) -> Result<Vec<Finding>, ParseError> {
    let mut out = Vec::new();
    let created = created_tables(rev.upgrade_statements()?);
    let sections = [
        (true, Some(rev.upgrade_statements()?)),
        (false, rev.downgrade_statements()?),
    ];
    for (is_upgrade, statements) in sections {
        for s in statements.into_iter().flatten() {
            let w = words(&s.sql, 12);
            let w: Vec<&str> = w.iter().map(String::as_str).collect();
            if rev.transactional {
                if let Some(what) = refused_in_transaction(&w) {
                    out.push(Finding {
                        severity: Severity::Error,
                        rule: "transaction",
                        line: s.line,
                        message: format!("`{what}` cannot run inside a transaction block; mark the revision `transactional: false`"),
                    });
                }
            }
            if !is_upgrade {
                continue;
            }
            if let Some((rule, text)) = risky(&w, &s.sql, &created) {
                if !rev.allow.iter().any(|a| a == rule) {
                    out.push(Finding {
                        severity: Severity::Warning,
                        rule,
                        line: s.line,
                        message: format!("{text}; if that is intended, add `{rule}` to the revision's `-- allow:` header line"),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Tables a revision creates (upper-cased): a unique index on them is no
/// risk.
fn created_tables(statements: &[crate::Statement]) -> Vec<String> {
    statements
        .iter()
        .filter_map(|s| {
            let w = words(&s.sql, 8);
            let at = w.iter().position(|x| x == "TABLE")?;
            (w.first().map(String::as_str) == Some("CREATE"))
                .then(|| {
                    w[at + 1..]
                        .iter()
                        .find(|x| !matches!(x.as_str(), "IF" | "NOT" | "EXISTS"))
                        .cloned()
                })
                .flatten()
        })
        .collect()
}

/// What PostgreSQL refuses inside a transaction block, by leading words.
fn refused_in_transaction(w: &[&str]) -> Option<&'static str> {
    match w {
        ["CREATE", "INDEX", "CONCURRENTLY", ..]
        | ["CREATE", "UNIQUE", "INDEX", "CONCURRENTLY", ..] => Some("CREATE INDEX CONCURRENTLY"),
        ["DROP", "INDEX", "CONCURRENTLY", ..] => Some("DROP INDEX CONCURRENTLY"),
        ["REINDEX", ..] if w.contains(&"CONCURRENTLY") => Some("REINDEX CONCURRENTLY"),
        ["VACUUM", ..] => Some("VACUUM"),
        ["ALTER", "SYSTEM", ..] => Some("ALTER SYSTEM"),
        ["CREATE", "DATABASE", ..] => Some("CREATE DATABASE"),
        ["DROP", "DATABASE", ..] => Some("DROP DATABASE"),
        ["CREATE", "TABLESPACE", ..] => Some("CREATE TABLESPACE"),
        ["DROP", "TABLESPACE", ..] => Some("DROP TABLESPACE"),
        _ => None,
    }
}

/// An upgrade statement that loses data or depends on it: the rule and
/// why.
fn risky(w: &[&str], sql: &str, created: &[String]) -> Option<(&'static str, String)> {
    let upper = sql.to_ascii_uppercase();
    match w {
        ["DROP", "TABLE", ..] => Some(("drop-table", "drops a table: its data is lost".to_owned())),
        ["TRUNCATE", ..] => Some(("truncate", "empties a table: its data is lost".to_owned())),
        ["ALTER", "TABLE", ..] if upper.contains(" DROP COLUMN ") => {
            Some(("drop-column", "drops a column: its data is lost".to_owned()))
        }
        ["ALTER", "TABLE", ..] if upper.contains(" SET NOT NULL") => Some((
            "set-not-null",
            "`SET NOT NULL` fails if existing rows hold NULL, and scans the table under a lock"
                .to_owned(),
        )),
        ["CREATE", "UNIQUE", "INDEX", ..] | ["ALTER", "TABLE", ..] if upper.contains("UNIQUE") => {
            let table = w
                .iter()
                .position(|x| *x == "ON" || *x == "TABLE")
                .and_then(|i| w.get(i + 1))
                .map(|t| t.to_string());
            match table {
                Some(t) if !created.contains(&t) && !t.is_empty() => Some((
                    "unique-index",
                    format!("a new uniqueness rule on an existing table ({}) fails if its rows hold duplicates", t.to_ascii_lowercase()),
                )),
                _ => None,
            }
        }
        _ => locks(w, &upper, created),
    }
}

/// An upgrade statement that blocks a busy existing table longer than it
/// must: the rule and why (what autogenerate writes as a hazard).
fn locks(w: &[&str], upper: &str, created: &[String]) -> Option<(&'static str, String)> {
    let table_after = |word: &str| {
        w.iter()
            .position(|x| *x == word)
            .and_then(|i| {
                w[i + 1..]
                    .iter()
                    .find(|x| !matches!(**x, "ONLY" | "IF" | "EXISTS"))
            })
            .map(|t| t.to_string())
            .filter(|t| !created.contains(t))
    };
    match w {
        ["ALTER", "TABLE", ..]
            if (upper.contains(" ALTER COLUMN ") && upper.contains(" TYPE "))
                || upper.contains(" SET DATA TYPE ") =>
        {
            let t = table_after("TABLE")?;
            Some((
                "alter-type",
                format!("changes a column's type on an existing table ({}): it can fail on a value that does not convert, and may rewrite the table under an ACCESS EXCLUSIVE lock", t.to_ascii_lowercase()),
            ))
        }
        ["CREATE", "INDEX", second, ..] if *second != "CONCURRENTLY" => {
            let t = table_after("ON")?;
            Some((
                "index-lock",
                format!("builds an index on an existing table ({}) without CONCURRENTLY: writes to it wait until it is built", t.to_ascii_lowercase()),
            ))
        }
        ["ALTER", "TABLE", ..]
            if upper.contains(" ADD CONSTRAINT ")
                && (upper.contains(" FOREIGN KEY") || upper.contains(" CHECK"))
                && !upper.contains("NOT VALID") =>
        {
            let t = table_after("TABLE")?;
            Some((
                "add-constraint",
                format!("checks every row of an existing table ({}) under a lock; add it NOT VALID, then VALIDATE CONSTRAINT", t.to_ascii_lowercase()),
            ))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(header_extra: &str, up: &str) -> Vec<(Severity, &'static str, usize)> {
        let text = format!("-- r\n-- revision: a1\n-- down_revision: None\n{header_extra}-- alembic:upgrade\n{up}\n-- alembic:downgrade\n");
        let rev = Revision::parse(std::path::Path::new("a.sql"), text.as_bytes()).unwrap();
        lint(&rev)
            .unwrap()
            .into_iter()
            .map(|f| (f.severity, f.rule, f.line))
            .collect()
    }

    #[test]
    fn table() {
        use Severity::*;
        // (extra header lines, upgrade section, expected (severity, rule, line))
        type Case<'a> = (&'a str, &'a str, &'a [(Severity, &'a str, usize)]);
        let cases: &[Case] = &[
            ("", "CREATE TABLE t (id int);", &[]),
            (
                "",
                "SELECT 1;\nCREATE INDEX CONCURRENTLY i ON t (x);",
                &[(Error, "transaction", 6)],
            ),
            (
                "-- transactional: false\n",
                "CREATE INDEX CONCURRENTLY i ON t (x);",
                &[],
            ),
            (
                "",
                "create unique index concurrently i on t (x);",
                &[(Error, "transaction", 5), (Warning, "unique-index", 5)],
            ),
            ("", "VACUUM ANALYZE t;", &[(Error, "transaction", 5)]),
            ("", "DROP TABLE t;", &[(Warning, "drop-table", 5)]),
            ("-- allow: drop-table\n", "DROP TABLE t;", &[]),
            (
                "",
                "ALTER TABLE t DROP COLUMN c;",
                &[(Warning, "drop-column", 5)],
            ),
            ("", "TRUNCATE t;", &[(Warning, "truncate", 5)]),
            (
                "",
                "ALTER TABLE t ALTER COLUMN c SET NOT NULL;",
                &[(Warning, "set-not-null", 5)],
            ),
            (
                "",
                "CREATE UNIQUE INDEX u ON users (email);",
                &[(Warning, "unique-index", 5)],
            ),
            (
                "",
                "CREATE TABLE users (id int);\nCREATE UNIQUE INDEX u ON users (email);",
                &[],
            ),
            (
                "-- allow: unique-index, set-not-null\n",
                "CREATE UNIQUE INDEX u ON users (email);",
                &[],
            ),
            (
                "",
                "ALTER TABLE t ALTER COLUMN n TYPE bigint USING n::bigint;",
                &[(Warning, "alter-type", 5)],
            ),
            (
                "",
                "CREATE TABLE t (n int);\nALTER TABLE t ALTER COLUMN n TYPE bigint;",
                &[],
            ),
            (
                "",
                "CREATE INDEX i ON ONLY t (x);",
                &[(Warning, "index-lock", 5)],
            ),
            ("", "CREATE INDEX CONCURRENTLY i ON t (x);", &[(Error, "transaction", 5)]),
            (
                "",
                "ALTER TABLE b ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES a (id);",
                &[(Warning, "add-constraint", 5)],
            ),
            (
                "",
                "ALTER TABLE b ADD CONSTRAINT fk FOREIGN KEY (a) REFERENCES a (id) NOT VALID;\nALTER TABLE b VALIDATE CONSTRAINT fk;",
                &[],
            ),
            (
                "",
                "ALTER TABLE b ADD CONSTRAINT c CHECK (n > 0);",
                &[(Warning, "add-constraint", 5)],
            ),
        ];
        for (header, up, expect) in cases {
            assert_eq!(findings(header, up), *expect, "{header}{up}");
        }
    }
}
