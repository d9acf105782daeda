//! Exit codes (CONTRACT section 5), one name per meaning.

/// Success.
pub const OK: u8 = 0;
/// The operation failed or a check found problems.
pub const FAILED: u8 = 1;
/// Bad usage or unreadable configuration.
pub const USAGE: u8 = 2;
