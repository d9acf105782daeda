//! Splits a section into statements the way `psql` does, keeping each
//! statement's line in the file for error messages.
//!
//! Semicolons end a statement only outside single-quoted strings (`''`
//! escapes), `E'...'` strings (backslash escapes), double-quoted identifiers,
//! `--` and nested `/* */` comments, dollar-quoted bodies (`$$`, `$tag$`),
//! parentheses, and the `BEGIN ... END` body of a SQL-standard
//! `CREATE FUNCTION`/`PROCEDURE` (psql tracks the last two as well).

use crate::errors::SplitErrorKind;

/// One SQL statement of a section, without its terminating semicolon.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "tooling", derive(serde::Serialize))]
pub struct Statement {
    /// The statement text, from its first token to the end (comments inside
    /// it kept, leading comments and whitespace dropped).
    pub sql: String,
    /// The 1-based line in the revision file where the statement starts.
    pub line: usize,
}

impl Statement {
    /// The 1-based file line of a 1-based character position inside
    /// [`Statement::sql`], as PostgreSQL reports error positions.
    pub fn line_of_position(&self, position: usize) -> usize {
        let newlines = self
            .sql
            .chars()
            .take(position.saturating_sub(1))
            .filter(|&c| c == '\n')
            .count();
        self.line + newlines
    }
}

/// An unterminated construct: the 1-based line where it started and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitError {
    pub(crate) line: usize,
    /// Byte offset of the construct's start in the split text.
    pub(crate) offset: usize,
    pub(crate) kind: SplitErrorKind,
}

/// Splits `text`, whose first line is line `first_line` of its file.
pub(crate) fn split_statements(
    text: &str,
    first_line: usize,
) -> Result<Vec<Statement>, SplitError> {
    Splitter {
        b: text.as_bytes(),
        text,
        i: 0,
        line: first_line,
    }
    .run()
}

struct Splitter<'a> {
    b: &'a [u8],
    text: &'a str,
    i: usize,
    line: usize,
}

/// Tracks the leading keywords of a statement to recognise the SQL-standard
/// routine bodies (`CREATE [OR REPLACE] FUNCTION ... BEGIN ATOMIC ... END`),
/// as psql does, without allocating.
#[derive(Default)]
struct Keywords {
    /// How many leading words were seen (up to 4).
    seen: u8,
    /// The statement is `CREATE [OR REPLACE] FUNCTION|PROCEDURE`.
    routine: bool,
    /// Words so far match `CREATE OR REPLACE`.
    or_replace: bool,
    begin_depth: u32,
}

