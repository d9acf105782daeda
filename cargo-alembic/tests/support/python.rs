//! Python Alembic for the tests that use it as an oracle: a virtual
//! environment under the target folder, made on first use.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// A virtual environment with Alembic 1.x and psycopg2, made once per target
/// folder. The tests of one binary share one build (they run on threads of
/// one process, so a folder named after the process would be shared by two
/// builds at once). Test binaries run at once may both make one: each builds
/// its own and renames it into place, and runs it with `bin/python -m ...`,
/// which does not depend on the folder's name.
pub fn venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(build).clone()
}

fn build() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("python-alembic-venv");
    if dir.join("bin/python").exists() {
        return dir;
    }
    let building = dir.with_extension(format!("building-{}", std::process::id()));
    let status = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&building)
        .status()
        .expect("python3 -m venv");
    assert!(status.success(), "python3 -m venv failed");
    let out = Command::new(building.join("bin/python"))
        .args([
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "alembic>=1.13,<2",
            "psycopg2-binary",
        ])
        .output()
        .expect("pip install");
    assert!(
        out.status.success(),
        "pip install alembic failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    if std::fs::rename(&building, &dir).is_err() {
        // Another test binary was faster.
        let _ = std::fs::remove_dir_all(&building);
    }
    dir
}

/// Runs Python Alembic's command line in `project` (whose `env.py` reads
/// `ALEMBIC_URL`) against `url`; it must succeed.
#[allow(dead_code)] // not every test binary runs Python Alembic's command line
pub fn alembic_cli(project: &Path, url: &str, args: &[&str]) -> std::process::Output {
    let out = Command::new(venv().join("bin/python"))
        .args(["-m", "alembic"])
        .args(args)
        .current_dir(project)
        .env(
            "ALEMBIC_URL",
            url.replacen("postgresql://", "postgresql+psycopg2://", 1),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "alembic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Python's repr of a header value: `None`, `'a'` or `('a', 'b')`.
#[allow(dead_code)] // not every test binary writes Python revisions
pub fn tuple(values: &[String]) -> String {
    match values {
        [] => "None".to_owned(),
        [one] => format!("{one:?}"),
        many => format!(
            "({},)",
            many.iter()
                .map(|s| format!("{s:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}
