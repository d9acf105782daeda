//! Errors of alembic-chain: parsing a revision file, validating the graph,
//! resolving revision identifiers, and reading configuration.
//!
//! Each error names what the user has to look at: the file and line, or the
//! revisions involved. Messages are lowercase fragments without a final period.

use std::path::PathBuf;

use miette::{Diagnostic, NamedSource, SourceSpan};
use thiserror::Error;

/// An unterminated construct found by the statement splitter.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SplitErrorKind {
    /// A string, quoted identifier or block comment never closes.
    #[error("unterminated {0}")]
    Unterminated(&'static str),
    /// A dollar-quoted body never meets its closing delimiter.
    #[error("unterminated dollar-quoted body: no closing `{0}`")]
    UnterminatedDollar(String),
}

/// What is wrong in a revision file.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    /// The file is not valid UTF-8.
    #[error("file is not valid UTF-8 (first bad byte at offset {offset})")]
    NotUtf8 {
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// A required header key is absent.
    #[error("missing required header key `{0}`")]
    MissingKey(&'static str),
    /// A header key is given twice.
    #[error("header key `{key}` is given twice (first on line {first_line})")]
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// Where it was first given.
        first_line: usize,
    },
    /// A header key outside the contract.
    #[error("unknown header key `{key}` (allowed: {allowed})")]
    UnknownKey {
        /// The key as written.
        key: String,
        /// The allowed keys, comma-separated.
        allowed: String,
    },
    /// A header value that does not parse.
    #[error("bad value for `{key}`: {reason}")]
    BadValue {
        /// The key whose value is wrong.
        key: &'static str,
        /// Why it is wrong.
        reason: String,
    },
    /// SQL before the first section marker.
    #[error("SQL before the `-- alembic:upgrade` marker")]
    SqlOutsideSection,
    /// A marker `-- alembic:<name>` with an unknown name.
    #[error("unknown section marker `-- alembic:{0}` (allowed: `-- alembic:upgrade`, `-- alembic:downgrade`)")]
    UnknownSection(String),
    /// A section marker given twice.
    #[error("second `-- alembic:{name}` section (the first is on line {first_line})")]
    DuplicateSection {
        /// `upgrade` or `downgrade`.
        name: &'static str,
        /// Line of the first marker.
        first_line: usize,
    },
    /// No `-- alembic:upgrade` marker in the file.
    #[error("no `-- alembic:upgrade` section")]
    NoUpgradeSection,
    /// An unterminated string, comment or dollar quote in a section.
    #[error(transparent)]
    Statement(#[from] SplitErrorKind),
}

/// A revision file that does not parse, located by file and line.
#[derive(Debug, Error, Diagnostic)]
#[error("{kind}")]
pub struct ParseError {
    /// The revision file.
    pub path: PathBuf,
    /// The 1-based line, or 0 when the error concerns the whole file.
    pub line: usize,
    /// What is wrong.
    pub kind: ParseErrorKind,
    #[source_code]
    pub(crate) source_code: NamedSource<String>,
    #[label("{label}")]
    pub(crate) span: Option<SourceSpan>,
    pub(crate) label: String,
    #[help]
    pub(crate) help: Option<String>,
}

impl ParseError {
    /// `path:line: message`, for output that cannot show a snippet.
    pub fn located(&self) -> String {
        if self.line == 0 {
            format!("{}: {}", self.path.display(), self.kind)
        } else {
            format!("{}:{}: {}", self.path.display(), self.line, self.kind)
        }
    }
}

/// The revision graph is not valid.
#[derive(Debug, Error, Diagnostic, Clone, PartialEq, Eq)]
pub enum GraphError {
    /// Two files carry one revision id.
    #[error("revision `{id}` is defined twice: in {first} and in {second}")]
    #[diagnostic(help("give one of them a new id with a new `revision:` line"))]
    DuplicateRevision {
        /// The id.
        id: String,
        /// The first file (in sorted order).
        first: String,
        /// The second file.
        second: String,
    },
    /// A `down_revision` names a revision that is not in the chain.
    #[error("revision `{id}` ({file}) has down_revision `{parent}`, which is not in the chain")]
    MissingParent {
        /// The revision with the dangling parent.
        id: String,
        /// Its file and line, `path:line`.
        file: String,
        /// The missing parent id.
        parent: String,
    },
    /// A `depends_on` entry names neither a revision nor a branch label.
    #[error("revision `{id}` ({file}) depends on `{target}`, which is neither a revision nor a branch label")]
    MissingDependency {
        /// The revision with the dangling dependency.
        id: String,
        /// Its file and line, `path:line`.
        file: String,
        /// The missing target.
        target: String,
    },
    /// Parents and dependencies form a cycle.
    #[error("the revision graph has a cycle: {}", cycle.join(" -> "))]
    #[diagnostic(help("a revision's down_revision and depends_on must point to older revisions"))]
    Cycle {
        /// The revisions on the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// One branch label declared by two revisions.
    #[error("branch label `{label}` is declared by both `{first}` and `{second}`")]
    #[diagnostic(help(
        "a label names one branch: declare it once, on the branch's first revision"
    ))]
    DuplicateLabel {
        /// The label.
        label: String,
        /// The first revision declaring it.
        first: String,
        /// The second.
        second: String,
    },
    /// A branch label equal to a revision id.
    #[error("branch label `{label}` of revision `{id}` is also a revision id")]
    LabelIsRevision {
        /// The label.
        label: String,
        /// The revision declaring it.
        id: String,
    },
    /// A squash whose `replaces` are not its squash point and ancestors.
    #[error("squash `{id}` ({file}) replaces {}, which {} not below its squash point `{point}`", outside.join(", "), if outside.len() == 1 { "is" } else { "are" })]
    #[diagnostic(help("`replaces:` lists the squash point last, after every revision below it"))]
    SquashRange {
        /// The squash.
        id: String,
        /// Its file.
        file: String,
        /// Its squash point (the last id it replaces).
        point: String,
        /// Replaced revisions that are not ancestors of the point.
        outside: Vec<String>,
    },
    /// A squash would take away a revision that a revision outside it
    /// builds on.
    #[error("cannot squash at `{point}`: revision `{id}` ({file}) builds on `{inside}`, which the squash would replace, but is not below `{point}`")]
    #[diagnostic(help("squash at a revision that every branch leaving the range has merged into, or merge the branch first"))]
    SquashCutsBranch {
        /// The squash point asked for.
        point: String,
        /// The revision outside the range.
        id: String,
        /// Its file.
        file: String,
        /// The revision inside it builds on.
        inside: String,
    },
}

