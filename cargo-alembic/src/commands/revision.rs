//! `revision` and `merge`: write a new revision file.

use std::io::Write;
use std::path::{Path, PathBuf};

use alembic_chain::{
    validate_id, HeaderFields, ResolveError, Resolver, Revision, RevisionMap, Target,
};
use chrono::{Datelike, Local, Timelike};

use crate::args::{MergeArgs, RevisionArgs};
use crate::errors::CliError;
use crate::output::print;
use crate::Ctx;

/// A revision to write.
pub(crate) struct NewRevision {
    pub(crate) id: String,
    pub(crate) message: String,
    pub(crate) parents: Vec<String>,
    pub(crate) labels: Vec<String>,
    pub(crate) depends_on: Vec<String>,
    pub(crate) dir: PathBuf,
    pub(crate) transactional: bool,
    /// What a squash replaces (empty otherwise).
    pub(crate) replaces: Vec<String>,
    /// The sections' statements (empty: to fill in).
    pub(crate) upgrade: String,
    pub(crate) downgrade: String,
}

/// Runs `revision` (`autogenerate`: `revision --autogenerate` or
/// `migrate`).
pub(crate) fn revision(ctx: &Ctx, args: &RevisionArgs, autogenerate: bool) -> Result<(), CliError> {
    if autogenerate {
        return autogenerate_revision(ctx, args);
    }
    if args.schema.is_some() || args.from_database.is_some() {
        return Err(CliError::usage(
            "--schema and --from-database are for autogenerate",
            Some("add --autogenerate, or run `cargo alembic migrate -m MSG`".into()),
        ));
    }
    let map = ctx.load()?;
    let id = new_id(&map, args.rev_id.as_deref())?;
    let resolver = Resolver::new(&map);
    let head = args.head.as_deref().unwrap_or("head");
    let multiple_heads = |revs: &[usize]| {
        CliError::usage(
            format!("multiple heads are present ({}); say which one the new revision builds on", ids(&map, revs)),
            Some("pass --head <rev> or --head <label>@head, or merge the heads first with `cargo alembic merge heads`".to_owned()),
        )
    };
    let mut parents = match resolver.resolve(head) {
        Ok(Target::Base) => Vec::new(),
        // `--head heads` (or `label@heads`): on every one of them, as
        // Alembic writes it (a revision that merges them); `heads` leaves
        // out a head another builds on through `depends_on`, as in Alembic.
        Ok(Target::Revisions(revs)) if head == "heads" => revs
            .into_iter()
            .filter(|&h| map.dependents(h).is_empty())
            .collect(),
        Ok(Target::Revisions(revs)) => revs,
        Ok(Target::BranchBase { roots, .. }) => roots,
        Err(ResolveError::MultipleHeads { .. }) if args.head.is_none() => {
            return Err(multiple_heads(map.heads()))
        }
        Err(e) => return Err(e.into()),
    };
    // Several parents in file order, as Alembic lists heads.
    parents.sort_unstable();
    for &p in &parents {
        if !args.splice && !map.children(p).is_empty() {
            return Err(CliError::usage(
                format!("revision `{}` is not a head revision", map.rev(p).id),
                Some("pass --splice to start a new branch from it".to_owned()),
            ));
        }
    }
    check_labels(&map, &args.branch_label)?;
    // Partial ids become full ids; labels stay labels, as Alembic writes them.
    let mut depends_on = Vec::new();
    for dep in &args.depends_on {
        if map.label_declared_by(dep).is_some() {
            depends_on.push(dep.clone());
        } else {
            let i = resolver.revision(dep)?;
            depends_on.push(map.rev(i).id.clone());
        }
    }
    let dir = match &args.version_path {
        Some(p) => version_path(ctx, p)?,
        None => ctx.config.versions_dir(),
    };
    write(
        ctx,
        NewRevision {
            id,
            message: args.message.clone().unwrap_or_default(),
            parents: parents.iter().map(|&p| map.rev(p).id.clone()).collect(),
            labels: args.branch_label.clone(),
            depends_on,
            dir,
            transactional: !args.non_transactional,
            replaces: Vec::new(),
            upgrade: String::new(),
            downgrade: String::new(),
        },
    )
    .map(drop)
}

