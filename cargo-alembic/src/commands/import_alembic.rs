//! `import alembic PATH`: a Python Alembic project (a script location, a
//! Flask-Migrate `migrations/` folder, or an `alembic.ini`) as revision
//! files with the same ids, parents, labels and dependencies, so that a
//! production `alembic_version` stays valid (such a database is
//! "unverified" until its revisions run here).
//!
//! The SQL is rendered by Python Alembic itself, offline, for PostgreSQL,
//! one revision module after another in one Python process
//! (`import_alembic.py`, which never runs the project's `env.py`).

use std::path::{Path, PathBuf};
use std::process::Command;

use alembic_chain::{HeaderFields, Revision, RevisionMap};
use chrono::Local;
use serde::Deserialize;

use super::import::{shown, write_all};
use crate::args::ImportArgs;
use crate::errors::CliError;
use crate::output::print;
use crate::Ctx;

/// The importer, run with the project's Python.
const SCRIPT: &str = include_str!("import_alembic.py");

/// What a revision needs by hand when it cannot be rendered offline; the
/// statement that carries it stops `upgrade`, and `check` and `verify`
/// report it.
pub(crate) const MANUAL: &str = "needs its SQL written by hand (cargo alembic import)";

#[derive(Deserialize)]
struct Rendered {
    #[serde(default)]
    revisions: Vec<PyRevision>,
    error: Option<String>,
    #[serde(default)]
    message: String,
    file: Option<String>,
    line: Option<usize>,
    missing: Option<String>,
}

#[derive(Deserialize)]
struct PyRevision {
    revision: String,
    down_revision: Vec<String>,
    branch_labels: Vec<String>,
    depends_on: Vec<String>,
    message: String,
    create_date: Option<String>,
    path: PathBuf,
    relative: PathBuf,
    upgrade: Section,
    downgrade: Section,
}

#[derive(Deserialize)]
struct Section {
    sql: Option<String>,
    error: Option<String>,
    line: Option<usize>,
}

/// The Python to run: `--python`, else the active virtualenv's, else
/// `python3`.
pub(crate) fn python(args: &ImportArgs) -> PathBuf {
    if let Some(p) = &args.python {
        return p.clone();
    }
    match std::env::var_os("VIRTUAL_ENV") {
        Some(venv) if Path::new(&venv).join("bin/python").is_file() => {
            Path::new(&venv).join("bin/python")
        }
        _ => PathBuf::from("python3"),
    }
}

