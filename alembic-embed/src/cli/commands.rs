//! The database commands, written once for `cargo alembic` and for an
//! embedded `migrate`: `upgrade`, `downgrade`, `stamp`, `current`,
//! `accept` and `history`. A front end gives a chain source (files, or the
//! chain in the binary), the settings and URL ([`Database`]), and an
//! [`Output`] (text, or the CLI's JSON and progress bar); errors come back
//! as one [`CommandError`] with one exit-code mapping.

use std::ops::Deref;
use std::sync::Mutex;

use alembic_chain::display::{listing, log_entry, HISTORY_STYLE};
use alembic_chain::{LoadError, LoadHelp, Resolver, RevisionMap};

use super::args::{
    AcceptArgs, CurrentArgs, DowngradeArgs, HistoryArgs, RunFlags, StampArgs, UpgradeArgs,
};
use crate::engine::{Current, Direction, Engine, Report, Session, Settings, Status, Step};
use crate::errors::{exit_codes, EngineError};
use crate::runner::Runner;
use crate::tls::ConnectError;

/// Why a database command stopped.
#[derive(Debug)]
pub enum CommandError {
    /// The engine refused or failed.
    Engine(EngineError),
    /// The database could not be reached.
    Connect(ConnectError),
    /// The chain's files do not load.
    Load(LoadError),
    /// The command was used wrongly (exit 2).
    Usage {
        /// What is wrong.
        message: String,
        /// What to do instead.
        help: Option<String>,
    },
    /// The command ran and found a problem (exit 1).
    Failed {
        /// What is wrong.
        message: String,
        /// What to do about it.
        help: Option<String>,
    },
    /// Standard output could not be written.
    Output(std::io::Error),
}

impl CommandError {
    /// The exit code (CONTRACT section 5): 2 for bad usage, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Engine(e) => e.exit_code(),
            CommandError::Connect(e) => e.exit_code(),
            CommandError::Usage { .. } => exit_codes::USAGE,
            CommandError::Load(_) | CommandError::Failed { .. } | CommandError::Output(_) => {
                exit_codes::FAILED
            }
        }
    }

    /// The message and the advice, for a front end without diagnostics.
    pub fn message_and_help(&self) -> (String, Option<String>) {
        match self {
            CommandError::Engine(e) => (e.to_string(), None),
            CommandError::Connect(e) => (e.to_string(), None),
            CommandError::Load(e) => (e.located(), None),
            CommandError::Usage { message, help } | CommandError::Failed { message, help } => {
                (message.clone(), help.clone())
            }
            CommandError::Output(e) => (format!("cannot write to stdout: {e}"), None),
        }
    }
}

impl From<EngineError> for CommandError {
    fn from(e: EngineError) -> Self {
        CommandError::Engine(e)
    }
}

impl From<ConnectError> for CommandError {
    fn from(e: ConnectError) -> Self {
        CommandError::Connect(e)
    }
}

impl From<LoadError> for CommandError {
    fn from(e: LoadError) -> Self {
        CommandError::Load(e)
    }
}

/// Where a command's chain comes from: revision files, loaded per command,
/// or the chain compiled into the binary.
pub trait ChainSource: Sync {
    /// The loaded chain.
    type Map: Deref<Target = RevisionMap>;

    /// Loads (or hands out) the chain.
    fn load(&self) -> Result<Self::Map, CommandError>;

    /// Loads the chain while another thread connects to the database
    /// (a local server starts a backend for it meanwhile): a source that
    /// reads files leaves that work a core, lets that thread join through
    /// `help` once it has read the database's state, and computes the
    /// checksums the run verifies.
    fn load_beside_connection(&self, help: &LoadHelp) -> Result<Self::Map, CommandError> {
        let _ = help;
        self.load()
    }

    /// Disposes of the chain at the end of a run (the CLI leaves a large
    /// one to the operating system when the process ends right after).
    fn discard(&self, map: Self::Map) {
        drop(map);
    }
}

impl ChainSource for Runner {
    type Map = &'static RevisionMap;

    fn load(&self) -> Result<&'static RevisionMap, CommandError> {
        Ok(self.chain().map()?)
    }
}

/// The database side of a command: the engine's settings and the URL.
pub struct Database<'a> {
    /// The engine's settings (the flags of `upgrade`/`downgrade` are applied
    /// on top).
    pub settings: Settings,
    /// The database URL, if one was given.
    pub url: Option<&'a str>,
    /// What to do when there is none (how this front end takes a URL).
    pub no_url_help: String,
    /// A connection kept from one command to the next on the same database
    /// (a fleet worker's, for its next tenant): taken when it is open, and
    /// put back, reset, only after a command that succeeded. `None`: each
    /// command connects and closes.
    pub reuse: Option<&'a Mutex<Option<postgres::Client>>>,
}