/// `revision --autogenerate`: the planned revisions, each on the one before
/// (the first on `--head` or the head).
fn autogenerate_revision(ctx: &Ctx, args: &RevisionArgs) -> Result<(), CliError> {
    if args.splice
        || !args.branch_label.is_empty()
        || !args.depends_on.is_empty()
        || args.non_transactional
    {
        return Err(CliError::usage(
            "autogenerate writes on the head: --splice, --branch-label, --depends-on and --non-transactional are for hand-written revisions",
            None,
        ));
    }
    let dir = match &args.version_path {
        Some(p) => version_path(ctx, p)?,
        None => ctx.config.versions_dir(),
    };
    let request = crate::autogen::Request {
        message: args.message.clone().unwrap_or_default(),
        rev_id: args.rev_id.as_deref(),
        head: args.head.as_deref(),
        schema: args.schema.as_ref().map(|p| ctx.cwd.join(p)),
        from_database: args.from_database.as_ref(),
    };
    let mut writer = |map: &RevisionMap,
                      parent: Option<&str>,
                      id: Option<&str>,
                      planned: crate::autogen::Planned| {
        let id = new_id(map, id)?;
        let path = write(
            ctx,
            NewRevision {
                id: id.clone(),
                message: planned.message,
                parents: parent.map(str::to_owned).into_iter().collect(),
                labels: Vec::new(),
                depends_on: Vec::new(),
                dir: dir.clone(),
                transactional: planned.transactional,
                replaces: Vec::new(),
                upgrade: crate::autogen::section(&planned.upgrade, None),
                downgrade: crate::autogen::section(
                    &planned.downgrade,
                    planned.downgrade_note.as_deref(),
                ),
            },
        )?;
        Ok((id, path))
    };
    crate::autogen::run(ctx, &request, &mut writer)
}

/// Runs `merge`.
pub(crate) fn merge(ctx: &Ctx, args: &MergeArgs) -> Result<(), CliError> {
    let map = ctx.load()?;
    let resolver = Resolver::new(&map);
    let mut revs: Vec<usize> = Vec::new();
    for spec in &args.revisions {
        match resolver.resolve(spec)? {
            // In the order given; several heads in file order, as Alembic
            // writes the merge's `down_revision`.
            Target::Revisions(mut r) => {
                r.sort_unstable();
                for i in r {
                    if !revs.contains(&i) {
                        revs.push(i);
                    }
                }
            }
            Target::Base | Target::BranchBase { .. } => {
                return Err(CliError::usage(
                    format!("`{spec}` is not a revision that can be merged"),
                    None,
                ));
            }
        }
    }
    if revs.len() < 2 {
        return Err(CliError::usage(
            format!(
                "a merge needs at least two revisions; {} resolved to {}",
                args.revisions.join(" "),
                ids(&map, &revs)
            ),
            Some("there is nothing to merge while the chain has a single head".to_owned()),
        ));
    }
    for &a in &revs {
        if !args.splice && !map.children(a).is_empty() {
            return Err(CliError::usage(
                format!("revision `{}` is not a head revision", map.rev(a).id),
                Some("pass --splice to merge it anyway (the merge starts a new head beside its descendants)".to_owned()),
            ));
        }
        let below = map.ancestors(&[a], false);
        if let Some(&b) = revs.iter().find(|&&b| b != a && below[b]) {
            return Err(CliError::usage(
                format!(
                    "`{}` is an ancestor of `{}`; merge revisions on separate branches",
                    map.rev(b).id,
                    map.rev(a).id
                ),
                None,
            ));
        }
    }
    check_labels(&map, &args.branch_label)?;
    let id = new_id(&map, args.rev_id.as_deref())?;
    write(
        ctx,
        NewRevision {
            id,
            message: args.message.clone().unwrap_or_else(|| "merge".to_owned()),
            parents: revs.iter().map(|&i| map.rev(i).id.clone()).collect(),
            labels: args.branch_label.clone(),
            depends_on: Vec::new(),
            dir: ctx.config.versions_dir(),
            transactional: true,
            replaces: Vec::new(),
            upgrade: String::new(),
            downgrade: String::new(),
        },
    )
    .map(drop)
}