/// A revision identifier that does not resolve.
#[derive(Debug, Error, Diagnostic, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// Not a revision, a prefix of one, or a label.
    #[error("no such revision or branch `{0}`")]
    NotFound(String),
    /// A prefix too short to match on.
    #[error(
        "no such revision or branch `{0}`; partial revision ids need at least four characters"
    )]
    PrefixTooShort(String),
    /// A prefix matching several revisions.
    #[error("multiple revisions start with `{prefix}`: {}", candidates.join(", "))]
    #[diagnostic(help("give more characters of the id"))]
    Ambiguous {
        /// The prefix given.
        prefix: String,
        /// Every revision it matches, sorted.
        candidates: Vec<String>,
    },
    /// `head` (or `x@head`) names several heads.
    #[error("multiple heads are present for `{ident}`: {}", heads.join(", "))]
    #[diagnostic(help("name a specific revision, use `<branch>@head` for one branch's head, `heads` for all of them, or join them with `cargo alembic merge heads -m \"merge\"`"))]
    MultipleHeads {
        /// The identifier given.
        ident: String,
        /// The heads, in order.
        heads: Vec<String>,
    },
    /// The identifier does not follow the grammar.
    #[error("`{ident}` is not a revision identifier: {reason}")]
    Syntax {
        /// The identifier given.
        ident: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A relative identifier without a current state to start from.
    #[error(
        "`{0}` is relative to the database's current revision, which this command does not read"
    )]
    #[diagnostic(help("name a revision, `head` or `base`, or use `<rev>+N`"))]
    NeedsCurrent(String),
    /// A `history` range whose lower end is not below its upper end.
    #[error("`{0}` is not a range: its lower end is not below its upper end on one branch")]
    #[diagnostic(help("a range runs from a revision up to one built on it: `<older>:<newer>`"))]
    RangeNotAncestor(String),
    /// A relative step from several current heads.
    #[error("`{ident}` is ambiguous: the database has several current heads ({})", heads.join(", "))]
    #[diagnostic(help("name a branch: `<label>@+N`, or a revision: `<rev>+N`"))]
    AmbiguousCurrent {
        /// The identifier given.
        ident: String,
        /// The current heads.
        heads: Vec<String>,
    },
    /// A relative step (`-1`, `+2`) without a branch while the database has
    /// several current heads: Alembic warns that this is ambiguous and will
    /// be disallowed; refused here, by design (CONTRACT section 8).
    #[error("`{ident}` is ambiguous: the database has several current heads ({})", heads.join(", "))]
    #[diagnostic(help("name a branch (`<label>@{ident}`) or a revision (`<rev>{ident}`)"))]
    RelativeFromSeveralHeads {
        /// The identifier given.
        ident: String,
        /// The current heads.
        heads: Vec<String>,
    },
    /// A `label@base` downgrade that would remove revisions outside that
    /// branch, as Alembic does when it unwinds from the tree's root;
    /// refused here, by design (CONTRACT section 8).
    #[error("`downgrade {ident}` would also remove {}, which {} not on branch `{label}`", outside.join(", "), if outside.len() == 1 { "is" } else { "are" })]
    #[diagnostic(help("{advice}"))]
    BranchBaseOutsideBranch {
        /// The identifier given.
        ident: String,
        /// The branch.
        label: String,
        /// The applied revisions outside the branch that Alembic would remove.
        outside: Vec<String>,
        /// What to run instead.
        advice: String,
    },
    /// A stamp Alembic refuses (its version-table step cannot be made).
    #[error("cannot stamp {targets}: {reason}")]
    StampRefused {
        /// The targets given.
        targets: String,
        /// Why.
        reason: String,
    },
    /// Alembic refuses an upgrade (or a `history` range) when one requested
    /// revision, or one row of the version table, is an ancestor of
    /// another.
    #[error("`{ident}`: {what} {revision} overlaps with {}, which {} below it; Alembic refuses this {command}, and so does cargo alembic", below.join(", "), if below.len() == 1 { "is" } else { "are" })]
    #[diagnostic(help("name one revision of each branch; a version table whose rows overlap is repaired with `cargo alembic stamp --purge <the rows to keep>`"))]
    Overlapping {
        /// The identifier given.
        ident: String,
        /// `upgrade` or `range`.
        command: &'static str,
        /// `requested revision` or `row of the version table`.
        what: &'static str,
        /// The revision above.
        revision: String,
        /// The revisions below it.
        below: Vec<String>,
    },
    /// A step that reaches a fork.
    #[error("`{ident}` is ambiguous at `{at}`, which leads to {}", choices.join(", "))]
    #[diagnostic(help("name a branch (`<label>@+N`) or a revision"))]
    AmbiguousWalk {
        /// The identifier given.
        ident: String,
        /// The revision (or `base`) at the fork.
        at: String,
        /// The revisions the step could go to.
        choices: Vec<String>,
    },
    /// A step past a base or head.
    #[error("`{ident}` goes past the end of the chain after {taken} of {steps} steps")]
    WalkedTooFar {
        /// The identifier given.
        ident: String,
        /// Steps asked for.
        steps: u64,
        /// Steps possible.
        taken: u64,
    },
    /// A revision not reachable as a target from the current state.
    #[error("`{ident}` is not a valid {direction} target from the current heads ({})", if current.is_empty() { "base".to_owned() } else { current.join(", ") })]
    InvalidTarget {
        /// The identifier given.
        ident: String,
        /// `upgrade` or `downgrade`.
        direction: &'static str,
        /// The current heads.
        current: Vec<String>,
    },
}

