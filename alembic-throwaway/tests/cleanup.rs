//! A throwaway server is cleaned up even when its owner is killed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sigkill_of_the_owner_stops_the_server_and_deletes_its_folder() {
    let mut holder = Command::new(env!("CARGO_BIN_EXE_alembic-throwaway"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(holder.stderr.take().unwrap());
    let mut data = None;
    let mut line = String::new();
    while err.read_line(&mut line).unwrap() > 0 {
        if let Some(d) = line.trim().strip_prefix("data: ") {
            data = Some(std::path::PathBuf::from(d));
            break;
        }
        line.clear();
    }
    let data = data.expect("the holder prints its data folder");
    let mut out = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut out)
        .unwrap();
    let url = out.trim().strip_prefix("DATABASE_URL=").unwrap().to_owned();
    postgres::Client::connect(&url, postgres::NoTls)
        .unwrap()
        .batch_execute("SELECT 1")
        .unwrap();

    holder.kill().unwrap(); // SIGKILL: no destructor runs
    holder.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while data.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!data.exists(), "{} is still there", data.display());
    assert!(
        postgres::Client::connect(&url, postgres::NoTls).is_err(),
        "the server is stopped"
    );
}

#[test]
fn ctrl_c_drops_a_database_made_on_an_existing_server() {
    let local = alembic_throwaway::Server::start(alembic_throwaway::Choice::Local).unwrap();
    let mut holder = Command::new(env!("CARGO_BIN_EXE_alembic-throwaway"))
        .args(["--url", local.admin_url()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Keep its input open: `wait` would close it, which also ends the holder.
    let _stdin = holder.stdin.take();
    let mut out = String::new();
    BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut out)
        .unwrap();
    let url = out.trim().strip_prefix("DATABASE_URL=").unwrap().to_owned();
    let (path, _query) = url.split_once('?').unwrap_or((&url, ""));
    let name = path.rsplit('/').next().unwrap().to_owned();
    let exists = |name: &str| -> bool {
        let mut admin = postgres::Client::connect(local.admin_url(), postgres::NoTls).unwrap();
        admin
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&name],
            )
            .unwrap()
            .get::<_, i64>(0)
            == 1
    };
    assert!(exists(&name));
    // Ctrl-C.
    let status = Command::new("kill")
        .args(["-INT", &holder.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = holder.wait().unwrap().code();
    assert_eq!(code, Some(130));
    assert!(!exists(&name), "the database was dropped");
}

#[test]
fn runs_a_command_with_database_url_and_passes_its_status() {
    let out = Command::new(env!("CARGO_BIN_EXE_alembic-throwaway"))
        .args([
            "sh",
            "-c",
            "psql \"$DATABASE_URL\" -XAtc 'select 40 + 2' && exit 3",
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "42",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(3));
    let bad = Command::new(env!("CARGO_BIN_EXE_alembic-throwaway"))
        .args(["--bogus"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
