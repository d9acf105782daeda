//! Exit codes (CONTRACT section 5), one name per meaning: the same
//! constants as an embedded `migrate` command's.

pub use alembic_embed::cli_engine::exit_codes::{FAILED, OK, USAGE};