/// What `DISCARD ALL` resets, but the prepared statements the client keeps:
/// the next command on a kept connection finds a new session's state, not
/// what a revision's `SET`, `SET ROLE`, temporary table or lock left.
const RESET_SESSION: &str = "CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; UNLISTEN *; \
                             SELECT pg_catalog.pg_advisory_unlock_all(); DISCARD PLANS; DISCARD TEMP; DISCARD SEQUENCES";

impl Database<'_> {
    /// Connects (TLS as libpq's `sslmode` says), or takes the kept
    /// connection.
    pub fn connect(&self) -> Result<postgres::Client, CommandError> {
        if let Some(slot) = self.reuse {
            let kept = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(client) = kept.filter(|c| !c.is_closed()) {
                return Ok(client);
            }
        }
        let url = self.url.ok_or_else(|| CommandError::Usage {
            message: "no database URL".into(),
            help: Some(self.no_url_help.clone()),
        })?;
        Ok(crate::tls::connect(url)?)
    }

    /// Hands a connection back after a command that succeeded: kept, reset,
    /// when the front end reuses connections; otherwise closed.
    fn done_with(&self, mut client: postgres::Client) {
        if let Some(slot) = self.reuse {
            if client.batch_execute(RESET_SESSION).is_ok() {
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(client);
            }
        }
    }

    fn settings_for(&self, per_migration: bool, tag: Option<&String>) -> Settings {
        let mut settings = self.settings.clone();
        settings.transaction_per_migration |= per_migration;
        if let Some(tag) = tag {
            settings.tag = Some(tag.clone());
        }
        settings
    }

    /// Reads the database's state (no lock, no writes).
    pub fn read_current(&self, map: &RevisionMap) -> Result<Current, CommandError> {
        let mut client = self.connect()?;
        let current = Engine::new(map, self.settings.clone()).current(&mut client)?;
        self.done_with(client);
        Ok(current)
    }
}

/// What a report is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ran {
    /// An `upgrade` or a `downgrade`.
    Run(Direction),
    /// A `stamp`.
    Stamp,
}

/// Where a command's results go. The provided methods write Alembic's
/// text; the CLI overrides them for JSON and its progress bar.
pub trait Output {
    /// Writes text to standard output.
    fn text(&mut self, text: &str) -> Result<(), CommandError>;

    /// A warning or note, on standard error.
    fn note(&mut self, line: &str) {
        eprintln!("{line}");
    }

    /// After each revision of a run.
    fn step(&mut self, step: &Step) {
        // A closed pipe must not stop a run half way: the report says the rest.
        let _ = self.text(&format!("{}\n", step_line(step)));
    }

    /// A run's or a stamp's report.
    fn report(
        &mut self,
        report: &Report,
        ran: Ran,
        _tag: Option<&str>,
    ) -> Result<(), CommandError> {
        write_report(self, report, ran)
    }

    /// `current`: the rows, and a note on unverified revisions.
    fn current(&mut self, view: &CurrentView<'_>) -> Result<(), CommandError> {
        write_current(self, view)
    }

    /// `history`'s listing.
    fn history(&mut self, view: &HistoryView<'_>) -> Result<(), CommandError> {
        self.text(&view.text())
    }
}

/// A report as text: a run's notes (on stderr) and closing line, or a
/// stamp's line.
pub fn write_report<O: Output + ?Sized>(
    out: &mut O,
    report: &Report,
    ran: Ran,
) -> Result<(), CommandError> {
    let line = match ran {
        Ran::Run(direction) => {
            for note in report.notes() {
                out.note(&note);
            }
            report.summary(direction.word())
        }
        Ran::Stamp => report.stamped(),
    };
    out.text(&format!("{line}\n"))
}

/// `current` as text: the rows, and a note on unverified revisions.
pub fn write_current<O: Output + ?Sized>(
    out: &mut O,
    view: &CurrentView<'_>,
) -> Result<(), CommandError> {
    out.text(&view.engine.current_text(view.current, view.verbose))?;
    let unverified = &view.status.unverified;
    if !unverified.is_empty() {
        out.note(&format!(
            "note: {} applied revision{} without a ledger row, not verified: {}",
            unverified.len(),
            plural(unverified.len()),
            unverified.join(", ")
        ));
    }
    Ok(())
}

/// Alembic's line for a revision run, with its time.
pub fn step_line(step: &Step) -> String {
    format!(
        "{} ({:.0} ms)",
        step.description,
        step.duration.as_secs_f64() * 1000.0
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// What `current` shows.
pub struct CurrentView<'a> {
    /// The engine, for its text forms.
    pub engine: &'a Engine<'a>,
    /// The rows and the ledger.
    pub current: &'a Current,
    /// The state against the chain.
    pub status: &'a Status,
    /// `--verbose`.
    pub verbose: bool,
}

/// What `history` shows.
pub struct HistoryView<'a> {
    /// The chain.
    pub map: &'a RevisionMap,
    /// The revisions to list, newest first.
    pub revisions: &'a [usize],
    /// `--verbose`.
    pub verbose: bool,
    /// The database's state, with `--indicate-current`.
    pub current: Option<&'a Current>,
}

