//! Commands that use a database: `upgrade`, `downgrade`, `stamp`,
//! `current`, `accept`, and `history --indicate-current`; `--sql` prints
//! instead. They are written once, in `alembic_embed::cli_engine::commands`
//! (shared with an embedded `migrate`); this module gives them the chain
//! from files, the configuration, and the CLI's output: JSON, and a
//! progress bar on a terminal.

use std::io::IsTerminal;

use alembic_chain::display::HISTORY_STYLE;
use alembic_chain::RevisionMap;
use alembic_embed::cli_engine::commands::{
    self, ChainSource, CommandError, CurrentView, Database, HistoryView, Output, Ran,
};
use alembic_embed::cli_engine::Settings;
use alembic_embed::{EngineError, Report, Step};
use serde::Serialize;

use crate::args::{
    AcceptArgs, CurrentArgs, DowngradeArgs, EnsureVersionArgs, Format, HistoryArgs, StampArgs,
    UpgradeArgs,
};
use crate::errors::CliError;
use crate::output::{emit, to_json};
use crate::Ctx;

/// The engine's settings from the resolved configuration.
pub(crate) fn settings(ctx: &Ctx) -> Settings {
    Settings {
        version_table: ctx.config.version_table.clone(),
        version_table_schema: ctx.config.version_table_schema.clone(),
        transaction_per_migration: ctx.config.transaction_per_migration,
        tool: format!("cargo-alembic {}", env!("CARGO_PKG_VERSION")),
        lock_timeout: ctx.config.lock_timeout,
        statement_lock_timeout: ctx.config.statement_lock_timeout,
        ..Settings::default()
    }
}

/// The database side of the shared commands: the configured settings and
/// URL.
fn database(ctx: &Ctx) -> Database<'_> {
    Database {
        settings: settings(ctx),
        url: ctx.config.database_url.as_ref().map(|u| u.expose()),
        no_url_help: format!(
            "pass --database-url, set {} (or put it in .env), or use --sql to print the SQL instead",
            ctx.config.database_url_env
        ),
        reuse: None,
    }
}

/// Connects with the configured URL (TLS as libpq's `sslmode` says).
pub(crate) fn connect(ctx: &Ctx) -> Result<postgres::Client, CliError> {
    Ok(database(ctx).connect()?)
}

/// A throwaway server for `verify`, autogenerate and the importers. An
/// existing one (`--database-url`) is reached as every other connection
/// is: SQLAlchemy's scheme read as libpq's, libpq's TLS modes, the `PG*`
/// variables and the password file. `why` says what needs the server, in
/// the help line when there is none to use.
pub(crate) fn throwaway(
    choice: alembic_throwaway::Choice,
    why: &str,
) -> Result<alembic_throwaway::Server, CliError> {
    use alembic_throwaway::{Choice, Error};
    let libpq = |url: String| alembic_embed::tls::libpq_url(&url).into_owned();
    let choice = match choice {
        Choice::Url(url) => Choice::Url(libpq(url)),
        Choice::Auto(url) => Choice::Auto(url.map(libpq)),
        other => other,
    };
    let _ = alembic_throwaway::cleanup_on_interrupt();
    alembic_throwaway::Server::start_with(choice, |url| {
        alembic_embed::tls::connect(url).map_err(|e| Error::Connect(e.to_string()))
    })
    .map_err(|e| {
        let help = matches!(e, Error::NoProvider(_))
            .then(|| format!("{why}: {}", alembic_throwaway::how_to_get_a_server()));
        CliError::failed(e.to_string(), help)
    })
}

impl From<CommandError> for CliError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::Engine(EngineError::Resolve(r)) => CliError::Resolve(r),
            CommandError::Load(e) => CliError::Load(e),
            CommandError::Usage { message, help } => CliError::Usage { message, help },
            CommandError::Failed { message, help } => CliError::Failed { message, help },
            CommandError::Output(source) => CliError::Io {
                path: "stdout".into(),
                reason: source,
            },
            other => CliError::by_code(other.exit_code(), other.message_and_help().0),
        }
    }
}

/// The chain from the configured versions folder.
impl ChainSource for Ctx {
    type Map = Box<RevisionMap>;

    fn load(&self) -> Result<Box<RevisionMap>, CommandError> {
        Ok(Box::new(alembic_chain::load_versions(
            &self.config.versions_dir(),
        )?))
    }

    fn load_beside_connection(
        &self,
        help: &alembic_chain::LoadHelp,
    ) -> Result<Box<RevisionMap>, CommandError> {
        Ok(Box::new(alembic_chain::load_versions_helped(
            &self.config.versions_dir(),
            1,
            help,
        )?))
    }

    fn discard(&self, map: Box<RevisionMap>) {
        Ctx::discard(self, map);
    }
}

