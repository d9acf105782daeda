//! `alembic-throwaway`: a throwaway PostgreSQL for a command or a session.
//!
//! - `alembic-throwaway [--local | --docker | --url URL] [--] CMD ARGS...` runs
//!   the command with `DATABASE_URL` set to a fresh database, then cleans
//!   up, and exits with the command's status;
//! - without a command, prints `DATABASE_URL=...` and keeps the database
//!   until its input ends (Ctrl-D, or the parent closing it).
//!
//! Ctrl-C and SIGKILL leave nothing behind either.

use std::io::Read;
use std::process::ExitCode;

use alembic_throwaway::{Choice, Server};

const USAGE: &str =
    "usage: alembic-throwaway [--local | --docker | --url URL] [[--] COMMAND ARGS...]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Options come first; `--`, or the first word that is not an option,
    // starts the command.
    let mut split = 0;
    while split < args.len() {
        match args[split].as_str() {
            "--local" | "--docker" => split += 1,
            "--url" => split += 2,
            _ => break,
        }
    }
    let split = split.min(args.len());
    let options = &args[..split];
    let command = match args.get(split).map(String::as_str) {
        None => None,
        Some("--") => Some(&args[split + 1..]),
        Some(word) if word.starts_with("--") => {
            eprintln!("unknown option {word}; {USAGE}");
            return ExitCode::from(2);
        }
        Some(_) => Some(&args[split..]),
    };
    let choice = match options {
        [] => Choice::Local,
        [flag] if flag == "--local" => Choice::Local,
        [flag] if flag == "--docker" => Choice::Docker,
        [flag, url] if flag == "--url" => Choice::Url(url.clone()),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if command.is_some_and(|c| c.is_empty()) {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    if let Err(e) = alembic_throwaway::cleanup_on_interrupt() {
        eprintln!("error: {e}");
        return ExitCode::from(1);
    }
    let server = match Server::start(choice) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let db = match server.database() {
        Ok(db) => db,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!("using {}", server.description());
    if let Some(dir) = server.data_dir() {
        eprintln!("data: {}", dir.display());
    }
    let code = match command {
        Some(cmd) => match std::process::Command::new(&cmd[0])
            .args(&cmd[1..])
            .env("DATABASE_URL", db.url())
            .status()
        {
            Ok(status) => ExitCode::from(
                status
                    .code()
                    .and_then(|c| u8::try_from(c).ok())
                    .unwrap_or(1),
            ),
            Err(e) => {
                eprintln!("error: cannot run {}: {e}", cmd[0]);
                ExitCode::from(1)
            }
        },
        None => {
            println!("DATABASE_URL={}", db.url());
            // Hold until standard input ends.
            let _ = std::io::stdin().read_to_end(&mut Vec::new());
            ExitCode::SUCCESS
        }
    };
    // An interrupt's cleanup ends the process with 130; do not race it.
    while alembic_throwaway::interrupted() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(db);
    drop(server);
    code
}
