//! refinery's own rules for its migration files, as refinery 0.9
//! (`refinery_core`) applies them: which files are migrations, what a file
//! name says, and the checksum refinery records for a migration. Written
//! here, with refinery's own patterns, rather than linked: `refinery_core`
//! brought a date library and its own dependencies into every install for
//! three small functions. The tests compare each with `refinery_core`.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;
use siphasher::sip::SipHasher13;

/// What refinery says of a file name it cannot use.
const INVALID_NAME: &str = "migration name must be in the format V{number}__{name}";
const INVALID_VERSION: &str = "migration version must be a valid integer";

/// refinery's pattern of a migration's file stem.
const STEM: &str = r"^([U|V])(\d+(?:\.\d+)?)__(\w+)";

fn stem_pattern() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| Regex::new(STEM).expect("refinery's stem pattern"))
}

fn file_pattern() -> &'static Regex {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN.get_or_init(|| {
        Regex::new(&format!(r"{STEM}\.(rs|sql)$")).expect("refinery's file pattern")
    })
}

/// The files under `dir`, recursively, that refinery takes for
/// migrations: `V{n}__{name}.sql`, `U{n}__{name}.sql` and their `.rs`
/// forms. As refinery walks: symbolic links to folders are not followed,
/// unreadable entries are passed over, and `dir` itself must exist.
pub(super) fn migration_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.canonicalize()?];
    while let Some(folder) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_type().is_ok_and(|k| k.is_dir()) {
                stack.push(path);
            } else if !path.is_dir()
                && path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| file_pattern().is_match(n))
            {
                found.push(path);
            }
        }
    }
    Ok(found)
}

/// A migration's version and name from its file stem, as refinery's
/// `parse_migration_name` reads them; the error is refinery's message.
/// (refinery itself panics on the `|` its pattern lets through.)
pub(super) fn parse_name(stem: &str) -> Result<(i32, String), &'static str> {
    let parts = stem_pattern().captures(stem).ok_or(INVALID_NAME)?;
    if &parts[1] == "|" {
        return Err(INVALID_NAME);
    }
    let version = parts[2].parse().map_err(|_| INVALID_VERSION)?;
    Ok((version, parts[3].to_owned()))
}

/// The checksum refinery records for a migration file: SipHash-1-3 with
/// zero keys over its name, version and SQL, hashed as Rust hashes them.
pub(super) fn checksum(stem: &str, sql: &str) -> Result<u64, &'static str> {
    let (version, name) = parse_name(stem)?;
    let mut hasher = SipHasher13::new();
    name.hash(&mut hasher);
    version.hash(&mut hasher);
    sql.hash(&mut hasher);
    Ok(hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names refinery reads, refuses, or does not take for migrations.
    const NAMES: &[&str] = &[
        "V1__initial",
        "V1__initial.sql",
        "U2__add_users.sql",
        "V3__add_users.rs",
        "V10__x",
        "V01__leading_zero",
        "V1.5__fraction",
        "V1.__dot",
        "V1__two__parts",
        "V1__with-dash",
        "V1__with-dash.sql",
        "V1___underscore",
        "V1__",
        "V__no_version",
        "v1__lower",
        "X1__other",
        "|1__pipe",
        "V2147483647__max",
        "V2147483648__too_big",
        "V99999999999999999999__huge",
        "V1__naïve_ünïcode",
        "V1__cafe\u{301}_decomposed",
        "V١٢__arabic_digits",
        "V1__name.sql.bak",
        "V1__name.SQL",
        "V1__name.txt",
        "V1_single",
        "",
        "V",
        "V1",
    ];

    #[test]
    fn file_names_are_read_as_refinery_reads_them() {
        for name in NAMES {
            let stem = name.trim_end_matches(".sql").trim_end_matches(".rs");
            let ours = parse_name(stem);
            if stem.starts_with('|') {
                // refinery's pattern lets `|` through, then panics on it.
                assert_eq!(ours, Err(INVALID_NAME));
                continue;
            }
            let theirs = refinery_core::parse_migration_name(stem);
            match (&ours, &theirs) {
                (Ok((v, n)), Ok((_, tv, tn))) => assert_eq!((v, n), (tv, tn), "{name}"),
                (Err(e), Err(te)) => assert_eq!(*e, te.to_string(), "{name}"),
                _ => panic!("{name}: ours {ours:?}, refinery's {theirs:?}"),
            }
        }
    }

    #[test]
    fn the_files_taken_for_migrations_are_refinerys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("nested/deeper")).unwrap();
        for (i, name) in NAMES.iter().enumerate().filter(|(_, n)| !n.is_empty()) {
            let folder = ["", "nested", "nested/deeper"][i % 3];
            let file = match name.contains('.') && !name.starts_with("V1.") {
                true => name.to_string(),
                false => format!("{name}.sql"),
            };
            std::fs::write(dir.path().join(folder).join(file), "SELECT 1;").unwrap();
        }
        // A folder named like a migration is not one; a linked folder is
        // not entered.
        std::fs::create_dir(dir.path().join("V9__folder.sql")).unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("V77__linked.sql"), "SELECT 1;").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("linked")).unwrap();
        let mut ours = migration_files(dir.path()).unwrap();
        let mut theirs: Vec<PathBuf> =
            refinery_core::find_migration_files(dir.path(), refinery_core::MigrationType::All)
                .unwrap()
                .collect();
        ours.sort();
        theirs.sort();
        assert_eq!(ours, theirs);
        assert!(ours.len() >= 15, "{ours:?}");
        assert!(migration_files(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn checksums_are_the_ones_refinery_records() {
        let bodies = [
            "",
            "CREATE TABLE t (id int);",
            "CREATE TABLE t (id int);\n",
            "-- ünïcode\r\nSELECT 'x';",
        ];
        for name in NAMES {
            let stem = name.trim_end_matches(".sql").trim_end_matches(".rs");
            if stem.starts_with('|') {
                continue;
            }
            for body in bodies {
                let ours = checksum(stem, body);
                let theirs = refinery_core::Migration::unapplied(stem, body);
                match (&ours, &theirs) {
                    (Ok(c), Ok(m)) => assert_eq!(*c, m.checksum(), "{name} {body:?}"),
                    (Err(_), Err(_)) => {}
                    _ => panic!("{name}: ours {ours:?}, refinery's {theirs:?}"),
                }
            }
        }
    }
}
