//! The CLI's one top-level error type, and the exit code of each variant.

use std::path::PathBuf;

use alembic_chain::{ConfigError, LoadError, ResolveError};
use miette::Diagnostic;
use thiserror::Error;

use crate::exit_codes;

/// Everything a command can fail with.
#[derive(Debug, Error, Diagnostic)]
pub enum CliError {
    /// Configuration cannot be read.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Config(#[from] ConfigError),
    /// The chain does not load.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Load(#[from] LoadError),
    /// An identifier does not resolve.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Resolve(#[from] ResolveError),
    /// The command was used wrongly.
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// What to do instead.
        #[help]
        help: Option<String>,
    },
    /// The command could not do what was asked.
    #[error("{message}")]
    Failed {
        /// What went wrong.
        message: String,
        /// What to do about it.
        #[help]
        help: Option<String>,
    },
    /// A file could not be written or created.
    #[error("cannot write {path}: {reason}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error: part of the message, not a
        /// `source`, so that a report shows it once.
        reason: std::io::Error,
    },
    /// A check found problems; they were already printed.
    #[error("{0}")]
    CheckFailed(String),
}

impl CliError {
    /// A usage error with advice.
    pub fn usage(message: impl Into<String>, help: impl Into<Option<String>>) -> Self {
        CliError::Usage {
            message: message.into(),
            help: help.into(),
        }
    }

    /// A failure with advice.
    pub fn failed(message: impl Into<String>, help: impl Into<Option<String>>) -> Self {
        CliError::Failed {
            message: message.into(),
            help: help.into(),
        }
    }

    /// An error of the engine or the connection, by the exit code its type
    /// gives it, so that `cargo alembic` and an embedded `migrate` agree.
    pub fn by_code(code: u8, message: String) -> Self {
        if code == exit_codes::USAGE {
            CliError::usage(message, None)
        } else {
            CliError::failed(message, None)
        }
    }

    /// The exit code (CONTRACT section 5).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Config(_) | CliError::Usage { .. } => exit_codes::USAGE,
            CliError::Resolve(ResolveError::Syntax { .. }) => exit_codes::USAGE,
            CliError::Load(_)
            | CliError::Resolve(_)
            | CliError::Failed { .. }
            | CliError::Io { .. }
            | CliError::CheckFailed(_) => exit_codes::FAILED,
        }
    }
}