/// Runs the importer in `mode` and reads its JSON answer.
fn importer(ctx: &Ctx, args: &ImportArgs) -> Result<Rendered, CliError> {
    let python = python(args);
    let request = serde_json::json!({ "path": args.path }).to_string();
    let out = Command::new(&python)
        .args(["-c", SCRIPT, "render", &request])
        .current_dir(&ctx.cwd)
        .output()
        .map_err(|e| {
            CliError::failed(
                format!("cannot run {}: {e}", python.display()),
                Some("install Python 3 with Alembic, or pass --python with the project's interpreter".into()),
            )
        })?;
    serde_json::from_slice(&out.stdout).map_err(|_| {
        CliError::failed(
            format!(
                "{} did not run the importer: {}",
                python.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            None,
        )
    })
}

/// Why the importer stopped before rendering anything.
fn refusal(ctx: &Ctx, args: &ImportArgs, r: &Rendered, kind: &str) -> CliError {
    let python = python(args);
    match kind {
        "python" => CliError::failed(
            format!("{}: {}", python.display(), r.message),
            Some(format!(
                "install it: `{} -m pip install alembic`, or pass --python with the project's interpreter",
                python.display()
            )),
        ),
        "config" => CliError::usage(r.message.clone(), None),
        // As `import sqlx` of a folder without migrations.
        "empty" => CliError::failed(
            r.message.clone(),
            Some("give the script location (the folder holding env.py and versions/), the project's folder, or the alembic.ini or pyproject.toml that names it".into()),
        ),
        _ => {
            let place = match (&r.file, r.line) {
                (Some(f), Some(l)) => format!("{}:{l}: ", shown(ctx, Path::new(f))),
                (Some(f), None) => format!("{}: ", shown(ctx, Path::new(f))),
                _ => String::new(),
            };
            let help = r.missing.as_ref().map(|m| {
                format!(
                    "the revision imports `{m}`, which {} cannot find: pass --python with the project's virtualenv, or set PYTHONPATH to the application's folder",
                    python.display()
                )
            });
            CliError::failed(format!("{place}cannot load the Alembic project: {}", r.message), help)
        }
    }
}

/// Runs `import alembic`.
pub(crate) fn run(ctx: &Ctx, args: &ImportArgs) -> Result<(), CliError> {
    if !ctx.cwd.join(&args.path).exists() {
        return Err(CliError::usage(
            format!("{} does not exist", args.path.display()),
            Some(
                "give the script location (the folder holding versions/), the project's folder, or its alembic.ini or pyproject.toml".into(),
            ),
        ));
    }
    let rendered = importer(ctx, args)?;
    if let Some(kind) = &rendered.error {
        return Err(refusal(ctx, args, &rendered, kind));
    }
    let manual = unrendered(ctx, &rendered.revisions);
    if !manual.is_empty() && !args.allow_manual {
        return Err(CliError::failed(
            format!(
                "{} revision{} cannot be rendered offline: {}",
                manual.len(),
                if manual.len() == 1 { "" } else { "s" },
                manual.join("; ")
            ),
            Some("they read the database or call into the application; pass --allow-manual to import them with what did render and a marker to complete by hand (nothing was written)".into()),
        ));
    }
    let versions = ctx.config.versions_dir();
    super::import::refuse_existing(&versions)?;
    let (files, map) = render(ctx, &versions, &rendered.revisions)?;
    if args.check {
        prove(ctx, args, &map)?;
    }
    write_all(&files)?;
    for line in &manual {
        eprintln!("warning: {line}: write its SQL by hand (its file says where)");
    }
    let heads: Vec<&str> = rendered
        .revisions
        .iter()
        .filter(|r| {
            !rendered
                .revisions
                .iter()
                .any(|c| c.down_revision.contains(&r.revision))
        })
        .map(|r| r.revision.as_str())
        .collect();
    print(&format!(
        "Imported {} Alembic revision{} into {}; head{}: {}\n",
        rendered.revisions.len(),
        if rendered.revisions.len() == 1 {
            ""
        } else {
            "s"
        },
        versions.display(),
        if heads.len() == 1 { "" } else { "s" },
        heads.join(", ")
    ))
}

/// The revisions that did not render, each with its file, line and reason.
fn unrendered(ctx: &Ctx, revisions: &[PyRevision]) -> Vec<String> {
    let mut out = Vec::new();
    for r in revisions {
        for (direction, s) in [("upgrade", &r.upgrade), ("downgrade", &r.downgrade)] {
            if let Some(error) = &s.error {
                out.push(format!(
                    "revision {} {direction} ({}{}): {error}",
                    r.revision,
                    shown(ctx, &r.path),
                    s.line.map_or_else(String::new, |l| format!(":{l}"))
                ));
            }
        }
    }
    out
}

/// A section's text: the rendered SQL, and for one that did not render,
/// the marker statement with where and why.
fn section_text(r: &PyRevision, s: &Section, direction: &str, source: &str) -> String {
    let mut text = s.sql.clone().unwrap_or_default();
    if let Some(error) = &s.error {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str(&format!(
            "-- cargo alembic import: the {direction} of {source}{} could not be rendered offline ({error}).\n\
             -- Write its SQL here, then remove the statement below.\n\
             DO $$ BEGIN RAISE EXCEPTION 'revision {} {MANUAL}'; END $$;\n",
            s.line.map_or_else(String::new, |l| format!(" (line {l})")),
            r.revision,
        ));
    }
    text
}

/// The revision files, checked as the chain will load them.
type Files = Vec<(PathBuf, String)>;

fn render(
    ctx: &Ctx,
    versions: &Path,
    revisions: &[PyRevision],
) -> Result<(Files, RevisionMap), CliError> {
    let now = Local::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    let mut files = Vec::new();
    let mut parsed = Vec::new();
    for r in revisions {
        let source = shown(ctx, &r.path);
        let mut text = Revision::render_header(&HeaderFields {
            message: &r.message,
            id: &r.revision,
            down_revisions: &r.down_revision,
            branch_labels: &r.branch_labels,
            depends_on: &r.depends_on,
            create_date: r.create_date.as_deref().unwrap_or(&now),
            transactional: true,
            replaces: &[],
        });
        text.push_str(&format!("-- Imported from Alembic ({source}).\n"));
        text.push_str("\n-- alembic:upgrade\n");
        text.push_str(&section_text(r, &r.upgrade, "upgrade", &source));
        if r.downgrade.sql.is_some() || r.downgrade.error.is_some() {
            text.push_str("\n-- alembic:downgrade\n");
            text.push_str(&section_text(r, &r.downgrade, "downgrade", &source));
        }
        let path = versions.join(r.relative.with_extension("sql"));
        let rev = match Revision::parse(&path, text.as_bytes()) {
            Ok(rev) => rev.lex().map(|()| rev),
            Err(e) => Err(e),
        }
        .map_err(|e| {
            CliError::failed(
                format!(
                    "{source}: its rendered SQL does not load here: {}",
                    e.located()
                ),
                None,
            )
        })?;
        parsed.push(rev);
        files.push((path, text));
    }
    let map = RevisionMap::new(parsed)?;
    Ok((files, map))
}

/// Python Alembic applying revisions online, one request a line.
struct Online {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    ok: bool,
    error: Option<String>,
    message: Option<String>,
    line: Option<usize>,
}

impl Online {
    fn start(ctx: &Ctx, args: &ImportArgs, url: &str) -> Result<Online, CliError> {
        use std::process::Stdio;
        let python = python(args);
        let request = serde_json::json!({ "path": args.path, "url": url }).to_string();
        let mut child = Command::new(&python)
            .args(["-c", SCRIPT, "apply", &request])
            .current_dir(&ctx.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| CliError::failed(format!("cannot run {}: {e}", python.display()), None))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(CliError::failed("cannot talk to the importer", None));
        };
        let mut online = Online {
            child,
            stdin,
            stdout: std::io::BufReader::new(stdout),
        };
        let ready = online.answer()?;
        if let Some(kind) = ready.error {
            let message = ready.message.unwrap_or_default();
            let help = (kind == "connect").then(|| {
                format!("`import --check` runs the Python revisions through SQLAlchemy: `{} -m pip install psycopg2-binary`", python.display())
            });
            return Err(CliError::failed(
                format!("Python Alembic cannot run the revisions: {message}"),
                help,
            ));
        }
        Ok(online)
    }

    fn answer(&mut self) -> Result<Answer, CliError> {
        use std::io::BufRead;
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| CliError::failed(format!("the importer stopped: {e}"), None))?;
        serde_json::from_str(&line)
            .map_err(|_| CliError::failed("the importer stopped without an answer", None))
    }

    /// Runs one revision's upgrade or downgrade; the error, if any.
    fn run(&mut self, revision: &str, direction: &str) -> Result<Option<String>, CliError> {
        use std::io::Write;
        let request = serde_json::json!({ "revision": revision, "direction": direction });
        writeln!(self.stdin, "{request}")
            .map_err(|e| CliError::failed(format!("the importer stopped: {e}"), None))?;
        let answer = self.answer()?;
        Ok((!answer.ok).then(|| {
            format!(
                "{}{}",
                answer.error.unwrap_or_default(),
                answer
                    .line
                    .map_or_else(String::new, |l| format!(" (line {l})"))
            )
        }))
    }
}