/// The CLI's output: Alembic's text, or JSON; a progress bar below the
/// lines of a long run on a terminal.
struct CliOutput<'a> {
    ctx: &'a Ctx,
    terminal: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl<'a> CliOutput<'a> {
    fn new(ctx: &'a Ctx) -> Self {
        CliOutput {
            ctx,
            terminal: std::io::stdout().is_terminal(),
            bar: None,
        }
    }

    fn json(&self) -> bool {
        self.ctx.format == Format::Json
    }
}

fn json_error(e: CliError) -> CommandError {
    match e {
        CliError::Io { reason, .. } => CommandError::Output(reason),
        other => CommandError::Failed {
            message: other.to_string(),
            help: None,
        },
    }
}

impl Output for CliOutput<'_> {
    fn text(&mut self, text: &str) -> Result<(), CommandError> {
        emit(text).map_err(CommandError::Output)
    }

    fn step(&mut self, s: &Step) {
        if self.ctx.format != Format::Human {
            return;
        }
        let line = commands::step_line(s);
        if self.bar.is_none() && wants_bar(self.terminal, s.total) {
            let b = indicatif::ProgressBar::with_draw_target(
                Some(s.total as u64),
                indicatif::ProgressDrawTarget::stdout(),
            );
            if let Ok(style) =
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} revisions, {elapsed}")
            {
                b.set_style(style);
            }
            self.bar = Some(b);
        }
        match &self.bar {
            Some(b) => {
                b.println(line);
                b.inc(1);
                if s.position == s.total {
                    b.finish_and_clear();
                }
            }
            None => {
                let _ = emit(&format!("{line}\n"));
            }
        }
    }

    fn report(&mut self, report: &Report, ran: Ran, tag: Option<&str>) -> Result<(), CommandError> {
        if !self.json() {
            return commands::write_report(self, report, ran);
        }
        for note in report.notes() {
            self.note(&note);
        }
        self.text(&report_json(report, tag))
    }

    fn current(&mut self, view: &CurrentView<'_>) -> Result<(), CommandError> {
        if !self.json() {
            return commands::write_current(self, view);
        }
        #[derive(Serialize)]
        struct CurrentJson<'a> {
            heads: &'a [String],
            unknown: &'a [String],
            applied: usize,
            unverified: &'a [String],
            edited: &'a [String],
            /// The `--tag` each applied revision was recorded with.
            tags: std::collections::BTreeMap<&'a str, &'a str>,
        }
        let tags = view
            .current
            .ledger
            .iter()
            .filter_map(|(id, row)| Some((id.as_str(), row.tag()?)))
            .collect();
        self.text(&to_json(&CurrentJson {
            heads: &view.status.heads,
            unknown: &view.status.unknown,
            applied: view.status.applied.len(),
            unverified: &view.status.unverified,
            edited: &view.status.edited,
            tags,
        }))
    }

    fn history(&mut self, view: &HistoryView<'_>) -> Result<(), CommandError> {
        if !self.json() {
            return self.text(&view.text());
        }
        super::inspect::print_list(
            self.ctx,
            view.map,
            view.revisions,
            view.verbose,
            HISTORY_STYLE,
        )
        .map_err(json_error)
    }
}

/// A report as JSON.
fn report_json(report: &Report, tag: Option<&str>) -> String {
    #[derive(Serialize)]
    struct StepJson<'a> {
        revision: &'a str,
        description: &'a str,
        duration_ms: f64,
    }
    #[derive(Serialize)]
    struct ReportJson<'a> {
        before: &'a [String],
        after: &'a [String],
        steps: Vec<StepJson<'a>>,
        unverified: &'a [String],
        warnings: Vec<String>,
        /// `--tag`, recorded with each revision applied.
        #[serde(skip_serializing_if = "Option::is_none")]
        tag: Option<&'a str>,
    }
    let steps = report
        .steps
        .iter()
        .map(|s| StepJson {
            revision: &s.revision,
            description: &s.description,
            duration_ms: s.duration.as_secs_f64() * 1000.0,
        })
        .collect();
    to_json(&ReportJson {
        before: &report.before,
        after: &report.after,
        steps,
        unverified: &report.unverified,
        warnings: report.warnings.iter().map(ToString::to_string).collect(),
        tag,
    })
}

/// Runs at least this long get a progress bar (on a terminal).
const BAR_FROM: usize = 20;

/// Whether a run shows a progress bar: on a terminal, and long.
pub(crate) fn wants_bar(stdout_is_terminal: bool, total: usize) -> bool {
    stdout_is_terminal && total >= BAR_FROM && !crate::output::quiet()
}

