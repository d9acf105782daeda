//! A database URL that never shows its password: `Debug` and `Display`
//! print it with the password replaced, so no log line, error or `dbg!` can
//! leak it. The text itself is reached only through [`DatabaseUrl::expose`].

use std::fmt;

/// A libpq URL (`postgresql://user:password@host/db?...`) or key/value
/// string (`host=h password=p`), held as given.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

/// What stands in for a password in printed URLs.
const HIDDEN: &str = "***";

impl DatabaseUrl {
    /// Wraps a URL or key/value string.
    pub fn new(text: impl Into<String>) -> Self {
        DatabaseUrl(text.into())
    }

    /// The URL as given, password included: only for handing to a driver.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password (in the authority, or as a `password`
    /// parameter or key) replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

impl From<String> for DatabaseUrl {
    fn from(text: String) -> Self {
        DatabaseUrl(text)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(text: &str) -> Self {
        DatabaseUrl(text.to_owned())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Replaces every password in a URL or key/value string. Works on any
/// text, well-formed or not: what it cannot read as a URL it treats as
/// key/value pairs, and an unterminated quoted value hides the rest.
pub fn redact(text: &str) -> String {
    if url_scheme(text.trim_start()).is_some() {
        redact_url(text)
    } else {
        redact_key_values(text)
    }
}

/// The scheme of a text that starts with one and `://` (any scheme:
/// SQLAlchemy's `postgresql+psycopg2`, another database's); `None` for a
/// key/value string, even one with `://` in a value.
pub fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let is_scheme = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    is_scheme.then_some(scheme)
}

fn redact_url(text: &str) -> String {
    let scheme_end = text.find("://").map_or(0, |p| p + 3);
    let (head, rest) = text.split_at(scheme_end);
    // The authority ends at the first `/`, `?` or `#`; the password is
    // between its first `:` and its last `@`.
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}:{HIDDEN}{}", &userinfo[..colon], &authority[at..]),
                None => authority.to_owned(),
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.find('?') {
        Some(q) => {
            let (path, query) = tail.split_at(q + 1);
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => {
                        format!("{k}={HIDDEN}")
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{head}{authority}{tail}")
}

fn redact_key_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let (before, after) = rest.split_at(eq);
        out.push_str(before);
        out.push('=');
        let after = &after[1..];
        let key = before
            .trim_end()
            .rsplit(|c: char| c.is_whitespace())
            .next()
            .unwrap_or("")
            .trim();
        let value_len = value_length(after);
        if key.eq_ignore_ascii_case("password") {
            out.push_str(HIDDEN);
        } else {
            out.push_str(&after[..value_len]);
        }
        rest = &after[value_len..];
    }
    out.push_str(rest);
    out
}

/// The length of a key/value string's value: a quoted one up to its closing
/// quote (the rest of the text if there is none), else up to white space.
fn value_length(after: &str) -> usize {
    let leading = after.len() - after.trim_start().len();
    let value = &after[leading..];
    if let Some(quoted) = value.strip_prefix('\'') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                '\\' if !escaped => escaped = true,
                '\'' if !escaped => return leading + 1 + i + 1,
                _ => escaped = false,
            }
        }
        return after.len();
    }
    leading + value.find(char::is_whitespace).unwrap_or(value.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_in_every_spelling() {
        let table: &[(&str, &str)] = &[
            (
                "postgresql://app:s3cret@db:5432/app?sslmode=require",
                "postgresql://app:***@db:5432/app?sslmode=require",
            ),
            ("postgres://app@db/app", "postgres://app@db/app"),
            (
                "postgresql://app:p@ss@w0rd@db/app",
                "postgresql://app:***@db/app",
            ),
            (
                "postgresql://db/app?user=app&password=s3cret&sslmode=require",
                "postgresql://db/app?user=app&password=***&sslmode=require",
            ),
            (
                "host=db user=app password=s3cret dbname=app",
                "host=db user=app password=*** dbname=app",
            ),
            (
                "host=db password = 's3 cr\\'et' dbname=app",
                "host=db password =*** dbname=app",
            ),
            (
                "host=db password='unterminated s3cret",
                "host=db password=***",
            ),
            ("", ""),
            // SQLAlchemy's scheme, and another database's URL.
            (
                "postgresql+psycopg2://app:s3cret@db/app",
                "postgresql+psycopg2://app:***@db/app",
            ),
            ("mysql://app:s3cret@db/app", "mysql://app:***@db/app"),
        ];
        for (given, shown) in table {
            assert_eq!(redact(given), *shown, "{given}");
            let url = DatabaseUrl::from(*given);
            assert_eq!(url.to_string(), *shown);
            assert!(!format!("{url:?}").contains("s3cret"), "{url:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn redacting_never_panics_and_never_shows_a_marked_password(
            text in "\\PC{0,60}",
            secret in "[a-z]{6,12}",
        ) {
            let _ = redact(&text);
            for url in [
                format!("postgresql://u:{secret}@h/db?{text}"),
                format!("host=h password={secret} {text}"),
                format!("postgresql://h/db?password={secret}"),
            ] {
                proptest::prop_assert!(!redact(&url).contains(&secret), "{}", url);
            }
        }
    }
}
