//! A run's outcome as one line, for tests that compare two ways of
//! deciding the same run.

use alembic_embed::{EngineError, Report};

/// The report (heads before and after, steps, unverified, warnings) or
/// the error, as text.
pub fn outcome(result: Result<Report, EngineError>) -> String {
    match result {
        Ok(r) => format!(
            "{:?} -> {:?}, {} steps, unverified {:?}, warnings {:?}",
            r.before,
            r.after,
            r.steps.len(),
            r.unverified,
            r.warnings
        ),
        Err(e) => format!("error: {e}"),
    }
}