/// Runs `upgrade`.
pub(crate) fn upgrade(ctx: &Ctx, args: &UpgradeArgs) -> Result<(), CliError> {
    Ok(commands::upgrade(
        &database(ctx),
        ctx,
        &mut CliOutput::new(ctx),
        args,
    )?)
}

/// Runs `downgrade`.
pub(crate) fn downgrade(ctx: &Ctx, args: &DowngradeArgs) -> Result<(), CliError> {
    Ok(commands::downgrade(
        &database(ctx),
        ctx,
        &mut CliOutput::new(ctx),
        args,
    )?)
}

/// Runs `stamp`.
pub(crate) fn stamp(ctx: &Ctx, args: &StampArgs) -> Result<(), CliError> {
    Ok(commands::stamp(
        &database(ctx),
        ctx,
        &mut CliOutput::new(ctx),
        args,
    )?)
}

/// Runs `current`.
pub(crate) fn current(ctx: &Ctx, args: &CurrentArgs) -> Result<(), CliError> {
    Ok(commands::current(
        &database(ctx),
        ctx,
        &mut CliOutput::new(ctx),
        args,
    )?)
}

/// Runs `history`.
pub(crate) fn history(ctx: &Ctx, args: &HistoryArgs) -> Result<(), CliError> {
    Ok(commands::history(
        &database(ctx),
        ctx,
        &mut CliOutput::new(ctx),
        args,
    )?)
}

/// Runs `ensure_version`: creates the version table and the ledger where
/// they are missing, under the migration lock (as the first `upgrade`
/// would); with `--sql`, prints their `CREATE TABLE IF NOT EXISTS`.
pub(crate) fn ensure_version(ctx: &Ctx, args: &EnsureVersionArgs) -> Result<(), CliError> {
    let db = database(ctx);
    if args.sql {
        return crate::output::print(&db.settings.create_tables_sql());
    }
    let mut client = db.connect()?;
    db.settings
        .open_session(&mut client)
        .map_err(CommandError::from)?
        .release(&mut client);
    crate::output::print(&format!(
        "{} and {} are in place\n",
        db.settings.version_table_sql(),
        db.settings.ledger_table_sql()
    ))
}

/// `show current`: the database's revisions, shown as `show` shows
/// revisions (as Alembic's `show current` does).
pub(crate) fn show_current(ctx: &Ctx) -> Result<(), CliError> {
    let loaded = ctx.load()?;
    let current = read_current(ctx, &loaded)?;
    super::inspect::print_list(
        ctx,
        current.map,
        &current.known,
        true,
        alembic_chain::display::LineStyle::default(),
    )?;
    current.all_known()
}

/// The database's rows as revisions of a chain (`show current`, `edit
/// current`).
pub(crate) struct CurrentRevisions<'m> {
    /// The chain the rows index: a database inside a squashed range sees
    /// the history it is on.
    pub(crate) map: &'m RevisionMap,
    /// The rows that are revisions of it.
    pub(crate) known: Vec<usize>,
    unknown: Vec<String>,
}

impl CurrentRevisions<'_> {
    /// An error for rows no revision file names.
    pub(crate) fn all_known(&self) -> Result<(), CliError> {
        match self.unknown.as_slice() {
            [] => Ok(()),
            unknown => Err(CliError::failed(
                format!(
                    "the database is {}at {}, which no revision file here names",
                    if self.known.is_empty() { "" } else { "also " },
                    unknown.join(", ")
                ),
                Some(
                    "the database is ahead of this chain: check out the branch that wrote it"
                        .to_owned(),
                ),
            )),
        }
    }
}

/// Reads the database's rows against `loaded`.
pub(crate) fn read_current<'m>(
    ctx: &Ctx,
    loaded: &'m RevisionMap,
) -> Result<CurrentRevisions<'m>, CliError> {
    let db = database(ctx);
    let current = db.read_current(loaded)?;
    let map = alembic_embed::cli_engine::Engine::new(loaded, db.settings.clone())
        .view(&current)
        .map();
    Ok(CurrentRevisions {
        map,
        known: current.known,
        unknown: current.unknown,
    })
}

/// Who accepts an edit: `--by`, else git's `user.email`, else `$USER`.
fn who(args: &AcceptArgs) -> String {
    if let Some(by) = &args.by {
        return by.clone();
    }
    let git = std::process::Command::new("git")
        .args(["config", "user.email"])
        .output();
    if let Ok(out) = git {
        let email = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !email.is_empty() {
            return email;
        }
    }
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

/// Runs `accept`.
pub(crate) fn accept(ctx: &Ctx, args: &AcceptArgs) -> Result<(), CliError> {
    let by = who(args);
    Ok(commands::accept(
        &database(ctx),
        ctx,
        &mut CliOutput::new(ctx),
        args,
        &by,
    )?)
}