/// The configuration cannot be read.
#[cfg(feature = "tooling")]
#[derive(Debug, Error, Diagnostic)]
pub enum ConfigError {
    /// `cargo metadata` failed.
    #[error("cannot read the cargo workspace: {0}")]
    #[diagnostic(help(
        "pass --script-location to run outside a cargo project, or --manifest-path to point at one"
    ))]
    Metadata(String),
    /// `-p` names no package of the workspace.
    #[error("package `{0}` is not a member of the workspace")]
    NoSuchPackage(String),
    /// A metadata key with the wrong type or value.
    #[error("bad value for `{key}` in {table}: {reason}")]
    BadKey {
        /// The table and its package: ``[package.metadata.alembic] of `app` ``.
        table: String,
        /// The key.
        key: String,
        /// Why it is wrong.
        reason: String,
    },
    /// A metadata key outside the contract.
    #[error("unknown key `{key}` in {table} (allowed: {allowed})")]
    UnknownKey {
        /// The table.
        table: String,
        /// The key.
        key: String,
        /// The allowed keys.
        allowed: String,
    },
    /// A `.env` file that does not parse.
    #[error("cannot read {path}: {reason}")]
    DotEnv {
        /// The `.env` file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
}

/// Loading a script directory failed.
#[derive(Debug, Error, Diagnostic)]
pub enum LoadError {
    /// The versions folder is missing.
    #[error("no versions folder at {0}")]
    #[diagnostic(help(
        "create the chain with `cargo alembic init`, or point --script-location at it"
    ))]
    NoVersions(PathBuf),
    /// A file or folder cannot be read.
    #[error("cannot read {path}: {reason}")]
    Io {
        /// What could not be read.
        path: PathBuf,
        /// The operating system's error: part of the message, not a
        /// `source`, so that a report shows it once.
        reason: std::io::Error,
    },
    /// A revision file does not parse.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Parse(Box<ParseError>),
    /// The graph is not valid.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Graph(GraphError),
    /// Several problems at once, each reported.
    #[error("{} problems in the revision chain", .0.len())]
    Many(#[related] Vec<LoadError>),
}

