//! Resolved configuration (CONTRACT section 4): command-line values, then
//! the environment (and `.env`), then `[package.metadata.alembic]` or
//! `[workspace.metadata.alembic]` read from the manifests or `cargo
//! metadata`, then defaults.
//!
//! Raw flags stay in the CLI; this module turns them into one [`Config`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use crate::errors::ConfigError;
use crate::url::DatabaseUrl;

/// Keys accepted in `[package.metadata.alembic]` and
/// `[workspace.metadata.alembic]`.
pub const METADATA_KEYS: [&str; 11] = [
    "script_location",
    "version_table",
    "version_table_schema",
    "transaction_per_migration",
    "file_template",
    "database_url_env",
    "allow_multiple_heads",
    "truncate_slug_length",
    "lock_timeout",
    "statement_lock_timeout",
    "schema",
];

/// Values given on the command line; `None` means "not given".
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--script-location`.
    pub script_location: Option<PathBuf>,
    /// `--database-url`.
    pub database_url: Option<DatabaseUrl>,
    /// `--manifest-path`.
    pub manifest_path: Option<PathBuf>,
    /// `-p/--package`.
    pub package: Option<String>,
    /// `--version-table`.
    pub version_table: Option<String>,
    /// `--version-table-schema`.
    pub version_table_schema: Option<String>,
    /// `--lock-timeout`.
    pub lock_timeout: Option<Duration>,
    /// `--statement-lock-timeout`.
    pub statement_lock_timeout: Option<Duration>,
    /// Skip reading Cargo metadata when the command needs only the script
    /// location and it was given (keeps read-only commands fast).
    pub script_location_only: bool,
    /// Leave the database URL out: neither the environment nor `.env` is
    /// read (the macro and build scripts need no URL, and a broken `.env`
    /// must not break a build).
    pub without_database_url: bool,
}

/// Where a setting came from, for `--verbose` output and error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// A command-line flag.
    Flag,
    /// `[package.metadata.alembic]`.
    Package,
    /// `[workspace.metadata.alembic]`.
    Workspace,
    /// The built-in default.
    Default,
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The script location (holds `versions/`).
    pub script_location: PathBuf,
    /// Where `script_location` came from.
    pub script_location_origin: Origin,
    /// The version table's name (`alembic_version`).
    pub version_table: String,
    /// The version table's schema (`None`: the search path).
    pub version_table_schema: Option<String>,
    /// Commit each revision on its own instead of one transaction per run.
    pub transaction_per_migration: bool,
    /// The file name template of `revision` (`%(rev)s_%(slug)s`).
    pub file_template: String,
    /// Longest slug in a file name, as Alembic's `truncate_slug_length`.
    pub truncate_slug_length: usize,
    /// The environment variable holding the database URL.
    pub database_url_env: String,
    /// The database URL, if any source gave one. It prints without its
    /// password; [`DatabaseUrl::expose`] gives the whole text to a driver.
    pub database_url: Option<DatabaseUrl>,
    /// `check` accepts several heads.
    pub allow_multiple_heads: bool,
    /// How long to wait for another migrator's lock (`None`: no limit).
    pub lock_timeout: Option<Duration>,
    /// `SET lock_timeout` inside every revision (`None`: the server's).
    pub statement_lock_timeout: Option<Duration>,
    /// The cargo workspace root, when inside one.
    pub workspace_root: Option<PathBuf>,
    /// The desired schema for autogenerate: a `.sql` file or a folder of
    /// them (`schema`, relative to the workspace root).
    pub schema: Option<PathBuf>,
}

impl Config {
    /// `<script_location>/versions`.
    pub fn versions_dir(&self) -> PathBuf {
        if self.script_location == Path::new(".") {
            PathBuf::from("versions")
        } else {
            self.script_location.join("versions")
        }
    }

    /// Resolves the configuration for the current directory `cwd`.
    pub fn resolve(overrides: &Overrides, cwd: &Path) -> Result<Config, ConfigError> {
        let skip_metadata = overrides.script_location_only
            && overrides.script_location.is_some()
            && overrides.manifest_path.is_none();
        let in_cargo_project = overrides.manifest_path.is_some()
            || cwd.ancestors().any(|d| d.join("Cargo.toml").is_file());
        let found = if skip_metadata || !in_cargo_project {
            None
        } else {
            Some(read_metadata(overrides, cwd)?)
        };
        let keys = Keys {
            table: found.as_ref().map(|f| &f.table),
        };
        let string = |key: &str| keys.string(key);
        let boolean = |key: &str| keys.boolean(key);
        let duration = |key: &str| keys.duration(key);
        let (script_location, script_location_origin) = match (
            &overrides.script_location,
            string("script_location")?,
            &found,
        ) {
            (Some(flag), _, _) => (cwd.join(flag), Origin::Flag),
            (None, Some(s), Some(f)) => (f.table.base.join(s), f.table.origin),
            (None, _, Some(f)) => (f.workspace_root.join("migrations"), Origin::Default),
            (None, _, None) => (cwd.join("migrations"), Origin::Default),
        };
        let database_url_env =
            string("database_url_env")?.unwrap_or_else(|| "DATABASE_URL".to_owned());
        let workspace_root = found.as_ref().map(|f| f.workspace_root.clone());
        let database_url =
            database_url(overrides, &database_url_env, cwd, workspace_root.as_deref())?;
        let truncate_slug_length = keys.positive("truncate_slug_length")?.unwrap_or(40);
        let version_table = overrides
            .version_table
            .clone()
            .or(string("version_table")?)
            .unwrap_or_else(|| "alembic_version".to_owned());
        Ok(Config {
            script_location: normalize(&script_location, cwd),
            script_location_origin,
            version_table,
            version_table_schema: overrides
                .version_table_schema
                .clone()
                .or(string("version_table_schema")?),
            transaction_per_migration: boolean("transaction_per_migration")?,
            file_template: string("file_template")?
                .unwrap_or_else(|| "%(rev)s_%(slug)s".to_owned()),
            truncate_slug_length,
            database_url_env,
            database_url,
            allow_multiple_heads: boolean("allow_multiple_heads")?,
            lock_timeout: overrides.lock_timeout.or(duration("lock_timeout")?),
            statement_lock_timeout: overrides
                .statement_lock_timeout
                .or(duration("statement_lock_timeout")?),
            schema: string("schema")?.map(|s| workspace_root.as_deref().unwrap_or(cwd).join(s)),
            workspace_root,
        })
    }
}

/// The URL: the flag, else the environment variable, else `.env` (not read
/// at all for the macro and build scripts).
fn database_url(
    overrides: &Overrides,
    env: &str,
    cwd: &Path,
    workspace_root: Option<&Path>,
) -> Result<Option<DatabaseUrl>, ConfigError> {
    Ok(match &overrides.database_url {
        Some(url) => Some(url.clone()),
        None if overrides.without_database_url => None,
        None => match std::env::var(env) {
            Ok(url) if !url.is_empty() => Some(DatabaseUrl::new(url)),
            // Empty in `.env` as in the environment: not set.
            _ => dotenv_value(env, cwd, workspace_root)?
                .filter(|url| !url.is_empty())
                .map(DatabaseUrl::new),
        },
    })
}

/// The metadata table's values, read by type; a value of the wrong type is
/// an error naming the table and key.
struct Keys<'a> {
    table: Option<&'a Table>,
}

impl Keys<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        self.table.and_then(|t| t.values.get(key))
    }

    fn bad(&self, key: &str, reason: String) -> ConfigError {
        ConfigError::BadKey {
            table: self.table.map(|t| t.name.clone()).unwrap_or_default(),
            key: key.into(),
            reason,
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            // Every string key names something (a folder, a table, a
            // variable, a template): empty is a mistake, not a default.
            Some(Value::String(s)) if s.trim().is_empty() => Err(self.bad(
                key,
                "it is empty (leave the key out for the default)".into(),
            )),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.bad(key, format!("expected a string, found {other}"))),
        }
    }

    fn boolean(&self, key: &str) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.bad(key, format!("expected true or false, found {other}"))),
        }
    }

    fn duration(&self, key: &str) -> Result<Option<Duration>, ConfigError> {
        self.string(key)?
            .map(|text| parse_duration(&text).map_err(|reason| self.bad(key, reason)))
            .transpose()
    }

    fn positive(&self, key: &str) -> Result<Option<usize>, ConfigError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        v.as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .map(Some)
            .ok_or_else(|| self.bad(key, format!("expected a positive integer, found {v}")))
    }
}

/// A duration as written in configuration and flags: a number with a unit
/// (`500ms`, `30s`, `2min`, `1h`; `m` is minutes), or a bare number of
/// seconds. Fractions are allowed (`1.5s`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. `500ms`, `30s`, `2min`)"))?;
    let seconds = match unit.trim() {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => value,
        "ms" | "millis" | "milliseconds" => value / 1000.0,
        "m" | "min" | "mins" | "minute" | "minutes" => value * 60.0,
        "h" | "hour" | "hours" => value * 3600.0,
        other => {
            return Err(format!(
                "unknown unit `{other}` in `{text}` (ms, s, min, h)"
            ))
        }
    };
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| *d <= Duration::from_secs(100 * 24 * 3600))
        .ok_or_else(|| format!("`{text}` is out of range"))
}

/// Shows paths under the current directory relative to it, as users typed them.
fn normalize(path: &Path, cwd: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    match out.strip_prefix(cwd) {
        Ok(rel) if rel.as_os_str().is_empty() => PathBuf::from("."),
        Ok(rel) => rel.to_owned(),
        Err(_) => out,
    }
}

struct Found {
    workspace_root: PathBuf,
    table: Table,
}

struct Table {
    name: String,
    origin: Origin,
    /// Relative paths in the table are relative to this directory.
    base: PathBuf,
    values: serde_json::Map<String, Value>,
}

/// What configuration needs from a cargo workspace.
#[derive(Debug, PartialEq)]
struct Layout {
    root: PathBuf,
    /// The selected package: name, folder, its `metadata.alembic` table.
    package: Option<(String, PathBuf, Option<Value>)>,
    /// `workspace.metadata.alembic`.
    workspace_alembic: Option<Value>,
}

fn read_metadata(overrides: &Overrides, cwd: &Path) -> Result<Found, ConfigError> {
    // `cargo metadata` costs 20 to 40 ms a run. When no package or manifest
    // is named, the two manifests that matter are read directly; anything
    // the direct reading is not sure of goes to `cargo metadata`.
    let direct = if overrides.package.is_none() && overrides.manifest_path.is_none() {
        layout_from_files(cwd)
    } else {
        None
    };
    let layout = match direct {
        Some(layout) => layout,
        None => layout_from_cargo(overrides, cwd)?,
    };
    let root = layout.root.clone();
    let (name, origin, base, value) = match layout.package {
        Some((pkg, dir, Some(v))) => (
            format!("[package.metadata.alembic] of `{pkg}`"),
            Origin::Package,
            dir,
            v,
        ),
        _ => (
            "[workspace.metadata.alembic]".to_owned(),
            Origin::Workspace,
            root.clone(),
            layout.workspace_alembic.unwrap_or(Value::Null),
        ),
    };
    let values = match value {
        Value::Null => serde_json::Map::new(),
        Value::Object(map) => map,
        other => {
            return Err(ConfigError::BadKey {
                table: name,
                key: "alembic".into(),
                reason: format!("expected a table, found {other}"),
            })
        }
    };
    if let Some(key) = values.keys().find(|k| !METADATA_KEYS.contains(&k.as_str())) {
        return Err(ConfigError::UnknownKey {
            table: name,
            key: key.clone(),
            allowed: METADATA_KEYS.join(", "),
        });
    }
    Ok(Found {
        workspace_root: root,
        table: Table {
            name,
            origin,
            base,
            values,
        },
    })
}

/// The layout as `cargo metadata` reports it. Its JSON is read as a
/// `serde_json::Value`, for the few fields used: a typed model of the whole
/// output (the `cargo_metadata` crate) was 5 s of every `cargo install`.
fn layout_from_cargo(overrides: &Overrides, cwd: &Path) -> Result<Layout, ConfigError> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = std::process::Command::new(&cargo);
    cmd.args(["metadata", "--format-version", "1", "--no-deps"])
        .current_dir(cwd);
    if let Some(path) = &overrides.manifest_path {
        cmd.arg("--manifest-path").arg(cwd.join(path));
    }
    let output = cmd.output().map_err(|e| {
        ConfigError::Metadata(format!(
            "cannot run `{} metadata`: {e}",
            Path::new(&cargo).display()
        ))
    })?;
    if !output.status.success() {
        // Show cargo's own message (`error: failed to parse manifest ...`).
        return Err(ConfigError::Metadata(cargo_message(
            &String::from_utf8_lossy(&output.stderr),
        )));
    }
    let meta = metadata_json(&output.stdout)?;
    let root = PathBuf::from(meta["workspace_root"].as_str().unwrap_or_default());
    let ids: Vec<&Value> = meta["workspace_members"]
        .as_array()
        .map(|m| m.iter().collect())
        .unwrap_or_default();
    let packages: Vec<&Value> = meta["packages"]
        .as_array()
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    let manifest = |p: &Value| PathBuf::from(p["manifest_path"].as_str().unwrap_or_default());
    let dir_of = |p: &Value| {
        manifest(p)
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| root.clone())
    };
    let members: Vec<&Value> = packages
        .iter()
        .copied()
        .filter(|p| ids.contains(&&p["id"]))
        .collect();
    // Without resolved dependencies, the root package is the one whose
    // manifest is the workspace's.
    let rooted = packages
        .iter()
        .any(|p| manifest(p) == root.join("Cargo.toml"));
    let name = |p: &Value| p["name"].as_str().unwrap_or_default().to_owned();
    let selected = match &overrides.package {
        Some(wanted) => Some(
            *members
                .iter()
                .find(|p| name(p) == *wanted)
                .ok_or_else(|| ConfigError::NoSuchPackage(wanted.clone()))?,
        ),
        None => {
            // The package whose folder holds the current directory (the
            // deepest one), as cargo picks it; none at a virtual root.
            members
                .iter()
                .filter(|p| {
                    let d = dir_of(p);
                    cwd.starts_with(&d) && (d != root || rooted)
                })
                .max_by_key(|p| dir_of(p).components().count())
                .copied()
        }
    };
    let alembic = |v: &Value| v.get("alembic").filter(|a| !a.is_null()).cloned();
    Ok(Layout {
        package: selected.map(|p| (name(p), dir_of(p), alembic(&p["metadata"]))),
        workspace_alembic: alembic(&meta["metadata"]),
        root,
    })
}

/// The JSON line of `cargo metadata`'s output (cargo may print warnings
/// before it), which must name the workspace's root.
fn metadata_json(stdout: &[u8]) -> Result<Value, ConfigError> {
    let text = String::from_utf8_lossy(stdout);
    let line = text
        .lines()
        .find(|line| line.starts_with('{'))
        .ok_or_else(|| ConfigError::Metadata("`cargo metadata` printed no JSON".into()))?;
    let meta: Value = serde_json::from_str(line)
        .map_err(|e| ConfigError::Metadata(format!("`cargo metadata` printed bad JSON: {e}")))?;
    if !meta["workspace_root"].is_string() {
        return Err(ConfigError::Metadata(
            "`cargo metadata` named no workspace root".into(),
        ));
    }
    Ok(meta)
}

/// The layout read from the manifests themselves: the nearest package
/// above `cwd`, and the workspace above it. `None` when unsure (a package
/// naming its workspace, a folder outside the members, a manifest that does
/// not parse): `cargo metadata` then decides, and reports errors.
fn layout_from_files(cwd: &Path) -> Option<Layout> {
    let mut manifests: Vec<(PathBuf, toml::Table)> = Vec::new();
    for dir in cwd.ancestors() {
        let path = dir.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&path) {
            manifests.push((dir.to_owned(), text.parse::<toml::Table>().ok()?));
        }
    }
    let package = manifests.iter().find(|(_, t)| t.contains_key("package"));
    let workspace_start = package.map_or(0, |p| {
        manifests.iter().position(|m| m.0 == p.0).unwrap_or(0)
    });
    let workspace = manifests[workspace_start..]
        .iter()
        .find(|(_, t)| t.contains_key("workspace"));
    let table = |t: &toml::Table, outer: &str| -> Option<Value> {
        let alembic = t.get(outer)?.get("metadata")?.get("alembic")?;
        serde_json::to_value(alembic).ok()
    };
    let (root, ws_table) = match (workspace, package) {
        (Some((dir, t)), _) => (dir.clone(), Some(t)),
        (None, Some((dir, _))) => (dir.clone(), None),
        (None, None) => return None,
    };
    let selected = match package {
        None => None,
        Some((dir, t)) => {
            let pkg = t.get("package")?;
            if pkg.get("workspace").is_some() {
                return None;
            }
            if let Some(ws) = ws_table.and_then(|w| w.get("workspace")) {
                if *dir != root && !is_member(ws, dir.strip_prefix(&root).ok()?) {
                    return None;
                }
            }
            Some((
                pkg.get("name")?.as_str()?.to_owned(),
                dir.clone(),
                table(t, "package"),
            ))
        }
    };
    Some(Layout {
        root,
        package: selected,
        workspace_alembic: ws_table.and_then(|t| table(t, "workspace")),
    })
}

/// Whether a folder (relative to the workspace root) is listed in
/// `members` and not in `exclude`; globs as cargo takes them (`*`, `?`).
fn is_member(workspace: &toml::Value, rel: &Path) -> bool {
    let list = |key: &str| -> Vec<String> {
        workspace
            .get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let matches = |pattern: &str| {
        let pat: Vec<&str> = Path::new(pattern)
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .filter(|c| *c != ".")
            .collect();
        let got: Vec<&str> = rel
            .components()
            .filter_map(|c| c.as_os_str().to_str())
            .collect();
        pat.len() == got.len()
            && pat
                .iter()
                .zip(&got)
                .all(|(p, g)| glob(p.as_bytes(), g.as_bytes()))
    };
    list("members").iter().any(|m| matches(m))
        && !list("exclude")
            .iter()
            .any(|e| matches(e) || rel.starts_with(e))
}

/// `*` and `?` within one path component.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob(&pattern[1..], text) || (!text.is_empty() && glob(pattern, &text[1..]))
        }
        (Some(b'?'), Some(_)) => glob(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

fn cargo_message(stderr: &str) -> String {
    let text = stderr.trim();
    text.strip_prefix("error: ").unwrap_or(text).to_owned()
}

/// Reads one variable from `.env` in the current directory, else the
/// workspace root, without changing the process environment.
/// dotenvy's error without the line's text, which may hold a password.
fn dotenv_reason(e: &dotenvy::Error) -> String {
    match e {
        dotenvy::Error::LineParse(_, at) => format!(
            "a line does not parse at its character {at} (its text is not shown: it may hold a password)"
        ),
        other => other.to_string(),
    }
}

fn dotenv_value(key: &str, cwd: &Path, root: Option<&Path>) -> Result<Option<String>, ConfigError> {
    for dir in std::iter::once(cwd).chain(root) {
        let path = dir.join(".env");
        if !path.is_file() {
            continue;
        }
        let iter = dotenvy::from_path_iter(&path).map_err(|e| ConfigError::DotEnv {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        for item in iter {
            let (k, v) = item.map_err(|e| ConfigError::DotEnv {
                path: path.clone(),
                reason: dotenv_reason(&e),
            })?;
            if k == key {
                return Ok(Some(v));
            }
        }
        return Ok(None);
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace(metadata: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            format!("[workspace]\nmembers = []\n\n[workspace.metadata.alembic]\n{metadata}"),
        )
        .unwrap();
        dir
    }

    #[test]
    fn durations_read_as_people_write_them() {
        let table: &[(&str, Result<u64, &str>)] = &[
            ("30s", Ok(30_000)),
            ("30", Ok(30_000)),
            ("1.5s", Ok(1_500)),
            ("250ms", Ok(250)),
            ("2min", Ok(120_000)),
            ("2m", Ok(120_000)),
            ("1h", Ok(3_600_000)),
            (" 5 s ", Ok(5_000)),
            (
                "",
                Err("`` is not a duration (e.g. `500ms`, `30s`, `2min`)"),
            ),
            (
                "soon",
                Err("`soon` is not a duration (e.g. `500ms`, `30s`, `2min`)"),
            ),
            (
                "3 days",
                Err("unknown unit `days` in `3 days` (ms, s, min, h)"),
            ),
            (
                "1e400s",
                Err("unknown unit `e400s` in `1e400s` (ms, s, min, h)"),
            ),
            ("99999999999h", Err("`99999999999h` is out of range")),
        ];
        for (text, expected) in table {
            let got = parse_duration(text).map(|d| d.as_millis() as u64);
            assert_eq!(got, expected.map_err(str::to_owned), "{text}");
        }
    }

    #[test]
    fn database_url_precedence_flag_env_dotenv() {
        // A variable name of this test's own: tests share the process environment.
        let var = "ALEMBIC_CONFIG_TEST_URL_PRECEDENCE";
        let dir = workspace(&format!("database_url_env = \"{var}\"\n"));
        std::fs::write(
            dir.path().join(".env"),
            format!("OTHER=1\n{var}=postgres://from-dotenv/db\n"),
        )
        .unwrap();
        let resolve = |o: &Overrides| Config::resolve(o, dir.path()).unwrap();
        let none = Overrides::default();
        assert_eq!(
            resolve(&none)
                .database_url
                .as_ref()
                .map(DatabaseUrl::expose),
            Some("postgres://from-dotenv/db")
        );
        std::env::set_var(var, "postgres://from-env/db");
        assert_eq!(
            resolve(&none)
                .database_url
                .as_ref()
                .map(DatabaseUrl::expose),
            Some("postgres://from-env/db")
        );
        let flag = Overrides {
            database_url: Some("postgres://from-flag/db".into()),
            ..Overrides::default()
        };
        assert_eq!(
            resolve(&flag)
                .database_url
                .as_ref()
                .map(DatabaseUrl::expose),
            Some("postgres://from-flag/db")
        );
        std::env::remove_var(var);
        assert_eq!(resolve(&none).database_url_env, var);
    }

    /// A string key given empty is an error naming the key and its table
    /// (an empty version table failed only in the database, with a syntax
    /// error); a package's table reads `[package.metadata.alembic] of `app``.
    #[test]
    fn an_empty_string_key_is_an_error_naming_its_table() {
        for key in [
            "script_location",
            "version_table",
            "version_table_schema",
            "file_template",
            "database_url_env",
            "schema",
        ] {
            let dir = workspace(&format!("{key} = \"\"\n"));
            let err = Config::resolve(&Overrides::default(), dir.path()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "bad value for `{key}` in [workspace.metadata.alembic]: it is empty (leave the key out for the default)"
                )
            );
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\n\n[package.metadata.alembic]\nversion_table = 5\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/lib.rs"), "").unwrap();
        let err = Config::resolve(&Overrides::default(), dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad value for `version_table` in [package.metadata.alembic] of `app`: expected a string, found 5"
        );
    }

    #[test]
    fn an_empty_url_in_dotenv_is_not_set_as_in_the_environment() {
        let var = "ALEMBIC_CONFIG_TEST_URL_EMPTY";
        let dir = workspace(&format!("database_url_env = \"{var}\"\n"));
        std::fs::write(dir.path().join(".env"), format!("{var}=\n")).unwrap();
        let config = Config::resolve(&Overrides::default(), dir.path()).unwrap();
        assert_eq!(config.database_url, None);
        std::fs::write(dir.path().join(".env"), format!("{var}=''\n")).unwrap();
        let config = Config::resolve(&Overrides::default(), dir.path()).unwrap();
        assert_eq!(config.database_url, None);
    }

    #[test]
    fn dotenv_in_the_workspace_root_is_read_from_a_sub_folder() {
        let var = "ALEMBIC_CONFIG_TEST_URL_ROOT";
        let dir = workspace(&format!("database_url_env = \"{var}\"\n"));
        std::fs::write(
            dir.path().join(".env"),
            format!("{var}=postgres://root/db\n"),
        )
        .unwrap();
        let sub = dir.path().join("deep/er");
        std::fs::create_dir_all(&sub).unwrap();
        let config = Config::resolve(&Overrides::default(), &sub).unwrap();
        assert_eq!(
            config.database_url.as_ref().map(DatabaseUrl::expose),
            Some("postgres://root/db")
        );
        // script_location defaults to the workspace root, not the current folder.
        assert_eq!(
            config.script_location,
            dir.path().canonicalize().unwrap().join("migrations")
        );
    }

    #[test]
    fn metadata_values_and_their_errors() {
        let dir = workspace("version_table = \"my_versions\"\nversion_table_schema = \"ops\"\ntransaction_per_migration = true\nallow_multiple_heads = true\n");
        let config = Config::resolve(&Overrides::default(), dir.path()).unwrap();
        assert_eq!(
            (
                config.version_table.as_str(),
                config.version_table_schema.as_deref()
            ),
            ("my_versions", Some("ops"))
        );
        assert!(config.transaction_per_migration && config.allow_multiple_heads);
        assert_eq!(config.file_template, "%(rev)s_%(slug)s");
        assert_eq!(config.truncate_slug_length, 40);

        let bad = workspace("transaction_per_migration = \"yes\"\n");
        let err = Config::resolve(&Overrides::default(), bad.path()).unwrap_err();
        assert_eq!(err.to_string(), "bad value for `transaction_per_migration` in [workspace.metadata.alembic]: expected true or false, found \"yes\"");
        let bad = workspace("truncate_slug_length = 0\n");
        assert!(Config::resolve(&Overrides::default(), bad.path()).is_err());
    }

    #[test]
    fn script_location_only_skips_cargo_metadata() {
        // A broken manifest is not read when nothing from it is needed.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "this is not toml [").unwrap();
        let fast = Overrides {
            script_location: Some("db".into()),
            script_location_only: true,
            ..Overrides::default()
        };
        assert_eq!(
            Config::resolve(&fast, dir.path()).unwrap().script_location,
            PathBuf::from("db")
        );
        let full = Overrides {
            script_location: Some("db".into()),
            ..Overrides::default()
        };
        assert!(matches!(
            Config::resolve(&full, dir.path()),
            Err(ConfigError::Metadata(_))
        ));
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    fn write(root: &Path, files: &[(&str, &str)]) {
        for (path, text) in files {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
    }

    /// The direct reading agrees with `cargo metadata` wherever it answers,
    /// and answers in the common layouts.
    #[test]
    fn reading_manifests_agrees_with_cargo_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let pkg = |name: &str, meta: &str| {
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n{meta}")
        };
        write(
            &root,
            &[
                ("virtual/Cargo.toml", "[workspace]\nmembers = [\"svc\", \"crates/*\"]\nexclude = [\"crates/skip\"]\n\n[workspace.metadata.alembic]\nscript_location = \"db\"\n"),
                ("virtual/svc/Cargo.toml", &pkg("svc", "\n[package.metadata.alembic]\nscript_location = \"own\"\nversion_table = \"svc_version\"\n")),
                ("virtual/svc/src/lib.rs", ""),
                ("virtual/crates/one/Cargo.toml", &pkg("one", "")),
                ("virtual/crates/one/src/lib.rs", ""),
                ("virtual/docs/readme.txt", ""),
                ("single/Cargo.toml", &pkg("single", "\n[package.metadata.alembic]\nscript_location = \"m\"\n")),
                ("single/src/lib.rs", ""),
                ("rooted/Cargo.toml", &format!("{}\n[workspace]\nmembers = [\"sub\"]\n\n[workspace.metadata.alembic]\nfile_template = \"%(rev)s\"\n", pkg("rooted", ""))),
                ("rooted/src/lib.rs", ""),
                ("rooted/sub/Cargo.toml", &pkg("sub", "")),
                ("rooted/sub/src/lib.rs", ""),
            ],
        );
        let cases = [
            "virtual",
            "virtual/svc",
            "virtual/svc/src",
            "virtual/crates/one",
            "virtual/docs",
            "single",
            "single/src",
            "rooted",
            "rooted/sub",
        ];
        for case in cases {
            let cwd = root.join(case);
            let direct = layout_from_files(&cwd)
                .unwrap_or_else(|| panic!("{case}: the direct reading declined"));
            let cargo = layout_from_cargo(&Overrides::default(), &cwd).unwrap();
            assert_eq!(direct, cargo, "{case}");
        }
        // A member's own folder that is excluded: left to cargo.
        write(
            &root,
            &[
                ("virtual/crates/skip/Cargo.toml", &pkg("skip", "")),
                ("virtual/crates/skip/src/lib.rs", ""),
            ],
        );
        assert_eq!(layout_from_files(&root.join("virtual/crates/skip")), None);
        // A broken manifest: left to cargo, which reports it.
        write(&root, &[("broken/Cargo.toml", "[package\n")]);
        assert_eq!(layout_from_files(&root.join("broken")), None);
        match layout_from_cargo(&Overrides::default(), &root.join("broken")) {
            Err(ConfigError::Metadata(message)) => {
                assert!(message.contains("Cargo.toml"), "{message}");
                assert!(!message.starts_with("error:"), "{message}");
            }
            other => panic!("{other:?}"),
        }

        // A package or manifest named on the command line: always cargo's
        // answer, from wherever the command runs.
        let named = |package: Option<&str>, manifest: Option<&str>| Overrides {
            package: package.map(str::to_owned),
            manifest_path: manifest.map(PathBuf::from),
            ..Overrides::default()
        };
        let svc = layout_from_cargo(&named(Some("svc"), None), &root.join("virtual")).unwrap();
        assert_eq!(svc, layout_from_files(&root.join("virtual/svc")).unwrap());
        let other_dir =
            layout_from_cargo(&named(Some("sub"), Some("rooted/Cargo.toml")), &root).unwrap();
        assert_eq!(
            other_dir,
            layout_from_files(&root.join("rooted/sub")).unwrap()
        );
        assert!(matches!(
            layout_from_cargo(&named(Some("nope"), None), &root.join("virtual")),
            Err(ConfigError::NoSuchPackage(name)) if name == "nope"
        ));
    }

    #[test]
    fn cargo_metadata_output_that_is_not_its_json_is_an_error() {
        for (stdout, expected) in [
            ("", "printed no JSON"),
            ("warning: something\n{\"packages\": [", "printed bad JSON"),
            ("{\"packages\": []}", "named no workspace root"),
        ] {
            match metadata_json(stdout.as_bytes()) {
                Err(ConfigError::Metadata(message)) => {
                    assert!(message.contains(expected), "{message}")
                }
                other => panic!("{stdout:?}: {other:?}"),
            }
        }
        let meta = metadata_json(b"warning: x\n{\"workspace_root\": \"/w\"}\n").unwrap();
        assert_eq!(meta["workspace_root"], "/w");
    }

    #[test]
    fn globs() {
        assert!(glob(b"*", b"anything"));
        assert!(glob(b"crate-?", b"crate-a"));
        assert!(!glob(b"crate-?", b"crate-ab"));
        assert!(glob(b"a*c", b"abbbc"));
        assert!(!glob(b"a*c", b"abbb"));
    }

    #[test]
    fn without_database_url_a_broken_dotenv_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Cargo.toml"),
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\n\n[package.metadata.alembic]\ndatabase_url_env = \"ALEMBIC_TEST_NEVER_SET\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join(".env"),
            "ALEMBIC_TEST_NEVER_SET='unterminated\n",
        )
        .unwrap();
        let build = Overrides {
            without_database_url: true,
            ..Overrides::default()
        };
        let config = Config::resolve(&build, dir.path()).unwrap();
        assert_eq!(config.database_url, None);
        assert!(config.script_location.ends_with("migrations"));
        assert!(matches!(
            Config::resolve(&Overrides::default(), dir.path()),
            Err(ConfigError::DotEnv { .. })
        ));
    }
}