impl Drop for Online {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `--check`: every revision in order, Python Alembic's online on one
/// throwaway database and the imported SQL on another, the schemas
/// compared after each; then every downgrade in reverse order the same
/// way. Nothing is written when they differ.
fn prove(ctx: &Ctx, args: &ImportArgs, map: &RevisionMap) -> Result<(), CliError> {
    use alembic_embed::cli_engine::Engine;
    use alembic_embed::Direction;
    let failed = |e: &dyn std::fmt::Display| CliError::failed(e.to_string(), None);
    let choice = match &ctx.database_url_flag {
        Some(url) => alembic_throwaway::Choice::Url(url.expose().to_owned()),
        None => alembic_throwaway::Choice::Auto(None),
    };
    let server = super::database::throwaway(
        choice,
        "the import runs Alembic and the imported SQL on a throwaway PostgreSQL",
    )?;
    let (theirs, ours) = (
        server.database().map_err(|e| failed(&e))?,
        server.database().map_err(|e| failed(&e))?,
    );
    let mut python = Online::start(ctx, args, theirs.url())?;
    let connect = |url: &str| alembic_embed::tls::connect(url).map_err(|e| failed(&e));
    let (mut a, mut b) = (connect(theirs.url())?, connect(ours.url())?);
    let settings = super::database::settings(ctx);
    let skip = vec![
        settings.version_table.clone(),
        format!("{}_ledger", settings.version_table),
    ];
    let engine = Engine::new(map, settings);
    let snap = |client: &mut postgres::Client| {
        crate::snapshot::Snapshotter::prepare(client, &skip)
            .and_then(|s| s.take(client))
            .map_err(|e| failed(&e))
    };
    let mut steps: Vec<(usize, Direction)> = map
        .order()
        .iter()
        .map(|&i| (i, Direction::Upgrade))
        .collect();
    steps.extend(
        map.order()
            .iter()
            .rev()
            .filter(|&&i| map.rev(i).downgrade.is_some())
            .map(|&i| (i, Direction::Downgrade)),
    );
    let mut checked = 0;
    for (i, direction) in steps {
        let rev = map.rev(i);
        let what = format!("the {} of revision {}", direction.word(), rev.id);
        if let Some(error) = python.run(&rev.id, direction.word())? {
            return Err(CliError::failed(
                format!("Python Alembic failed on {what}: {error}"),
                Some("nothing was written".into()),
            ));
        }
        if let Err(e) = engine.step_one(&mut b, &rev.id, direction) {
            return Err(CliError::failed(
                format!("the imported SQL failed on {what}: {e}"),
                Some("nothing was written".into()),
            ));
        }
        let differs = crate::snapshot::diff(&snap(&mut a)?, &snap(&mut b)?);
        if !differs.is_empty() {
            return Err(CliError::failed(
                format!(
                    "after {what}, the imported SQL leaves another schema than Python Alembic (- only Alembic's, + only the import's):\n    {}",
                    differs.join("\n    ")
                ),
                Some("nothing was written".into()),
            ));
        }
        checked += 1;
    }
    print(&format!(
        "check: {checked} steps (every upgrade, then every downgrade) leave the same schema under Python Alembic and the imported SQL\n"
    ))
}

/// Revisions whose SQL is still to be written by hand (an `import` with
/// `--allow-manual`): (revision index, line of the marker).
pub(crate) fn manual_revisions(map: &RevisionMap) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for &i in map.order() {
        let rev = map.rev(i);
        let sections = std::iter::once(&rev.upgrade).chain(rev.downgrade.as_ref());
        for section in sections {
            if let Some(offset) = section.sql().find(MANUAL) {
                let line = section.marker_line + section.sql()[..offset].lines().count();
                out.push((i, line));
            }
        }
    }
    out
}