impl LoadError {
    /// Each single problem, flattening [`LoadError::Many`].
    pub fn problems(&self) -> Vec<&LoadError> {
        match self {
            LoadError::Many(all) => all.iter().flat_map(LoadError::problems).collect(),
            other => vec![other],
        }
    }

    /// A one-line rendering with the file and line where known.
    pub fn located(&self) -> String {
        match self {
            LoadError::Parse(p) => p.located(),
            other => other.to_string(),
        }
    }

    /// Wraps several problems, or returns the only one.
    pub(crate) fn from_many(mut problems: Vec<LoadError>) -> Option<LoadError> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            _ => Some(LoadError::Many(problems)),
        }
    }
}

impl From<ParseError> for LoadError {
    fn from(e: ParseError) -> Self {
        LoadError::Parse(Box::new(e))
    }
}

impl From<GraphError> for LoadError {
    fn from(e: GraphError) -> Self {
        LoadError::Graph(e)
    }
}

/// `embed_migrations!` cannot embed the chain; rendered as a compile error
/// on the macro's argument.
#[cfg(feature = "tooling")]
#[derive(Debug, Error)]
pub enum EmbedError {
    /// The path is absolute: a binary built elsewhere would not find it.
    #[error(
        "`{0}` is absolute: give the path relative to the package's folder (CARGO_MANIFEST_DIR)"
    )]
    AbsolutePath(String),
    /// The package's configuration cannot be read.
    #[error("{0}")]
    Config(ConfigError),
    /// The chain does not load, each problem with its file and line.
    #[error("the revision chain is broken:\n{}", .0.join("\n"))]
    Chain(Vec<String>),
    /// Several heads, and none was allowed.
    #[error(
        "the revision chain has {} heads ({}): merge them with `cargo alembic merge heads`, \
         or write `allow_multiple_heads = true` in the macro's arguments",
        .heads.len(),
        .heads.join(", ")
    )]
    MultipleHeads {
        /// The heads.
        heads: Vec<String>,
    },
}
