//! `check`: the static checks, without a database.

use alembic_chain::LoadError;
use alembic_chain::RevisionMap;
use serde::Serialize;

use crate::args::{CheckArgs, Format};
use crate::errors::CliError;
use crate::output::{print, to_json};
use crate::Ctx;

#[derive(Serialize)]
struct Problem {
    message: String,
    file: Option<String>,
    line: Option<usize>,
}

#[derive(Serialize)]
struct Report {
    ok: bool,
    revisions: usize,
    heads: Vec<String>,
    problems: Vec<Problem>,
}

fn problem_of(e: &LoadError) -> Problem {
    match e {
        LoadError::Parse(p) => Problem {
            message: p.kind.to_string(),
            file: Some(p.path.display().to_string()),
            line: (p.line > 0).then_some(p.line),
        },
        LoadError::Io { path, .. } => Problem {
            message: e.to_string(),
            file: Some(path.display().to_string()),
            line: None,
        },
        other => Problem {
            message: other.to_string(),
            file: None,
            line: None,
        },
    }
}

/// Runs `check`: the chain parses, the graph is valid, and it has one
/// head unless several are allowed.
pub(crate) fn run(ctx: &Ctx, args: &CheckArgs) -> Result<(), CliError> {
    let map = match ctx
        .load()
        .and_then(|map| map.lex_all().map(|()| map).map_err(CliError::from))
        // The files a squash keeps must still form the graph they formed.
        .and_then(|map| {
            let kept = map.expanded().and_then(|m| m.lex_all());
            kept.map(|()| map).map_err(CliError::from)
        }) {
        Ok(map) => map,
        Err(CliError::Load(e)) if ctx.format == Format::Json => {
            let problems = e.problems().into_iter().map(problem_of).collect();
            print(&to_json(&Report {
                ok: false,
                revisions: 0,
                heads: Vec::new(),
                problems,
            }))?;
            return Err(CliError::CheckFailed(
                "check failed: the chain does not load".to_owned(),
            ));
        }
        Err(e) => return Err(e),
    };
    let heads: Vec<String> = map.heads().iter().map(|&h| map.rev(h).id.clone()).collect();
    let mut problems = Vec::new();
    if heads.len() > 1 && !(args.allow_multiple_heads || ctx.config.allow_multiple_heads) {
        problems.push(Problem {
            message: format!(
                "multiple heads: {}; merge them with `cargo alembic merge heads -m \"merge\"`, or pass --allow-multiple-heads \
                 (or set allow_multiple_heads = true in the metadata) if the branches are meant to stay apart",
                heads.join(", ")
            ),
            file: None,
            line: None,
        });
    }
    for (i, line) in super::import_alembic::manual_revisions(&map) {
        let rev = map.rev(i);
        problems.push(Problem {
            message: format!(
                "revision {} ({}:{line}) {}: write its SQL and remove that statement",
                rev.id,
                rev.path.display(),
                super::import_alembic::MANUAL
            ),
            file: Some(rev.path.display().to_string()),
            line: Some(line),
        });
    }
    if problems.is_empty() {
        problems.extend(drift(ctx, &map, args)?);
    }
    let count = problems.len();
    if ctx.format == Format::Json {
        print(&to_json(&Report {
            ok: count == 0,
            revisions: map.len(),
            heads,
            problems,
        }))?;
    } else {
        print(&format!("{}\n", summary(ctx, &map, &heads)))?;
        for p in &problems {
            eprintln!("error: {}", p.message);
        }
    }
    if count == 0 {
        Ok(())
    } else {
        Err(CliError::CheckFailed(format!(
            "check failed: {count} problem{}",
            plural(count)
        )))
    }
}

/// With a desired schema, `alembic check`'s question: would autogenerate
/// write anything? Each statement it would write is listed.
fn drift(ctx: &Ctx, map: &RevisionMap, args: &CheckArgs) -> Result<Option<Problem>, CliError> {
    let given = args.schema.as_ref().map(|p| ctx.cwd.join(p));
    let Some(drift) = crate::autogen::drift(ctx, map, given, None)? else {
        return Ok(None);
    };
    if drift.changes.is_empty() {
        return Ok(None);
    }
    Ok(Some(Problem {
        message: drift.message(),
        file: Some(drift.schema),
        line: None,
    }))
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The line `check` prints: revisions, heads, branch and merge points.
fn summary(ctx: &Ctx, map: &RevisionMap, heads: &[String]) -> String {
    let (branches, merges) = (map.branch_points().len(), map.merge_points().len());
    format!(
        "{} revision{} in {}: {} head{} ({}), {branches} branch point{}, {merges} merge point{}",
        map.len(),
        plural(map.len()),
        ctx.config.versions_dir().display(),
        heads.len(),
        plural(heads.len()),
        heads.join(", "),
        plural(branches),
        plural(merges),
    )
}