impl Keywords {
    fn push(&mut self, word: &str) {
        let is = |w: &str| word.eq_ignore_ascii_case(w);
        let routine_word = is("function") || is("procedure");
        match self.seen {
            0 => self.or_replace = is("create"),
            1 if self.or_replace => {
                self.routine = routine_word;
                self.or_replace = is("or");
            }
            2 if self.or_replace => self.or_replace = is("replace"),
            3 if self.or_replace => self.routine = routine_word,
            _ => {}
        }
        self.seen = self.seen.saturating_add(1);
        if self.routine && (is("begin") || is("case")) {
            self.begin_depth += 1;
        } else if self.begin_depth > 0 && is("end") {
            self.begin_depth -= 1;
        }
    }
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn is_ident_char(c: u8) -> bool {
    is_ident_start(c) || c.is_ascii_digit() || c == b'$'
}

impl<'a> Splitter<'a> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.b.get(self.i + ahead).copied()
    }

    /// Advances one byte, counting lines.
    fn bump(&mut self) {
        if self.b[self.i] == b'\n' {
            self.line += 1;
        }
        self.i += 1;
    }

    fn run(mut self) -> Result<Vec<Statement>, SplitError> {
        let mut out = Vec::new();
        let mut start: Option<(usize, usize)> = None;
        let mut parens: u32 = 0;
        let mut keywords = Keywords::default();
        while let Some(c) = self.peek(0) {
            if c.is_ascii_whitespace() {
                self.bump();
                continue;
            }
            if c == b'-' && self.peek(1) == Some(b'-') {
                while self.peek(0).is_some_and(|c| c != b'\n') {
                    self.bump();
                }
                continue;
            }
            if c == b'/' && self.peek(1) == Some(b'*') {
                self.block_comment()?;
                continue;
            }
            if start.is_none() {
                start = Some((self.i, self.line));
            }
            match c {
                b';' if parens == 0 && keywords.begin_depth == 0 => {
                    let (from, line) = start.take().unwrap_or((self.i, self.line));
                    let sql = self.text[from..self.i].trim_end();
                    if !sql.is_empty() {
                        out.push(Statement {
                            sql: sql.to_owned(),
                            line,
                        });
                    }
                    keywords = Keywords::default();
                    self.bump();
                }
                b'\'' => self.quoted(b'\'', false, "string")?,
                b'"' => self.quoted(b'"', false, "quoted identifier")?,
                b'(' => {
                    parens += 1;
                    self.bump();
                }
                b')' => {
                    parens = parens.saturating_sub(1);
                    self.bump();
                }
                b'$' => self.dollar()?,
                c if is_ident_start(c) => {
                    let from = self.i;
                    while self.peek(0).is_some_and(is_ident_char) {
                        self.bump();
                    }
                    let word = &self.text[from..self.i];
                    if self.peek(0) == Some(b'\'') {
                        // E'...' takes backslash escapes; U&'', B'', X'', N'' do not.
                        let escapes = word.eq_ignore_ascii_case("e");
                        self.quoted(b'\'', escapes, "string")?;
                    } else {
                        keywords.push(word);
                    }
                }
                _ => self.bump(),
            }
        }
        if let Some((from, line)) = start {
            let sql = self.text[from..].trim_end();
            if !sql.is_empty() {
                out.push(Statement {
                    sql: sql.to_owned(),
                    line,
                });
            }
        }
        Ok(out)
    }

    fn quoted(
        &mut self,
        quote: u8,
        backslash_escapes: bool,
        what: &'static str,
    ) -> Result<(), SplitError> {
        let (line, offset) = (self.line, self.i);
        self.bump();
        loop {
            match self.peek(0) {
                None => {
                    return Err(SplitError {
                        line,
                        offset,
                        kind: SplitErrorKind::Unterminated(what),
                    })
                }
                Some(b'\\') if backslash_escapes => {
                    self.bump();
                    if self.peek(0).is_some() {
                        self.bump();
                    }
                }
                Some(c) if c == quote => {
                    self.bump();
                    if self.peek(0) == Some(quote) {
                        self.bump();
                    } else {
                        return Ok(());
                    }
                }
                Some(_) => self.bump(),
            }
        }
    }

    fn block_comment(&mut self) -> Result<(), SplitError> {
        let (line, offset) = (self.line, self.i);
        let mut depth = 0u32;
        loop {
            match (self.peek(0), self.peek(1)) {
                (None, _) => {
                    return Err(SplitError {
                        line,
                        offset,
                        kind: SplitErrorKind::Unterminated("block comment"),
                    })
                }
                (Some(b'/'), Some(b'*')) => {
                    depth += 1;
                    self.bump();
                    self.bump();
                }
                (Some(b'*'), Some(b'/')) => {
                    depth -= 1;
                    self.bump();
                    self.bump();
                    if depth == 0 {
                        return Ok(());
                    }
                }
                _ => self.bump(),
            }
        }
    }

    /// At a `$`: a dollar-quoted body, or a parameter like `$1`, or a lone `$`.
    fn dollar(&mut self) -> Result<(), SplitError> {
        let rest = &self.b[self.i + 1..];
        let tag_len = match rest.first() {
            Some(&c) if is_ident_start(c) => rest
                .iter()
                .take_while(|&&c| is_ident_start(c) || c.is_ascii_digit())
                .count(),
            _ => 0,
        };
        if rest.get(tag_len) != Some(&b'$') {
            self.bump();
            return Ok(());
        }
        let delimiter = &self.text[self.i..self.i + tag_len + 2];
        let (line, offset) = (self.line, self.i);
        let body_start = self.i + delimiter.len();
        match self.text[body_start..].find(delimiter) {
            Some(end) => {
                let stop = body_start + end + delimiter.len();
                while self.i < stop {
                    self.bump();
                }
                Ok(())
            }
            None => Err(SplitError {
                line,
                offset,
                kind: SplitErrorKind::UnterminatedDollar(delimiter.to_owned()),
            }),
        }
    }
}

