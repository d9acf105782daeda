//! For a package's `build.rs`: tell cargo to rebuild when a revision file
//! is added, removed or edited.
//!
//! `embed_migrations!` makes rustc record every file it embeds, so editing
//! one rebuilds the crate on its own. A new or deleted file is invisible to
//! rustc: stable Rust gives a macro no way to watch a folder. A build
//! script can: `cargo::rerun-if-changed` on a folder makes cargo compare
//! the modification times of everything under it, and a rerun build script
//! rebuilds its crate, which expands the macro again.
//!
//! ```text
//! // build.rs, with `alembic-chain` in [build-dependencies]
//! fn main() {
//!     alembic_chain::build::rerun_if_changed();
//! }
//! ```
//!
//! Without a build dependency, one line does the same for a fixed path:
//! `println!("cargo::rerun-if-changed=migrations");`.

use std::path::PathBuf;

use crate::errors::EmbedError;
use crate::prepare::locate;
use crate::script::version_folders;

/// Watches the chain `embed_migrations!()` (without a path) embeds: the
/// script location from Cargo metadata, as the CLI resolves it. Prints a
/// `cargo::warning` and watches nothing when it cannot be found (the
/// macro then reports the problem as a compile error).
pub fn rerun_if_changed() {
    emit(watched(None));
}

/// Watches the chain `embed_migrations!("path")` embeds; `path` is
/// relative to the package's folder.
pub fn rerun_if_changed_at(path: &str) {
    emit(watched(Some(path)));
}

fn emit(result: Result<Vec<PathBuf>, EmbedError>) {
    match result {
        Ok(folders) => {
            for folder in folders {
                println!("cargo::rerun-if-changed={}", folder.display());
            }
        }
        Err(e) => println!("cargo::warning=alembic: {e}"),
    }
}

/// The folders to watch: the versions folder and every folder under it.
pub fn watched(path: Option<&str>) -> Result<Vec<PathBuf>, EmbedError> {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let (_, versions) = locate(&manifest_dir, path)?;
    version_folders(&versions).map_err(|e| EmbedError::Chain(vec![e.located()]))
}
