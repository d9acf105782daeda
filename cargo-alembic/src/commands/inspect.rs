//! Read-only views of the chain: `heads`, `branches`, `history`, `show`.

use alembic_chain::display::listing;
use alembic_chain::{Resolver, RevisionMap};
use serde::Serialize;

use crate::args::{Format, HeadsArgs, ShowArgs, VerboseArgs};
use crate::errors::CliError;
use crate::output::{json, log_entry, one_line, print, to_json, LineStyle, RevisionJson};
use crate::Ctx;

/// Prints revisions one per line, or verbosely, or as a JSON array.
fn list(
    ctx: &Ctx,
    map: RevisionMap,
    revs: &[usize],
    verbose: bool,
    style: LineStyle,
) -> Result<(), CliError> {
    let result = print_list(ctx, &map, revs, verbose, style);
    ctx.discard(map);
    result
}

pub(super) fn print_list(
    ctx: &Ctx,
    map: &RevisionMap,
    revs: &[usize],
    verbose: bool,
    style: LineStyle,
) -> Result<(), CliError> {
    if ctx.format == Format::Json {
        let items: Vec<RevisionJson<'_>> = revs.iter().map(|&i| json(map, i)).collect();
        return print(&to_json(&items));
    }
    print(&listing(map, revs, verbose, style, None))
}

/// Runs `heads`.
pub(crate) fn heads(ctx: &Ctx, args: &HeadsArgs) -> Result<(), CliError> {
    let map = ctx.load()?;
    let mut heads: Vec<usize> = map
        .heads()
        .iter()
        .copied()
        .filter(|&h| !args.resolve_dependencies || map.dependents(h).is_empty())
        .collect();
    // In file order, as Alembic lists them.
    heads.sort_unstable();
    list(
        ctx,
        map,
        &heads,
        args.verbose,
        LineStyle {
            branches: true,
            ..LineStyle::default()
        },
    )
}

/// Runs `show`.
pub(crate) fn show(ctx: &Ctx, args: &ShowArgs) -> Result<(), CliError> {
    if args.rev == "current" {
        return super::database::show_current(ctx);
    }
    let mut map = ctx.load()?;
    let mut found = Resolver::new(&map).show(&args.rev);
    if found.is_err() {
        // A revision a squash replaced, whose file is kept: shown from the
        // history before the squash.
        let before = map.expanded()?;
        if !std::ptr::eq(before, &map) && Resolver::new(before).show(&args.rev).is_ok() {
            let before = alembic_chain::RevisionMap::new(before.revisions().to_vec())?;
            found = Resolver::new(&before).show(&args.rev);
            map = before;
        }
    }
    let revs = found?;
    if revs.is_empty() {
        return Err(CliError::usage(
            format!("`{}` is base, which is not a revision", args.rev),
            None,
        ));
    }
    list(ctx, map, &revs, true, LineStyle::default())
}

#[derive(Serialize)]
struct BranchJson<'a> {
    #[serde(flatten)]
    revision: RevisionJson<'a>,
    branches_into: Vec<RevisionJson<'a>>,
}

/// Runs `branches`: each branch point and the revisions it branches into.
pub(crate) fn branches(ctx: &Ctx, args: &VerboseArgs) -> Result<(), CliError> {
    let map = ctx.load()?;
    // In `history`'s order, as Alembic lists them.
    let points: Vec<usize> = Resolver::new(&map)
        .history(None)?
        .into_iter()
        .filter(|&i| map.children(i).len() > 1)
        .collect();
    if ctx.format == Format::Json {
        let items: Vec<BranchJson<'_>> = points
            .iter()
            .map(|&b| BranchJson {
                revision: json(&map, b),
                branches_into: map.children(b).iter().map(|&c| json(&map, c)).collect(),
            })
            .collect();
        return print(&to_json(&items));
    }
    let mut out = String::new();
    for b in points {
        if args.verbose {
            out.push_str(&log_entry(&map, b));
        } else {
            out.push_str(&one_line(
                &map,
                b,
                LineStyle {
                    branches: true,
                    tree: true,
                    ..LineStyle::default()
                },
            ));
            out.push('\n');
        }
        let pad = " ".repeat(map.rev(b).id.len());
        for &c in map.children(b) {
            let line = one_line(
                &map,
                c,
                LineStyle {
                    branches: true,
                    tree: true,
                    doc: args.verbose,
                    ..LineStyle::default()
                },
            );
            out.push_str(&format!("{pad} -> {line}\n"));
        }
        out.push('\n');
    }
    print(&out)
}