/// Splits a whole SQL file (a schema file, say) into statements the way
/// revision sections are split, lines counted from 1. An unterminated
/// string, comment or dollar-quoted body is `Err((line, kind))`.
pub fn split_sql(text: &str) -> Result<Vec<Statement>, (usize, SplitErrorKind)> {
    split_statements(text, 1).map_err(|e| (e.line, e.kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits and renders each statement as `line: sql` for table-driven checks.
    fn check(input: &str, expect: &[(usize, &str)]) {
        let got = split_statements(input, 1).unwrap_or_else(|e| panic!("split failed: {e:?}"));
        let got: Vec<(usize, &str)> = got.iter().map(|s| (s.line, s.sql.as_str())).collect();
        assert_eq!(got, expect, "input:\n{input}");
    }

    #[test]
    fn table() {
        let cases: &[(&str, &[(usize, &str)])] = &[
            ("", &[]),
            ("  \n-- only a comment\n/* and a block */\n", &[]),
            ("SELECT 1; SELECT 2;", &[(1, "SELECT 1"), (1, "SELECT 2")]),
            ("SELECT 1;\n\nSELECT 2", &[(1, "SELECT 1"), (3, "SELECT 2")]),
            ("SELECT 'a;b', 'it''s;';\nSELECT 2;", &[(1, "SELECT 'a;b', 'it''s;'"), (2, "SELECT 2")]),
            (r"SELECT E'a\';b';SELECT 3;", &[(1, r"SELECT E'a\';b'"), (1, "SELECT 3")]),
            // Without E, a backslash is an ordinary character (standard_conforming_strings).
            (r"SELECT 'a\';SELECT 3;", &[(1, r"SELECT 'a\'"), (1, "SELECT 3")]),
            (r#"CREATE TABLE "a;b" ("x""y;" int);"#, &[(1, r#"CREATE TABLE "a;b" ("x""y;" int)"#)]),
            ("SELECT 1 -- no; split here\n;SELECT 2;", &[(1, "SELECT 1 -- no; split here"), (2, "SELECT 2")]),
            ("-- lead; comment\nSELECT 1;", &[(2, "SELECT 1")]),
            ("SELECT /* a /* nested; */ still; */ 1;", &[(1, "SELECT /* a /* nested; */ still; */ 1")]),
            (
                "CREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$ LANGUAGE plpgsql;\nSELECT f();",
                &[(1, "CREATE FUNCTION f() RETURNS int AS $$\nBEGIN\n  RETURN 1;\nEND;\n$$ LANGUAGE plpgsql"), (6, "SELECT f()")],
            ),
            (
                "DO $a$ BEGIN PERFORM $b$;$b$; PERFORM $$;$$; END $a$;\nSELECT 2;",
                &[(1, "DO $a$ BEGIN PERFORM $b$;$b$; PERFORM $$;$$; END $a$"), (2, "SELECT 2")],
            ),
            // `$1` is a parameter and `a$b` an identifier, not dollar quotes.
            ("PREPARE p AS SELECT $1; SELECT a$b FROM t;", &[(1, "PREPARE p AS SELECT $1"), (1, "SELECT a$b FROM t")]),
            // psql does not split inside parentheses.
            ("CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));", &[(
                1,
                "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))",
            )]),
            // SQL-standard function bodies, as psql tracks them.
            (
                "CREATE OR REPLACE FUNCTION g(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n  SELECT 2;\nEND;\nSELECT 3;",
                &[
                    (
                        1,
                        "CREATE OR REPLACE FUNCTION g(x int) RETURNS int LANGUAGE sql\nBEGIN ATOMIC\n  SELECT CASE WHEN x > 0 THEN 1 ELSE 0 END;\n  SELECT 2;\nEND",
                    ),
                    (6, "SELECT 3"),
                ],
            ),
            // A transaction block outside a routine is split normally.
            ("BEGIN; SELECT 1; END;", &[(1, "BEGIN"), (1, "SELECT 1"), (1, "END")]),
            ("SELECT 'multi\nline;\nstring';\nSELECT 9;", &[(1, "SELECT 'multi\nline;\nstring'"), (4, "SELECT 9")]),
            ("SELECT 'é;ü'; SELECT 'ß';", &[(1, "SELECT 'é;ü'"), (1, "SELECT 'ß'")]),
            (";;SELECT 1;;", &[(1, "SELECT 1")]),
        ];
        for (input, expect) in cases {
            check(input, expect);
        }
    }

    #[test]
    fn first_line_offsets_lines() {
        let got = split_statements("\nSELECT 1;\n\n  SELECT\n  2;", 10).unwrap();
        assert_eq!(got.iter().map(|s| s.line).collect::<Vec<_>>(), vec![11, 13]);
        assert_eq!(got[1].line_of_position(1), 13);
        assert_eq!(got[1].line_of_position(10), 14);
    }

    #[test]
    fn unterminated_constructs_name_their_line() {
        let cases: &[(&str, usize, SplitErrorKind)] = &[
            (
                "SELECT 1;\nSELECT 'abc;\n",
                2,
                SplitErrorKind::Unterminated("string"),
            ),
            (
                "SELECT 1;\n\n/* never closed",
                3,
                SplitErrorKind::Unterminated("block comment"),
            ),
            (
                "SELECT \"x",
                1,
                SplitErrorKind::Unterminated("quoted identifier"),
            ),
            (
                "SELECT 1;\nDO $body$ BEGIN END $other$;",
                2,
                SplitErrorKind::UnterminatedDollar("$body$".into()),
            ),
        ];
        for (input, line, kind) in cases {
            let err = split_statements(input, 1).unwrap_err();
            assert_eq!((err.line, &err.kind), (*line, kind), "{input}");
        }
    }
}
