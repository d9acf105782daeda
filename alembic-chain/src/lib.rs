//! The shared core of cargo-alembic: revision files, their checksums, the
//! revision graph, revision identifiers and configuration.
//!
//! The CLI (`cargo-alembic`), the embedded runtime (`alembic-embed`) and the
//! compile-time macro all parse, checksum and order revisions through this
//! crate, so that they can never disagree about a chain.
#![warn(missing_docs)]

#[cfg(feature = "tooling")]
pub mod build;
mod checksum;
#[cfg(feature = "tooling")]
mod config;
pub mod display;
pub mod embed;
mod errors;
mod graph;
mod heads;
#[cfg(feature = "tooling")]
mod lint;
mod packed;
#[cfg(feature = "tooling")]
mod prepare;
#[cfg(test)]
mod proptests;
mod recorded;
mod resolve;
mod revision;
mod script;
mod split;
mod squash;
mod stamp;
#[cfg(test)]
mod testutil;
mod url;

pub use checksum::Checksum;
#[cfg(feature = "tooling")]
pub use config::{parse_duration, Config, Origin, Overrides, METADATA_KEYS};
#[cfg(feature = "tooling")]
pub use errors::{ConfigError, EmbedError};
pub use errors::{GraphError, LoadError, ParseError, ParseErrorKind, ResolveError, SplitErrorKind};
pub use graph::RevisionMap;
pub use heads::{normalized_down, HeadState, StepError, VersionOp};
#[cfg(feature = "tooling")]
pub use lint::{lint, Finding, Severity, WARNING_RULES};
pub use resolve::{history_reads_current, Resolver, Target, MIN_PREFIX};
pub use revision::{
    parse_list, validate_id, HeaderFields, KeyLines, Revision, Section, HEADER_KEYS, MAX_ID_LEN,
};
pub use script::{
    load_versions, load_versions_beside, load_versions_helped, revision_files, version_folders,
    LoadHelp,
};
pub use split::{split_sql, Statement};
pub use stamp::stamp_rows;
pub use url::{redact, url_scheme, DatabaseUrl};
