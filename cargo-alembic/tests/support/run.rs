//! Running `cargo alembic` in the end-to-end tests: one throwaway server per
//! test binary, the binary in a folder with a clean environment, and its
//! output as one text for assertions.

#![allow(dead_code)] // each test binary uses a part

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

use alembic_throwaway::{Choice, Server};

/// The test binary's throwaway PostgreSQL.
pub fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| Server::start(Choice::Local).expect("a throwaway PostgreSQL"))
}

/// `cargo-alembic <args>` in `dir`, without the variables it reads from
/// the environment.
fn command(dir: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cargo-alembic"));
    c.args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("VIRTUAL_ENV")
        .env("NO_COLOR", "1");
    c
}

/// Runs `cargo-alembic <args>` in `dir`, `DATABASE_URL` set to `url` if
/// given.
pub fn alembic_with(dir: &Path, args: &[&str], url: Option<&str>) -> Output {
    let mut c = command(dir, args);
    if let Some(url) = url {
        c.env("DATABASE_URL", url);
    }
    c.output().expect("run cargo-alembic")
}

/// [`alembic_with`] without a database URL but with more environment.
pub fn alembic_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = command(dir, args);
    c.envs(env.iter().copied());
    c.output().expect("run cargo-alembic")
}

/// Exit code, stdout and stderr in one text.
pub fn text(out: &Output) -> String {
    format!(
        "exit: {}\n--- stdout\n{}--- stderr\n{}",
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Stdout of a run that must succeed.
pub fn ok(out: Output) -> String {
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs SQL on `url`.
pub fn sql(url: &str, text: &str) {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.batch_execute(text).unwrap();
}

/// The first column of a query's rows, as text (`NULL` for null).
pub fn rows(url: &str, query: &str) -> Vec<String> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    c.simple_query(query)
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("NULL").to_owned()),
            _ => None,
        })
        .collect()
}