fn ids(map: &RevisionMap, revs: &[usize]) -> String {
    if revs.is_empty() {
        return "nothing".to_owned();
    }
    revs.iter()
        .map(|&i| map.rev(i).id.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The given id, checked, or a new one: 12 lowercase hex digits, as Alembic's.
pub(crate) fn new_id(map: &RevisionMap, given: Option<&str>) -> Result<String, CliError> {
    let id = match given {
        Some(id) => {
            validate_id(id)
                .map_err(|reason| CliError::usage(format!("bad --rev-id: {reason}"), None))?;
            id.to_owned()
        }
        None => {
            let hex = uuid::Uuid::new_v4().simple().to_string();
            hex[hex.len() - 12..].to_owned()
        }
    };
    if let Some(existing) = map.all_revisions().find(|r| r.id == id) {
        return Err(CliError::usage(
            format!(
                "revision `{id}` already exists in {}",
                existing.path.display()
            ),
            None,
        ));
    }
    if map.is_replaced(&id) {
        return Err(CliError::usage(
            format!("`{id}` is the id of a revision a squash replaced"),
            Some("a database may still hold it in its version table: choose another id".into()),
        ));
    }
    if map.label_declared_by(&id).is_some() {
        return Err(CliError::usage(
            format!("`{id}` is already a branch label"),
            None,
        ));
    }
    Ok(id)
}

fn check_labels(map: &RevisionMap, labels: &[String]) -> Result<(), CliError> {
    for label in labels {
        validate_id(label)
            .map_err(|reason| CliError::usage(format!("bad --branch-label: {reason}"), None))?;
        if let Some(i) = map.label_declared_by(label) {
            return Err(CliError::usage(
                format!(
                    "branch label `{label}` is already used by revision `{}`",
                    map.rev(i).id
                ),
                None,
            ));
        }
        if map.get(label).is_some() {
            return Err(CliError::usage(
                format!("branch label `{label}` is a revision id"),
                None,
            ));
        }
    }
    Ok(())
}

/// `--version-path` must be the versions folder or under it: only it is read.
fn version_path(ctx: &Ctx, given: &Path) -> Result<PathBuf, CliError> {
    let versions = ctx.config.versions_dir();
    let absolute = |p: &Path| {
        let full = ctx.cwd.join(p);
        let mut out = PathBuf::new();
        for c in full.components() {
            match c {
                std::path::Component::ParentDir => {
                    out.pop();
                }
                std::path::Component::CurDir => {}
                other => out.push(other),
            }
        }
        out
    };
    let full = absolute(given);
    let root = absolute(&versions);
    match full.strip_prefix(&root) {
        Ok(rel) => Ok(versions.join(rel)),
        Err(_) => Err(CliError::usage(
            format!(
                "--version-path {} is outside the versions folder {}",
                given.display(),
                versions.display()
            ),
            Some(
                "revision files are read from the versions folder and its sub-folders only"
                    .to_owned(),
            ),
        )),
    }
}

/// Alembic's slug: the message's words joined by `_`, lowercase, cut at a
/// word boundary to `max` characters.
pub(crate) fn slug(message: &str, max: usize) -> String {
    let words: Vec<String> = message
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    let slug = words.join("_");
    if slug.chars().count() <= max {
        return slug;
    }
    let cut: String = slug.chars().take(max).collect();
    match cut.rsplit_once('_') {
        Some((head, _)) => format!("{head}_"),
        None => format!("{cut}_"),
    }
}

/// Renders `file_template` (`%(rev)s`, `%(slug)s`, `%(epoch)s`, `%(year)d`,
/// `%(month).2d`, `%(day).2d`, `%(hour).2d`, `%(minute).2d`, `%(second).2d`).
pub(crate) fn render_template(
    template: &str,
    id: &str,
    slug: &str,
    now: chrono::DateTime<Local>,
) -> Result<String, CliError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(pos) = rest.find("%(") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 2..];
        let close = after
            .find(')')
            .ok_or_else(|| bad_template(template, "an unclosed `%(`"))?;
        let name = &after[..close];
        let spec_end = after[close + 1..]
            .find(|c: char| c.is_ascii_alphabetic())
            .ok_or_else(|| bad_template(template, "a token without a type"))?;
        let spec = &after[close + 1..close + 1 + spec_end + 1];
        let two = spec.starts_with(".2");
        let number = |n: u32| {
            if two {
                format!("{n:02}")
            } else {
                n.to_string()
            }
        };
        let value = match name {
            "rev" => id.to_owned(),
            "slug" => slug.to_owned(),
            "epoch" => now.timestamp().to_string(),
            "year" => now.year().to_string(),
            "month" => number(now.month()),
            "day" => number(now.day()),
            "hour" => number(now.hour()),
            "minute" => number(now.minute()),
            "second" => number(now.second()),
            other => {
                return Err(bad_template(
                    template,
                    &format!("the unknown token `{other}`"),
                ))
            }
        };
        out.push_str(&value);
        rest = &after[close + 1 + spec.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

fn bad_template(template: &str, what: &str) -> CliError {
    CliError::usage(
        format!("file_template `{template}` has {what}"),
        Some("tokens are %(rev)s %(slug)s %(epoch)s %(year)d %(month).2d %(day).2d %(hour).2d %(minute).2d %(second).2d".to_owned()),
    )
}

pub(crate) fn write(ctx: &Ctx, new: NewRevision) -> Result<PathBuf, CliError> {
    let now = Local::now();
    let slug = slug(&new.message, ctx.config.truncate_slug_length);
    let name = render_template(&ctx.config.file_template, &new.id, &slug, now)?;
    let path = new.dir.join(format!("{name}.sql"));
    let create_date = now.format("%Y-%m-%d %H:%M:%S%.6f").to_string();
    let mut text = Revision::render_header(&HeaderFields {
        message: &new.message,
        id: &new.id,
        down_revisions: &new.parents,
        branch_labels: &new.labels,
        depends_on: &new.depends_on,
        create_date: &create_date,
        transactional: new.transactional,
        replaces: &new.replaces,
    });
    text.push_str(&format!(
        "\n-- alembic:upgrade\n{}\n\n-- alembic:downgrade\n{}\n",
        new.upgrade, new.downgrade
    ));
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| CliError::Io {
            path: parent.to_owned(),
            reason: source,
        })?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|source| CliError::Io {
            path: path.clone(),
            reason: source,
        })?;
    file.write_all(text.as_bytes())
        .map_err(|source| CliError::Io {
            path: path.clone(),
            reason: source,
        })?;
    print(&format!("  Generating {} ...  done\n", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn slugs_as_alembic_makes_them() {
        assert_eq!(slug("Create users table", 40), "create_users_table");
        assert_eq!(slug("add e-mail: index!", 40), "add_e_mail_index");
        assert_eq!(slug("", 40), "");
        assert_eq!(
            slug("one two three four five six seven eight nine", 20),
            "one_two_three_four_"
        );
        assert_eq!(slug("Ünïcode wörds", 40), "ünïcode_wörds");
    }

    #[test]
    fn file_templates() {
        let now = Local.with_ymd_and_hms(2026, 3, 7, 9, 5, 1).unwrap();
        assert_eq!(
            render_template("%(rev)s_%(slug)s", "abc", "x_y", now).unwrap(),
            "abc_x_y"
        );
        assert_eq!(
            render_template(
                "%(year)d_%(month).2d_%(day).2d_%(hour).2d%(minute).2d-%(second).2d_%(rev)s",
                "abc",
                "s",
                now
            )
            .unwrap(),
            "2026_03_07_0905-01_abc"
        );
        assert_eq!(
            render_template("%(epoch)s", "a", "s", now).unwrap(),
            now.timestamp().to_string()
        );
        assert!(render_template("%(nope)s", "a", "s", now).is_err());
        assert!(render_template("%(rev", "a", "s", now).is_err());
    }
}
