//! How `verify` reports: text for people, `--format json`, GitHub
//! annotations that land on the revision's file and line, or JUnit XML.

use std::io::IsTerminal;
use std::time::Instant;

use alembic_chain::RevisionMap;
use serde::Serialize;

use super::{heads, irreversible, say, Problem};
use crate::args::Format;
use crate::errors::CliError;
use crate::output::{escape, print, to_json, xml};
use crate::Ctx;

#[derive(Serialize)]
pub(super) struct Timings {
    pub(super) static_ms: u128,
    pub(super) server_ms: u128,
    pub(super) stairway_ms: u128,
    /// Of the stairway: taking schema snapshots.
    pub(super) snapshot_ms: u128,
    pub(super) snapshots: usize,
    pub(super) branch_order_ms: u128,
    pub(super) total_ms: u128,
}

#[derive(Serialize)]
struct VerifyJson<'a> {
    ok: bool,
    revisions: usize,
    heads: Vec<&'a str>,
    irreversible: Vec<&'a str>,
    /// The throwaway-server part (absent with `--against`).
    run: Option<Run>,
    total_ms: u128,
    problems: &'a [Problem],
    warnings: &'a [Problem],
}

/// What the throwaway-server part did, for the JSON report.
#[derive(Serialize)]
pub(super) struct Run {
    pub(super) server: String,
    pub(super) stairway_checked: usize,
    pub(super) timings: Timings,
}

/// Reports problems and warnings in the chosen format; exit 1 on problems.
pub(super) fn finish(
    ctx: &Ctx,
    map: &RevisionMap,
    problems: &[Problem],
    warnings: &[Problem],
    started: Instant,
    run: Option<Run>,
) -> Result<(), CliError> {
    let total_ms = started.elapsed().as_millis();
    let text = match ctx.format {
        Format::Json => Some(json(map, problems, warnings, total_ms, run)),
        Format::Github => Some(annotations(ctx, problems, warnings)),
        Format::Junit => Some(junit(map, problems, total_ms)),
        Format::Human => {
            for (level, colour, list) in [
                ("warning", anstyle::AnsiColor::Yellow, warnings),
                ("error", anstyle::AnsiColor::Red, problems),
            ] {
                for p in list {
                    eprintln!("{}: {}", paint(level, colour, colour_stderr()), p.message);
                }
            }
            None
        }
    };
    if let Some(text) = text {
        print(&text)?;
    }
    if problems.is_empty() {
        let colour =
            ctx.format == Format::Human && std::io::stdout().is_terminal() && no_color_unset();
        say(
            ctx,
            &format!(
                "verify: {} in {total_ms} ms\n",
                paint("all checks passed", anstyle::AnsiColor::Green, colour)
            ),
        )
    } else {
        Err(CliError::CheckFailed(format!(
            "verify: {} problem{} ({total_ms} ms)",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" }
        )))
    }
}

/// `--format json`.
fn json(
    map: &RevisionMap,
    problems: &[Problem],
    warnings: &[Problem],
    total_ms: u128,
    run: Option<Run>,
) -> String {
    let run = run.map(|mut r| {
        r.timings.total_ms = total_ms;
        r
    });
    to_json(&VerifyJson {
        ok: problems.is_empty(),
        revisions: map.len(),
        heads: heads(map),
        irreversible: irreversible(map),
        run,
        total_ms,
        problems,
        warnings,
    })
}

/// `--format github`: an annotation per problem and warning, on its file
/// and line.
fn annotations(ctx: &Ctx, problems: &[Problem], warnings: &[Problem]) -> String {
    let mut out = String::new();
    for (level, p) in problems
        .iter()
        .map(|p| ("error", p))
        .chain(warnings.iter().map(|p| ("warning", p)))
    {
        let mut props = Vec::new();
        if let Some(f) = &p.file {
            props.push(format!("file={}", escape(&ctx.annotation_path(f), true)));
        }
        if let Some(l) = p.line {
            props.push(format!("line={l}"));
        }
        props.push(format!(
            "title={}",
            escape(&format!("cargo alembic verify: {}", p.check), true)
        ));
        out.push_str(&format!(
            "::{level} {}::{}\n",
            props.join(","),
            escape(&p.message, false)
        ));
    }
    out
}

/// A JUnit report: one test case for the chain, one per revision; each
/// problem is a failure of the case it concerns.
fn junit(map: &RevisionMap, problems: &[Problem], total_ms: u128) -> String {
    let case = |class: &str, name: &str, file: Option<&str>, failures: Vec<&Problem>| {
        let mut out = format!(
            "    <testcase classname=\"{}\" name=\"{}\"",
            xml(class),
            xml(name)
        );
        if let Some(f) = file {
            out.push_str(&format!(" file=\"{}\"", xml(f)));
        }
        if failures.is_empty() {
            out.push_str("/>\n");
        } else {
            out.push_str(">\n");
            for p in failures {
                let first = p.message.lines().next().unwrap_or("");
                out.push_str(&format!(
                    "      <failure type=\"{}\" message=\"{}\">{}</failure>\n",
                    p.check,
                    xml(first),
                    xml(&p.message)
                ));
            }
            out.push_str("    </testcase>\n");
        }
        out
    };
    let mut cases = vec![case(
        "static",
        "chain",
        None,
        problems.iter().filter(|p| p.revision.is_none()).collect(),
    )];
    let mut failed = usize::from(problems.iter().any(|p| p.revision.is_none()));
    for &i in map.order() {
        let rev = map.rev(i);
        let failures: Vec<&Problem> = problems
            .iter()
            .filter(|p| p.revision.as_deref() == Some(rev.id.as_str()))
            .collect();
        failed += usize::from(!failures.is_empty());
        cases.push(case(
            "revision",
            &rev.id,
            Some(&rev.path.display().to_string()),
            failures,
        ));
    }
    let seconds = total_ms as f64 / 1000.0;
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"cargo alembic verify\" tests=\"{n}\" failures=\"{failed}\" time=\"{seconds:.3}\">\n  <testsuite name=\"cargo alembic verify\" tests=\"{n}\" failures=\"{failed}\" time=\"{seconds:.3}\">\n{}  </testsuite>\n</testsuites>\n",
        cases.concat(),
        n = cases.len()
    )
}

fn no_color_unset() -> bool {
    std::env::var_os("NO_COLOR").is_none()
}

fn colour_stderr() -> bool {
    std::io::stderr().is_terminal() && no_color_unset()
}

/// Bold and coloured on a terminal, plain otherwise.
fn paint(text: &str, colour: anstyle::AnsiColor, on: bool) -> String {
    if on {
        let style = anstyle::Style::new().bold().fg_color(Some(colour.into()));
        format!("{}{text}{}", style.render(), style.render_reset())
    } else {
        text.to_owned()
    }
}
