//! The checksum of a revision section (CONTRACT section 2), one function for
//! the CLI, the embedded runtime and the compile-time macro.

use std::borrow::Cow;
use std::fmt;

use sha2::{Digest, Sha256};

/// A section checksum, rendered as `sha256:<64 lowercase hex digits>`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Checksum(Cow<'static, str>);

impl Checksum {
    /// The checksum of a section's text.
    ///
    /// The text is normalised first so that a Windows checkout or an editor
    /// that trims whitespace never changes it: CRLF and CR become LF, trailing
    /// spaces and tabs are removed from every line, and leading and trailing
    /// blank lines are removed. Everything else, comments included, counts.
    pub fn of_section(text: &str) -> Checksum {
        let mut hasher = Sha256::new();
        if text.contains('\r') {
            hash_normalized(&text.replace("\r\n", "\n").replace('\r', "\n"), &mut hasher);
        } else {
            hash_normalized(text, &mut hasher);
        }
        let digest = hasher.finalize();
        let mut out = *b"sha256:0000000000000000000000000000000000000000000000000000000000000000";
        for (pair, byte) in out[7..].chunks_exact_mut(2).zip(digest) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0x0f)];
        }
        let out = String::from_utf8(out.to_vec()).unwrap_or_default();
        Checksum(Cow::Owned(out))
    }

    /// Parses a stored checksum (`sha256:` and 64 lowercase hex digits).
    pub fn parse(text: &str) -> Option<Checksum> {
        well_formed(text).then(|| Checksum(Cow::Owned(text.to_owned())))
    }

    /// [`Checksum::parse`] of text compiled into the binary, kept where it
    /// is (an embedded chain's thousand checksums are not copied at
    /// startup).
    pub fn parse_static(text: &'static str) -> Option<Checksum> {
        well_formed(text).then_some(Checksum(Cow::Borrowed(text)))
    }

    /// The rendered form, `sha256:...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `sha256:` and 64 lowercase hex digits.
fn well_formed(text: &str) -> bool {
    // A fold, not `all`: without the early exit the loop vectorises (a
    // startup checks two thousand of these).
    text.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex.bytes().fold(true, |ok, b| {
                ok & (b.is_ascii_digit() | (b'a'..=b'f').contains(&b))
            })
    })
}

const HEX: &[u8; 16] = b"0123456789abcdef";

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Checksum({})", self.0)
    }
}

#[cfg(feature = "tooling")]
impl serde::Serialize for Checksum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Applies the normalisation rules of CONTRACT section 2.
/// Hashes `text` (LF line ends only) as normalised: each line without its
/// trailing spaces and tabs, without the blank lines at either end, lines
/// joined by LF. The normalised text is slices of `text` and LFs: where
/// nothing between two lines was trimmed it runs on in `text`, so a usual
/// section is hashed in place, in one piece, without a normalised copy (a
/// checksum is computed for every section a run verifies, and building the
/// copy first cost as much as the hash).
fn hash_normalized(text: &str, hasher: &mut Sha256) {
    // The slice of `text` not hashed yet, and whether a line was seen.
    let (mut from, mut to) = (0, 0);
    let mut started = false;
    let mut start = 0;
    for line in text.split('\n') {
        let kept = line.trim_end_matches([' ', '\t']).len();
        let at = start;
        start += line.len() + 1;
        if kept == 0 {
            continue;
        }
        if !started {
            (from, started) = (at, true);
        } else {
            // Between the last line kept and this one: LFs only when
            // nothing was trimmed, else a gap to write as its LFs.
            let gap = &text.as_bytes()[to..at];
            if gap.iter().any(|&b| b != b'\n') {
                hasher.update(&text.as_bytes()[from..to]);
                for _ in gap.iter().filter(|&&b| b == b'\n') {
                    hasher.update(b"\n");
                }
                from = at;
            }
        }
        to = at + kept;
    }
    hasher.update(&text.as_bytes()[from..to]);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The normalisation as CONTRACT section 2 states it, built as a whole
    /// string: what the streamed hash must equal.
    fn normalized(text: &str) -> String {
        let text = text.replace("\r\n", "\n").replace('\r', "\n");
        let lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.trim_end_matches([' ', '\t']))
            .collect();
        let first = lines.iter().position(|l| !l.is_empty());
        let last = lines.iter().rposition(|l| !l.is_empty());
        match (first, last) {
            (Some(first), Some(last)) => lines[first..=last].join("\n"),
            _ => String::new(),
        }
    }

    fn sha256_of(text: &str) -> String {
        let digest = Sha256::digest(text.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    }

    proptest::proptest! {
        /// Any text of lines, blanks, spaces, tabs and line ends of every
        /// kind hashes as its normalised copy does.
        #[test]
        fn the_streamed_checksum_is_the_checksum_of_the_normalised_text(
            text in "[a \t\r\n;]{0,40}"
        ) {
            let streamed = Checksum::of_section(&text);
            proptest::prop_assert_eq!(streamed.as_str(), sha256_of(&normalized(&text)));
        }
    }

    #[test]
    fn known_vector() {
        // sha256 of "SELECT 1;" computed independently (`printf 'SELECT 1;' | sha256sum`).
        assert_eq!(
            Checksum::of_section("SELECT 1;").as_str(),
            "sha256:17db4fd369edb9244b9f91d9aeed145c3d04ad8ba6e95d06247f07a63527d11a"
        );
    }

    #[test]
    fn line_endings_do_not_count() {
        let lf = "CREATE TABLE t (\n    id int\n);\n";
        let crlf = "CREATE TABLE t (\r\n    id int\r\n);\r\n";
        let cr = "CREATE TABLE t (\r    id int\r);\r";
        assert_eq!(Checksum::of_section(lf), Checksum::of_section(crlf));
        assert_eq!(Checksum::of_section(lf), Checksum::of_section(cr));
    }

    #[test]
    fn trailing_whitespace_and_blank_edges_do_not_count() {
        let a = "\n\n  \nCREATE TABLE t (id int);\t \n-- note\n\n\t\n";
        let b = "CREATE TABLE t (id int);\n-- note";
        assert_eq!(Checksum::of_section(a), Checksum::of_section(b));
    }

    #[test]
    fn everything_else_counts() {
        let base = Checksum::of_section("CREATE TABLE t (id int);");
        for edited in [
            "CREATE TABLE t (id bigint);",
            "CREATE TABLE  t (id int);",
            "CREATE TABLE t (id int);\n-- a comment",
            " CREATE TABLE t (id int);",
            "CREATE TABLE t (id int);\n\nSELECT 1;",
            "create TABLE t (id int);",
        ] {
            assert_ne!(base, Checksum::of_section(edited), "{edited:?}");
        }
        // Inner blank lines count too.
        assert_ne!(Checksum::of_section("a\nb"), Checksum::of_section("a\n\nb"));
    }

    #[test]
    fn parse_round_trip() {
        let c = Checksum::of_section("x");
        assert_eq!(Checksum::parse(c.as_str()), Some(c));
        assert_eq!(Checksum::parse("sha256:XYZ"), None);
        assert_eq!(Checksum::parse("md5:00"), None);
    }
}