impl HistoryView<'_> {
    /// Alembic's text: one line per revision, the current ones marked; or
    /// each revision in full, with its ledger record when the database was
    /// read.
    pub fn text(&self) -> String {
        match self.current {
            Some(current) if self.verbose => {
                let mut out = String::new();
                for &i in self.revisions {
                    out.push_str(&log_entry(self.map, i));
                    out.push_str(&current.record_text(self.map, i));
                    out.push('\n');
                }
                out
            }
            current => listing(
                self.map,
                self.revisions,
                self.verbose,
                HISTORY_STYLE,
                current.map(|c| c.known.as_slice()),
            ),
        }
    }
}

/// `upgrade`.
pub fn upgrade<S: ChainSource>(
    db: &Database<'_>,
    source: &S,
    out: &mut dyn Output,
    args: &UpgradeArgs,
) -> Result<(), CommandError> {
    run(
        db,
        source,
        out,
        Direction::Upgrade,
        &args.revision,
        &args.run,
    )
}

/// `downgrade`.
pub fn downgrade<S: ChainSource>(
    db: &Database<'_>,
    source: &S,
    out: &mut dyn Output,
    args: &DowngradeArgs,
) -> Result<(), CommandError> {
    run(
        db,
        source,
        out,
        Direction::Downgrade,
        &args.revision,
        &args.run,
    )
}

fn run<S: ChainSource>(
    db: &Database<'_>,
    source: &S,
    out: &mut dyn Output,
    direction: Direction,
    revision: &str,
    flags: &RunFlags,
) -> Result<(), CommandError> {
    let settings = db.settings_for(flags.transaction_per_migration, flags.tag.as_ref());
    if flags.sql {
        let map = source.load()?;
        let engine = Engine::new(&map, settings);
        let text = match direction {
            Direction::Upgrade => engine.upgrade_sql_range(revision)?,
            Direction::Downgrade => engine.downgrade_sql_range(revision)?,
        };
        return out.text(&text);
    }
    if revision.contains(':') {
        return Err(range_needs_sql(direction.word()));
    }
    let tag = settings.tag.clone();
    let (map, mut client, session) = load_and_lock(db, source, &settings)?;
    let engine = Engine::new(&map, settings);
    let mut on_step = |step: &Step| out.step(step);
    let report = engine.run_in(&mut client, session, revision, direction, &mut on_step)?;
    let printed = out.report(&report, Ran::Run(direction), tag.as_deref());
    // Close the connection properly (or keep it); the chain may be left to
    // the operating system.
    db.done_with(client);
    drop(engine);
    source.discard(map);
    printed
}

/// Loads the chain while another thread connects and reads the database's
/// state ([`Settings::open_run`]: without the lock when the tables are
/// there; the run takes it if it has anything to do), then helps the load
/// ([`LoadHelp`]): each takes milliseconds, and a no-op `upgrade` is little
/// else. A chain that does not load is reported first (dropping the
/// connection releases a lock).
fn load_and_lock<S: ChainSource>(
    db: &Database<'_>,
    source: &S,
    settings: &Settings,
) -> Result<(S::Map, postgres::Client, Session), CommandError> {
    let help = LoadHelp::default();
    std::thread::scope(|scope| {
        let locking = scope.spawn(|| -> Result<(postgres::Client, Session), CommandError> {
            let mut client = db.connect()?;
            let session = settings.open_run(&mut client)?;
            // The state usually arrives first: the thread is awake, and
            // reads files the loader did not take yet.
            help.help();
            Ok((client, session))
        });
        let map = source.load_beside_connection(&help);
        // The checksums that the run verifies, when the source did not
        // compute them while loading.
        if let Ok(map) = &map {
            for r in map.revisions() {
                r.upgrade.checksum();
                if let Some(d) = &r.downgrade {
                    d.checksum();
                }
            }
        }
        let locked = locking
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        let map = map?;
        let (client, session) = locked?;
        Ok((map, client, session))
    })
}

/// Alembic's `from:to` given online, where a command starts from the
/// database's state.
fn range_needs_sql(command: &str) -> CommandError {
    CommandError::Usage {
        message: "a range `from:to` needs --sql".into(),
        help: Some(format!(
            "online, `{command}` starts from the database's current state"
        )),
    }
}

