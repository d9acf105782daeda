//! An example service: its release binary carries the repository's revision
//! chain (`migrations/`) and upgrades its database before it serves. Run
//! many replicas at once: the advisory lock makes each revision run once.
//!
//! ```text
//! DATABASE_URL=postgres://... example-service            # upgrade, then serve
//! DATABASE_URL=postgres://... example-service migrate current
//! ```

use std::process::ExitCode;

use clap::Parser;

alembic_embed::embed_migrations!("../../migrations");

/// An example service that migrates its database at startup.
#[derive(Parser)]
#[command(name = "example-service", version)]
struct Cli {
    /// The database (libpq URL; `sslmode=require`/`verify-full` use TLS).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Manage the database's revisions, as `cargo alembic` does.
    Migrate(alembic_embed::cli::MigrateArgs),
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    if let Some(Command::Migrate(args)) = &cli.command {
        return alembic_embed::cli::run(migrations::runner(), cli.database_url.as_deref(), args);
    }
    let Some(url) = cli.database_url else {
        eprintln!("error: set DATABASE_URL or pass --database-url");
        return ExitCode::from(2);
    };
    let mut client = match alembic_embed::tls::connect(&url) {
        Ok(client) => client,
        Err(e) => {
            log::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    // Refuses to start over an edited applied revision, or over a database
    // ahead of this binary: either is a deploy to look at, not to serve.
    match migrations::runner().upgrade(&mut client) {
        Ok(report) => {
            log::info!(
                "serving with the database at {} ({} revisions run)",
                report.after.join(", "),
                report.steps.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            log::error!("not starting: {e}");
            ExitCode::FAILURE
        }
    }
}
