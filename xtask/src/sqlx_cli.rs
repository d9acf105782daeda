//! sqlx-cli beside `cargo alembic` in `cargo xtask bench engine`: the same
//! 1,000 `CREATE TABLE`s as sqlx migrations, applied with `sqlx migrate
//! run`, and its no-op.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `sqlx` program: the one `bench install` built, else one installed
/// here once (`--no-default-features --features postgres,rustls`); `None`
/// when it cannot be installed.
pub(crate) fn binary(bench: &Path) -> Option<PathBuf> {
    let built = [
        bench.join("install/sqlx.root/bin/sqlx"),
        bench.join("sqlx-cli/bin/sqlx"),
    ];
    if let Some(found) = built.iter().find(|p| p.is_file()) {
        return Some(found.clone());
    }
    eprintln!(
        "installing sqlx-cli into {} (for comparison)",
        bench.join("sqlx-cli").display()
    );
    let ok = Command::new("cargo")
        .args([
            "install",
            "sqlx-cli",
            "--locked",
            "--quiet",
            "--no-default-features",
        ])
        .args(["--features", "postgres,rustls", "--root"])
        .arg(bench.join("sqlx-cli"))
        .status()
        .is_ok_and(|s| s.success());
    (ok && built[1].is_file()).then(|| built[1].clone())
}

/// The chain's statements as sqlx migrations, one file each.
pub(crate) fn write_migrations(dir: &Path, count: usize) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    for n in 0..count {
        std::fs::write(
            dir.join(format!("{:04}_create_table_t{n}.sql", n + 1)),
            format!(
                "CREATE TABLE t{n} (\n    id bigint PRIMARY KEY,\n    name text NOT NULL\n);\n"
            ),
        )?;
    }
    Ok(())
}

/// `sqlx migrate run` of `dir` on `url`.
pub(crate) fn run(exe: &Path, dir: &Path, url: &str) -> Command {
    let mut c = Command::new(exe);
    c.args(["migrate", "run", "--source"])
        .arg(dir)
        .args(["--database-url", url]);
    c
}
