//! `alembic-throwaway`: starts a throwaway PostgreSQL, prints a
//! `DATABASE_URL` for a fresh database, and keeps it until this process
//! ends (Ctrl-C, end of input, or any signal: the server is cleaned up).

use std::io::Read;

use alembic_throwaway::{Choice, Server};

fn main() -> std::process::ExitCode {
    let choice = match std::env::args().nth(1).as_deref() {
        Some("--docker") => Choice::Docker,
        Some("--url") => match std::env::args().nth(2) {
            Some(url) => Choice::Url(url),
            None => {
                eprintln!("usage: alembic-throwaway [--local | --docker | --url URL]");
                return std::process::ExitCode::from(2);
            }
        },
        Some("--local") | None => Choice::Local,
        Some(other) => {
            eprintln!(
                "unknown option {other}; usage: alembic-throwaway [--local | --docker | --url URL]"
            );
            return std::process::ExitCode::from(2);
        }
    };
    if let Err(e) = alembic_throwaway::cleanup_on_interrupt() {
        eprintln!("error: {e}");
        return std::process::ExitCode::from(1);
    }
    let server = match Server::start(choice) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let db = match server.database() {
        Ok(db) => db,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    eprintln!("using {}", server.description());
    if let Some(dir) = server.data_dir() {
        eprintln!("data: {}", dir.display());
    }
    println!("DATABASE_URL={}", db.url());
    // Hold until standard input ends (Ctrl-D, or the parent closing it).
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
    // An interrupt's cleanup ends the process with 130; do not race it.
    while alembic_throwaway::interrupted() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::process::ExitCode::SUCCESS
}