/// `stamp`.
pub fn stamp<S: ChainSource>(
    db: &Database<'_>,
    source: &S,
    out: &mut dyn Output,
    args: &StampArgs,
) -> Result<(), CommandError> {
    let map = source.load()?;
    let engine = Engine::new(&map, db.settings.clone());
    let targets: Vec<&str> = args.revisions.iter().map(String::as_str).collect();
    if args.sql {
        return out.text(&engine.stamp_sql_range(&targets, args.purge)?);
    }
    if targets.iter().any(|t| t.contains(':')) {
        return Err(range_needs_sql("stamp"));
    }
    let mut client = db.connect()?;
    let report = engine.stamp(&mut client, &targets, args.purge)?;
    db.done_with(client);
    out.report(&report, Ran::Stamp, args.tag.as_deref())
}

/// `current`: fails (exit 1) when an applied revision was edited since it
/// ran, after showing the state.
pub fn current<S: ChainSource>(
    db: &Database<'_>,
    source: &S,
    out: &mut dyn Output,
    args: &CurrentArgs,
) -> Result<(), CommandError> {
    let map = source.load()?;
    let current = db.read_current(&map)?;
    let engine = Engine::new(&map, db.settings.clone()).view(&current);
    if args.check_heads {
        // Alembic's `current --check-heads`: the rows must be the heads.
        let view = engine.map();
        let mut heads: Vec<&str> = view
            .heads()
            .iter()
            .map(|&h| view.rev(h).id.as_str())
            .collect();
        let mut rows: Vec<&str> = current.heads.iter().map(String::as_str).collect();
        heads.sort_unstable();
        rows.sort_unstable();
        if heads != rows {
            let at = if rows.is_empty() {
                "base".to_owned()
            } else {
                rows.join(", ")
            };
            return Err(CommandError::Failed {
                message: format!(
                    "the database is not on all head revisions: it is at {at}, the heads are {}",
                    heads.join(", ")
                ),
                help: Some(format!(
                    "`{} upgrade heads` applies the rest",
                    db.settings.command
                )),
            });
        }
    }
    let status = engine.status(&current)?;
    out.current(&CurrentView {
        engine: &engine,
        current: &current,
        status: &status,
        verbose: args.verbose,
    })?;
    let edited = &status.edited;
    if edited.is_empty() {
        return Ok(());
    }
    let command = &db.settings.command;
    Err(CommandError::Failed {
        message: format!(
            "applied revision{} edited since {} ran: {}",
            plural(edited.len()),
            if edited.len() == 1 { "it" } else { "they" },
            edited.join(", ")
        ),
        help: Some(format!(
            "`{command} upgrade` will refuse to run until the files are restored or the edit is accepted \
             (`{command} accept <revision> --reason \"...\"`)"
        )),
    })
}

/// `accept`, recorded as made `by` someone.
pub fn accept<S: ChainSource>(
    db: &Database<'_>,
    source: &S,
    out: &mut dyn Output,
    args: &AcceptArgs,
    by: &str,
) -> Result<(), CommandError> {
    if args.reason.trim().is_empty() {
        return Err(CommandError::Usage {
            message: "--reason must say why the edit is safe".into(),
            help: None,
        });
    }
    let map = source.load()?;
    let mut client = db.connect()?;
    let engine = Engine::new(&map, db.settings.clone());
    let accepted = engine.accept(&mut client, &args.revision, &args.reason, by)?;
    out.text(&crate::engine::accepted_text(&accepted, by))
}

/// `history`: the chain newest first, or a range; with
/// `--indicate-current`, the database's revisions marked.
pub fn history<S: ChainSource>(
    db: &Database<'_>,
    source: &S,
    out: &mut dyn Output,
    args: &HistoryArgs,
) -> Result<(), CommandError> {
    let loaded = source.load()?;
    // `current` in a range is read from the database, as Alembic does.
    let reads = args.indicate_current
        || args
            .rev_range
            .as_deref()
            .is_some_and(alembic_chain::history_reads_current);
    if reads && db.url.is_none() {
        return Err(CommandError::Usage {
            message: "no database URL: `history` reads the database's revisions for `current` and --indicate-current".into(),
            help: Some("pass --database-url or set DATABASE_URL (or put it in .env); without a database, name revisions instead of `current`".into()),
        });
    }
    let current = if reads {
        Some(db.read_current(&loaded)?)
    } else {
        None
    };
    // A database inside a squashed range sees the history it is on.
    let map: &RevisionMap = match &current {
        Some(c) => Engine::new(&loaded, db.settings.clone()).view(c).map(),
        None => &loaded,
    };
    let resolver = match &current {
        Some(c) => Resolver::with_current(map, c.known.clone()),
        None => Resolver::new(map),
    };
    let revisions = resolver
        .history(args.rev_range.as_deref())
        .map_err(EngineError::from)?;
    let shown = out.history(&HistoryView {
        map,
        revisions: &revisions,
        verbose: args.verbose,
        current: current.as_ref().filter(|_| args.indicate_current),
    });
    source.discard(loaded);
    shown
}
