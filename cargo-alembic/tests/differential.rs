//! Python Alembic 1.20 as the oracle of `alembic_version`: random revision
//! graphs (several bases, branch labels on roots and branch-offs, merges of
//! two and three parents, `depends_on` across branches and onto labels) and
//! random `upgrade`/`downgrade`/`stamp` sequences using every identifier
//! form, run by Python Alembic on one database and by cargo alembic's engine
//! on another. After every command both tables must hold the same rows.
//!
//! The two refusals by design (CONTRACT section 8) are the only exceptions:
//! when cargo alembic refuses with one of them, touching nothing, the
//! command is not given to Alembic either.
//!
//! A fixed set of seeds runs in `cargo test`. `ALEMBIC_DIFF_SEEDS=N` runs N
//! more, `ALEMBIC_DIFF_SEED=S` exactly one. A disagreement fails with the
//! seed and the shortest command sequence that still shows it.

#[path = "support/python.rs"]
mod python;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use alembic_chain::{load_versions, ResolveError, RevisionMap};
use alembic_embed::cli_engine::{Engine, Settings};
use alembic_embed::EngineError;
use alembic_throwaway::{Choice, Server};

/// Seeds that run in every `cargo test`.
const SEEDS: &[u64] = &[1, 2, 3, 4, 5, 6];
const REVISIONS: usize = 40;
const COMMANDS: usize = 40;

/// splitmix64: small, seedable, and the same everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

struct Rev {
    id: String,
    parents: Vec<usize>,
    labels: Vec<String>,
    depends_on: Vec<String>,
}

/// A random revision graph, built in creation order (so acyclic).
fn graph(rng: &mut Rng, n: usize) -> Vec<Rev> {
    let mut revs: Vec<Rev> = Vec::new();
    let mut has_child: Vec<bool> = Vec::new();
    let mut labels = 0;
    let mut bases = 0;
    let mut ancestors: Vec<Vec<bool>> = Vec::new();
    for i in 0..n {
        let heads: Vec<usize> = (0..i).filter(|&h| !has_child[h]).collect();
        let roll = rng.below(100);
        let parents: Vec<usize> = if i == 0 || (roll < 6 && bases < 3) {
            vec![]
        } else if roll < 20 && heads.len() >= 2 {
            let k = if heads.len() >= 3 && rng.chance(35) {
                3
            } else {
                2
            };
            let mut chosen: Vec<usize> = Vec::new();
            while chosen.len() < k {
                let h = *rng.pick(&heads);
                if !chosen.contains(&h) {
                    chosen.push(h);
                }
            }
            chosen.sort_unstable();
            chosen
        } else if roll < 32 {
            // A branch off any revision.
            vec![rng.below(i)]
        } else {
            vec![*rng.pick(&heads)]
        };
        if parents.is_empty() {
            bases += 1;
        }
        let branch_off = parents.len() == 1 && has_child[parents[0]];
        let mut label = Vec::new();
        if (parents.is_empty() || branch_off) && rng.chance(60) {
            labels += 1;
            label.push(format!("lab{labels}"));
        }
        let mut below = vec![false; n];
        for &p in &parents {
            below[p] = true;
            for (k, a) in ancestors[p].iter().enumerate() {
                below[k] |= *a;
            }
        }
        let mut depends_on = Vec::new();
        if i > 2 && rng.chance(18) {
            let candidates: Vec<usize> = (0..i).filter(|&j| !below[j]).collect();
            if !candidates.is_empty() {
                let j = *rng.pick(&candidates);
                let on_label = revs[j].labels.first().filter(|_| rng.chance(40));
                depends_on.push(on_label.cloned().unwrap_or_else(|| revs[j].id.clone()));
                below[j] = true;
                for k in 0..n {
                    below[k] |= ancestors[j][k];
                }
            }
        }
        for &p in &parents {
            has_child[p] = true;
        }
        has_child.push(false);
        ancestors.push(below);
        let id = format!("{:012x}", rng.next() >> 16);
        revs.push(Rev {
            id,
            parents,
            labels: label,
            depends_on,
        });
    }
    revs
}

fn write_projects(revs: &[Rev], ours: &Path, theirs: &Path) {
    std::fs::create_dir_all(ours).unwrap();
    std::fs::create_dir_all(theirs.join("versions")).unwrap();
    let support = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support");
    std::fs::copy(support.join("env.py"), theirs.join("env.py")).unwrap();
    let list = |v: &[String]| {
        if v.is_empty() {
            "None".to_owned()
        } else {
            v.join(", ")
        }
    };
    for (n, r) in revs.iter().enumerate() {
        let parents: Vec<String> = r.parents.iter().map(|&p| revs[p].id.clone()).collect();
        std::fs::write(
            ours.join(format!("{}.sql", r.id)),
            format!(
                "-- revision {n}\n--\n-- revision: {}\n-- down_revision: {}\n-- branch_labels: {}\n-- depends_on: {}\n\n\
                 -- alembic:upgrade\nSELECT 1;\n\n-- alembic:downgrade\nSELECT 1;\n",
                r.id,
                list(&parents),
                list(&r.labels),
                list(&r.depends_on)
            ),
        )
        .unwrap();
        std::fs::write(
            theirs.join(format!("versions/{}.py", r.id)),
            format!(
                "\"\"\"revision {n}\"\"\"\n\nrevision = {:?}\ndown_revision = {}\nbranch_labels = {}\ndepends_on = {}\n\n\n\
                 def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n",
                r.id,
                python::tuple(&parents),
                python::tuple(&r.labels),
                python::tuple(&r.depends_on)
            ),
        )
        .unwrap();
    }
}

#[derive(Clone, Debug)]
struct Cmd {
    verb: &'static str,
    args: Vec<String>,
    purge: bool,
}

impl std::fmt::Display for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}{}",
            self.verb,
            self.args.join(" "),
            if self.purge { " --purge" } else { "" }
        )
    }
}

fn identifier(rng: &mut Rng, revs: &[Rev]) -> String {
    let labels: Vec<&String> = revs.iter().flat_map(|r| &r.labels).collect();
    let steps = 1 + rng.below(3);
    let rev = &rng.pick(revs).id;
    let label = if labels.is_empty() {
        None
    } else {
        Some(labels[rng.below(labels.len())].clone())
    };
    match rng.below(100) {
        0..=14 => rev.clone(),
        15..=22 => rev[..1 + rng.below(7)].to_owned(),
        23..=29 => "head".into(),
        30..=36 => "heads".into(),
        37..=43 => "base".into(),
        44..=50 => format!("+{steps}"),
        51..=58 => format!("-{steps}"),
        59..=63 => format!("{rev}+{steps}"),
        64..=68 => format!("{rev}-{steps}"),
        69..=76 => label.map_or("head".into(), |l| format!("{l}@head")),
        77..=86 => label.map_or("base".into(), |l| format!("{l}@base")),
        87..=92 => label.map_or(format!("+{steps}"), |l| format!("{l}@+{steps}")),
        _ => label.map_or(format!("-{steps}"), |l| format!("{l}@-{steps}")),
    }
}

fn commands(rng: &mut Rng, revs: &[Rev], n: usize) -> Vec<Cmd> {
    (0..n)
        .map(|_| match rng.below(100) {
            0..=44 => Cmd {
                verb: "upgrade",
                args: vec![identifier(rng, revs)],
                purge: false,
            },
            45..=79 => Cmd {
                verb: "downgrade",
                args: vec![identifier(rng, revs)],
                purge: false,
            },
            _ => {
                let mut args = vec![identifier(rng, revs)];
                if rng.chance(20) {
                    args.push(identifier(rng, revs));
                }
                Cmd {
                    verb: "stamp",
                    args,
                    purge: rng.chance(10),
                }
            }
        })
        .collect()
}

/// What a command did on one side.
#[derive(Debug)]
struct Outcome {
    rows: Vec<String>,
    message: String,
}

/// Python Alembic, one process for a whole seed.
struct Alembic {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Alembic {
    fn start(project: &Path, url: &str) -> Alembic {
        let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/alembic_driver.py");
        let mut child = Command::new(python::venv().join("bin/python"))
            .arg(driver)
            .arg(project)
            .arg(url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the Alembic driver");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Alembic {
            child,
            stdin,
            stdout,
        }
    }

    fn request(&mut self, request: serde_json::Value) -> serde_json::Value {
        writeln!(self.stdin, "{request}").unwrap();
        self.stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the Alembic driver answered {line:?}: {e}"))
    }

    fn send(&mut self, request: serde_json::Value) -> Outcome {
        let v = self.request(request);
        Outcome {
            rows: v["rows"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.as_str().unwrap().to_owned())
                .collect(),
            message: format!(
                "{}{}",
                v["error"].as_str().unwrap_or("ok"),
                v["warnings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|w| format!(" (warning: {})", w.as_str().unwrap_or("")))
                    .collect::<String>()
            ),
        }
    }

    fn run(&mut self, cmd: &Cmd) -> Outcome {
        self.send(serde_json::json!({"cmd": cmd.verb, "args": cmd.args, "purge": cmd.purge}))
    }

    fn reset(&mut self) {
        self.send(serde_json::json!({"cmd": "reset"}));
    }

    /// What `alembic history -r <range>` printed, or its error; `None`
    /// when Alembic crashed (an assertion, not one of its refusals).
    fn history(&mut self, range: &str, indicate: bool) -> Option<Result<String, String>> {
        self.printed(serde_json::json!({"cmd": "history", "range": range, "indicate": indicate}))
    }

    /// What a listing command printed, or its error; `None` when Alembic
    /// crashed.
    fn printed(&mut self, request: serde_json::Value) -> Option<Result<String, String>> {
        let v = self.request(request);
        if v["crash"].as_bool().unwrap() {
            return None;
        }
        Some(match v["error"].as_str() {
            Some(error) => Err(error.to_owned()),
            None => Ok(v["output"].as_str().unwrap().to_owned()),
        })
    }
}

impl Drop for Alembic {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// cargo alembic's engine on its own database.
struct Ours<'m> {
    engine: Engine<'m>,
    client: postgres::Client,
}

impl Ours<'_> {
    fn rows(&mut self) -> Vec<String> {
        let mut rows: Vec<String> = self
            .client
            .query(
                "SELECT version_num FROM alembic_version WHERE to_regclass('alembic_version') IS NOT NULL",
                &[],
            )
            .map(|rows| rows.iter().map(|r| r.get(0)).collect())
            .unwrap_or_default();
        rows.sort();
        rows
    }

    /// Runs a command; `Err` for a refusal by design (nothing touched).
    fn run(&mut self, cmd: &Cmd) -> Result<Outcome, String> {
        let result = match cmd.verb {
            "upgrade" => self
                .engine
                .upgrade(&mut self.client, &cmd.args[0], &mut |_| {})
                .map(drop),
            "downgrade" => self
                .engine
                .downgrade(&mut self.client, &cmd.args[0], &mut |_| {})
                .map(drop),
            _ => {
                let targets: Vec<&str> = cmd.args.iter().map(String::as_str).collect();
                self.engine
                    .stamp(&mut self.client, &targets, cmd.purge)
                    .map(drop)
            }
        };
        match result {
            Err(EngineError::Resolve(
                e @ (ResolveError::RelativeFromSeveralHeads { .. }
                | ResolveError::BranchBaseOutsideBranch { .. }),
            )) => Err(e.to_string()),
            result => Ok(Outcome {
                message: result.err().map_or("ok".into(), |e| e.to_string()),
                rows: self.rows(),
            }),
        }
    }

    fn reset(&mut self) {
        self.client
            .batch_execute("DROP TABLE IF EXISTS alembic_version, alembic_version_ledger")
            .unwrap();
    }
}

/// The first command after which the two tables differ, with both outcomes.
fn first_disagreement(
    ours: &mut Ours,
    theirs: &mut Alembic,
    cmds: &[Cmd],
) -> Option<(usize, String)> {
    ours.reset();
    theirs.reset();
    for (k, cmd) in cmds.iter().enumerate() {
        let Ok(mine) = ours.run(cmd) else {
            continue;
        };
        let alembic = theirs.run(cmd);
        if mine.rows != alembic.rows {
            return Some((
                k,
                format!(
                    "after `{cmd}`:\n  cargo alembic: {:?} ({})\n  Alembic:       {:?} ({})",
                    mine.rows, mine.message, alembic.rows, alembic.message
                ),
            ));
        }
    }
    None
}

/// Drops commands, one at a time, while the disagreement remains.
fn shrink(ours: &mut Ours, theirs: &mut Alembic, mut cmds: Vec<Cmd>) -> (Vec<Cmd>, String) {
    let (k, mut why) = first_disagreement(ours, theirs, &cmds).expect("a disagreement");
    cmds.truncate(k + 1);
    let mut i = 0;
    while i < cmds.len() {
        let mut shorter = cmds.clone();
        shorter.remove(i);
        match first_disagreement(ours, theirs, &shorter) {
            Some((k, w)) => {
                shorter.truncate(k + 1);
                cmds = shorter;
                why = w;
            }
            None => i += 1,
        }
    }
    (cmds, why)
}

/// One seed: a random graph and command sequence, both tools; `Err` with
/// the seed and the shortest failing sequence.
fn run_seed(server: &Server, seed: u64) -> Result<usize, String> {
    let mut rng = Rng(seed);
    let revs = graph(&mut rng, REVISIONS);
    let cmds = commands(&mut rng, &revs, COMMANDS);
    compare(server, &format!("seed {seed}"), &revs, cmds)
}

/// Runs `cmds` with both tools on `revs`; `Err` with the shortest command
/// sequence that still disagrees.
fn compare(server: &Server, name: &str, revs: &[Rev], cmds: Vec<Cmd>) -> Result<usize, String> {
    let tmp = tempfile::tempdir().unwrap();
    let (ours_dir, theirs_dir) = (tmp.path().join("versions"), tmp.path().join("alembic"));
    // To look at a seed's projects by hand: ALEMBIC_DIFF_KEEP=1.
    let tmp = if std::env::var_os("ALEMBIC_DIFF_KEEP").is_some() {
        eprintln!("{name}: projects kept in {}", tmp.path().display());
        Err(tmp.keep())
    } else {
        Ok(tmp)
    };
    write_projects(revs, &ours_dir, &theirs_dir);
    let map: RevisionMap =
        load_versions(&ours_dir).unwrap_or_else(|e| panic!("{name}: the graph: {e}"));
    let (db_ours, db_theirs) = (server.database().unwrap(), server.database().unwrap());
    let mut ours = Ours {
        engine: Engine::new(&map, Settings::default()),
        client: postgres::Client::connect(db_ours.url(), postgres::NoTls).unwrap(),
    };
    let mut theirs = Alembic::start(&theirs_dir, db_theirs.url());
    if first_disagreement(&mut ours, &mut theirs, &cmds).is_none() {
        return Ok(cmds.len());
    }
    let (shortest, why) = shrink(&mut ours, &mut theirs, cmds);
    drop(tmp);
    Err(format!(
        "{name}: cargo alembic and Alembic disagree {why}\nshortest sequence from an empty database:\n{}\ngraph:\n{}",
        shortest
            .iter()
            .map(|c| format!("  {c}\n"))
            .collect::<String>(),
        describe(revs)
    ))
}

/// A graph, a revision a line, for a failure's message.
fn describe(revs: &[Rev]) -> String {
    revs.iter()
        .map(|r| {
            format!(
                "  {} <- [{}] labels {:?} depends_on {:?}\n",
                r.id,
                r.parents
                    .iter()
                    .map(|&p| revs[p].id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                r.labels,
                r.depends_on
            )
        })
        .collect()
}

fn seeds() -> Vec<u64> {
    if let Some(one) = std::env::var("ALEMBIC_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![one];
    }
    let more: u64 = std::env::var("ALEMBIC_DIFF_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    SEEDS.iter().copied().chain(1000..1000 + more).collect()
}

#[test]
fn alembic_version_matches_python_alembic_on_random_graphs() {
    every_seed(run_seed);
}

/// Runs one seed's comparison for every seed on one throwaway server;
/// fails with every seed's disagreements, else returns how many things
/// were compared.
fn every_seed(one: fn(&Server, u64) -> Result<usize, String>) -> usize {
    let server = Server::start(Choice::Local).unwrap();
    let mut failures = Vec::new();
    let mut compared = 0;
    for seed in seeds() {
        match one(&server, seed) {
            Ok(n) => compared += n,
            Err(e) => failures.push(e),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    compared
}

/// A random graph written for both tools, a database, and Alembic's
/// driver on it.
struct Both {
    alembic: Alembic,
    db: alembic_throwaway::Database,
    tmp: tempfile::TempDir,
    revs: Vec<Rev>,
}

impl Both {
    fn new(server: &Server, rng: &mut Rng) -> Both {
        let revs = graph(rng, REVISIONS);
        let tmp = tempfile::tempdir().unwrap();
        let theirs_dir = tmp.path().join("alembic");
        write_projects(&revs, &tmp.path().join("versions"), &theirs_dir);
        let db = server.database().unwrap();
        let alembic = Alembic::start(&theirs_dir, db.url());
        Both {
            alembic,
            db,
            tmp,
            revs,
        }
    }
}

/// A seed's result: how many things were compared, or every disagreement
/// with the graph they came from.
fn verdict(seed: u64, compared: usize, wrong: &[String], revs: &[Rev]) -> Result<usize, String> {
    if wrong.is_empty() {
        return Ok(compared);
    }
    Err(format!(
        "seed {seed}: {}\ngraph:\n{}",
        wrong.join("\n"),
        describe(revs)
    ))
}

/// History queries a seed makes.
const HISTORIES: usize = 40;

/// One end of a random `history` range: any identifier form, `current`, or
/// nothing (base below, heads above).
fn range_end(rng: &mut Rng, revs: &[Rev]) -> String {
    match rng.below(100) {
        0..=11 => String::new(),
        12..=21 => "current".into(),
        _ => identifier(rng, revs),
    }
}

/// Sorts the items of each parenthesised group (`(lab2, lab1)`): Alembic
/// keeps a revision's branch labels in a set, so its order changes from one
/// process to the next.
fn labels_sorted(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text.trim();
    while let Some(open) = rest.find('(') {
        let Some(close) = rest[open..].find(')').map(|c| open + c) else {
            break;
        };
        let mut items: Vec<&str> = rest[open + 1..close].split(", ").collect();
        items.sort_unstable();
        out.push_str(&rest[..=open]);
        out.push_str(&items.join(", "));
        out.push(')');
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// `branches` with each branch point's children sorted: Alembic keeps
/// them in a set too.
fn children_sorted(text: &str) -> String {
    text.trim()
        .split("\n\n")
        .map(|block| {
            let mut lines: Vec<&str> = block.lines().collect();
            lines[1..].sort_unstable();
            lines.join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// cargo alembic's command line on the chain in `project`.
fn cargo_alembic(project: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-alembic"))
        .arg("--script-location")
        .arg(project)
        .args(args)
        .output()
        .unwrap()
}

/// A run that ended other than with an answer (exit 0) or an error (1, 2).
fn crashed(out: &std::process::Output) -> bool {
    !matches!(out.status.code(), Some(0..=2))
        || String::from_utf8_lossy(&out.stderr).contains("panicked")
}

/// The revisions a `show` lists (its `Rev:` lines).
fn shown_revisions(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("Rev: "))
        .map(|l| l.split(' ').next().unwrap_or_default().to_owned())
        .collect()
}

/// `show` of a random identifier (or `current`): where Alembic shows
/// revisions, cargo alembic shows the same ones, in the same order. (Where
/// Alembic shows nothing or refuses, cargo alembic may show more of the
/// grammar: `ae10+1`, `label@base`.)
fn show(
    rng: &mut Rng,
    revs: &[Rev],
    alembic: &mut Alembic,
    project: &Path,
    url: &str,
    wrong: &mut Vec<String>,
) {
    let ident = if rng.chance(15) {
        "current".to_owned()
    } else {
        identifier(rng, revs)
    };
    let out = cargo_alembic(project, &["--database-url", url, "show", &ident]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if crashed(&out) {
        wrong.push(format!("`show {ident}` crashed: {stderr}"));
        return;
    }
    let Some(Ok(theirs)) = alembic.printed(serde_json::json!({"cmd": "show", "args": [ident]}))
    else {
        return;
    };
    let mut theirs = shown_revisions(&theirs);
    let mut ours = shown_revisions(&String::from_utf8_lossy(&out.stdout));
    if ident == "current" {
        // The rows in the order the table gives them, for Alembic.
        theirs.sort_unstable();
        ours.sort_unstable();
    }
    if !theirs.is_empty() && ours != theirs {
        wrong.push(format!(
            "`show {ident}`: cargo alembic {ours:?} {stderr}, Alembic {theirs:?}"
        ));
    }
}

/// One seed of [`history_matches_python_alembic_on_random_ranges`]: how
/// many ranges were compared, or every disagreement.
fn history_seed(server: &Server, seed: u64) -> Result<usize, String> {
    // Another stream than the version-table test's for the same seed ("history").
    let mut rng = Rng(seed ^ 0x0068_6973_746f_7279);
    // Bound in this order, they are dropped Alembic's driver first.
    let Both {
        revs,
        tmp,
        db,
        mut alembic,
    } = Both::new(server, &mut rng);
    let mut compared = 0;
    let mut wrong = Vec::new();
    // The listings without a range: `heads` in file order, `branches` in
    // `history`'s order.
    for command in ["heads", "branches"] {
        let out = cargo_alembic(tmp.path(), &[command]);
        let ours = String::from_utf8_lossy(&out.stdout);
        match alembic.printed(serde_json::json!({ "cmd": command })) {
            Some(Ok(theirs))
                if out.status.success()
                    && children_sorted(&labels_sorted(&ours))
                        == children_sorted(&labels_sorted(&theirs)) => {}
            theirs => wrong.push(format!(
                "`{command}`:\n--- cargo alembic:\n{ours}{}\n--- Alembic:\n{theirs:?}",
                String::from_utf8_lossy(&out.stderr)
            )),
        }
    }
    for _ in 0..HISTORIES {
        if rng.chance(30) {
            let mut targets = vec![rng.pick(&revs).id.clone()];
            if rng.chance(20) {
                targets.push(rng.pick(&revs).id.clone());
            }
            alembic.run(&Cmd {
                verb: "stamp",
                args: targets,
                purge: true,
            });
        }
        let range = format!(
            "{}:{}",
            range_end(&mut rng, &revs),
            range_end(&mut rng, &revs)
        );
        let indicate = rng.chance(30);
        let rev_range = format!("--rev-range={range}");
        let mut args = vec!["--database-url", db.url(), "history", &rev_range];
        args.extend(indicate.then_some("-i"));
        let out = cargo_alembic(tmp.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let command = format!("history -r {range}{}", if indicate { " -i" } else { "" });
        if crashed(&out) {
            wrong.push(format!("`{command}` crashed: {stderr}"));
            continue;
        }
        show(
            &mut rng,
            &revs,
            &mut alembic,
            tmp.path(),
            db.url(),
            &mut wrong,
        );
        let Some(theirs) = alembic.history(&range, indicate) else {
            continue;
        };
        compared += 1;
        let ours = if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(stderr.into_owned())
        };
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) if labels_sorted(a) == labels_sorted(b) => {}
            (Err(_), Err(_)) => {}
            (Ok(_), Err(e)) if made_up_by_alembic(e, &range) => {}
            _ => {
                let rows = alembic.send(serde_json::json!({"cmd": "rows"})).rows;
                wrong.push(format!(
                    "`{command}` with the rows {rows:?}:\n--- cargo alembic:\n{}\n--- Alembic:\n{}",
                    ours.unwrap_or_else(|e| format!("error: {e}")),
                    theirs.clone().unwrap_or_else(|e| format!("error: {e}"))
                ));
            }
        }
    }
    verdict(seed, compared, &wrong, &revs)
}

/// Whether Alembic failed to find an identifier it made up itself, one
/// the range does not hold (`-3:lab2@head` once gave "Can't locate
/// revision identified by 'head@lab2@head'"): a defect of Alembic's walk,
/// like its assertions, where cargo alembic answers.
fn made_up_by_alembic(error: &str, range: &str) -> bool {
    let Some((_, rest)) = error.split_once("Can't locate revision identified by '") else {
        return false;
    };
    let ident = rest.split('\'').next().unwrap_or_default();
    !range.contains(ident)
}

/// `history -r` as Python Alembic lists it (and `heads`, `branches` and
/// `show`):
/// random ranges of every
/// identifier form and `current` (which both read from the database), with
/// and without `--indicate-current`, between random stamps. The lines must
/// be the same, in the same order; an error must be an error on both
/// sides. Ranges Alembic crashes on (an assertion) only must not crash
/// cargo alembic.
#[test]
fn history_matches_python_alembic_on_random_ranges() {
    let compared = every_seed(history_seed);
    assert!(
        compared >= seeds().len() * HISTORIES * 3 / 4,
        "only {compared} ranges compared: Alembic crashed on the rest"
    );
}

/// What an offline script does, in order: each `-- Running` line (its
/// verb and revisions, without cargo alembic's message and path) with the
/// version table's rows once its statements ran. (Which row a merge keeps,
/// or an unmerge updates, Alembic picks in a Python set's order, so the
/// statements themselves are not compared.)
fn offline_steps(script: &str) -> Vec<String> {
    let quoted = |line: &str| -> Vec<String> {
        line.split('\'')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let mut rows = std::collections::BTreeSet::new();
    let mut steps = Vec::new();
    let mut step: Option<String> = None;
    let mut done = |step: &mut Option<String>, rows: &std::collections::BTreeSet<String>| {
        if let Some(step) = step.take() {
            steps.push(format!("{step} => {rows:?}"));
        }
    };
    for line in script.lines() {
        if let Some(running) = line.strip_prefix("-- Running ") {
            done(&mut step, &rows);
            let running = running.split(", revision ").next().unwrap_or(running);
            step = Some(running.split_whitespace().collect::<Vec<_>>().join(" "));
            continue;
        }
        let q = quoted(line);
        if line.starts_with("INSERT INTO alembic_version (") {
            rows.extend(q.first().cloned());
        } else if line.starts_with("UPDATE alembic_version SET") {
            if let [new, old, ..] = q.as_slice() {
                rows.remove(old);
                rows.insert(new.clone());
            }
        } else if line.starts_with("DELETE FROM alembic_version WHERE") {
            if let Some(old) = q.first() {
                rows.remove(old);
            }
        }
    }
    done(&mut step, &rows);
    steps.push(format!("end => {rows:?}"));
    steps
}

const OFFLINE_RANGES: usize = 40;

/// One seed of [`offline_scripts_match_python_alembic_on_random_ranges`].
fn offline_seed(server: &Server, seed: u64) -> Result<usize, String> {
    let mut rng = Rng(seed ^ 0x006f_6666_6c69_6e65);
    let Both {
        revs,
        tmp,
        db: _db,
        mut alembic,
    } = Both::new(server, &mut rng);
    let mut compared = 0;
    let mut wrong = Vec::new();
    for _ in 0..OFFLINE_RANGES {
        let verb = match rng.below(100) {
            0..=39 => "upgrade",
            40..=79 => "downgrade",
            _ => "stamp",
        };
        // `upgrade --sql X` and `stamp --sql X` start from base.
        let from = (verb == "downgrade" || !rng.chance(25)).then(|| identifier(&mut rng, &revs));
        let mut targets = vec![identifier(&mut rng, &revs)];
        if verb == "stamp" && rng.chance(20) {
            targets.push(identifier(&mut rng, &revs));
        }
        let targets: Vec<String> = targets
            .into_iter()
            .map(|to| match &from {
                Some(from) => format!("{from}:{to}"),
                None => to,
            })
            .collect();
        let range = targets.join(" ");
        let from = from.unwrap_or_default();
        let mut args = vec![verb, "--sql"];
        args.extend(targets.iter().map(String::as_str));
        let out = cargo_alembic(tmp.path(), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if crashed(&out) {
            wrong.push(format!("`{verb} --sql {range}` crashed: {stderr}"));
            continue;
        }
        let theirs =
            alembic.printed(serde_json::json!({"cmd": "offline", "verb": verb, "range": targets}));
        let Some(theirs) = theirs else {
            continue;
        };
        compared += 1;
        // A stamp is compared by the rows it leaves.
        let steps = |script: &str| {
            let mut steps = offline_steps(script);
            if verb == "stamp" {
                steps.drain(..steps.len() - 1);
            }
            steps
        };
        let ours = if out.status.success() {
            Ok(steps(&String::from_utf8_lossy(&out.stdout)))
        } else {
            Err(stderr.trim().to_owned())
        };
        let theirs = theirs.map(|script| steps(&script));
        let beyond_alembic = |error: &str| {
            // The grammar's relative forms and `heads` where Alembic takes
            // neither at the start of an offline range.
            (error.contains("Can't locate revision identified by")
                && (from.contains('+') || from.contains('-')))
                || error.contains("Multiple head revisions are present for given argument 'heads'")
        };
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) if a == b => {}
            (Err(_), Err(_)) => {}
            (Ok(_), Err(e)) if beyond_alembic(e) => {}
            // A branch's base below revisions of other branches: refused
            // by design, as `downgrade label@base` is online.
            (Err(e), Ok(_)) if e.contains("not on branch") => {}
            _ => wrong.push(format!(
                "`{verb} --sql {range}`:\n--- cargo alembic:\n{ours:#?}\n--- Alembic:\n{theirs:#?}"
            )),
        }
    }
    verdict(seed, compared, &wrong, &revs)
}

/// `upgrade --sql`, `downgrade --sql` and `stamp --sql` as Python Alembic
/// writes them: random ranges of every identifier form; the same
/// revisions run in the same order, with the same rows after each (a
/// stamp: at its end), or an error on both sides. Ranges Alembic crashes on must not crash cargo alembic.
#[test]
fn offline_scripts_match_python_alembic_on_random_ranges() {
    let compared = every_seed(offline_seed);
    assert!(
        compared >= seeds().len() * OFFLINE_RANGES / 2,
        "only {compared} ranges compared: Alembic crashed on the rest"
    );
}

/// The expand/contract layout of large projects: two labelled branches
/// from one root, each contract revision depending on the expand revision
/// of its release. A downgrade inside one branch once left a row more than
/// Alembic does.
#[test]
fn expand_contract_downgrades_leave_alembics_rows() {
    let server = Server::start(Choice::Local).unwrap();
    let rev = |id: &str, parents: &[usize], labels: &[&str], depends_on: &[&str]| Rev {
        id: id.to_owned(),
        parents: parents.to_vec(),
        labels: labels.iter().map(|l| (*l).to_owned()).collect(),
        depends_on: depends_on.iter().map(|d| (*d).to_owned()).collect(),
    };
    let revs = vec![
        rev("r0000000root", &[], &[], &[]),
        rev("e1000000expa", &[0], &["expand"], &[]),
        rev("e2000000expa", &[1], &[], &[]),
        rev("e3000000expa", &[2], &[], &[]),
        rev("c1000000cont", &[0], &["contract"], &["e1000000expa"]),
        rev("c2000000cont", &[4], &[], &["e2000000expa"]),
        rev("c3000000cont", &[5], &[], &["e3000000expa"]),
    ];
    let cmd = |verb: &'static str, target: &str| Cmd {
        verb,
        args: vec![target.to_owned()],
        purge: false,
    };
    let cmds = vec![
        cmd("upgrade", "heads"),
        cmd("downgrade", "e2000000expa"),
        cmd("upgrade", "heads"),
        cmd("downgrade", "c2000000cont"),
        cmd("downgrade", "expand@e1000000expa"),
        cmd("upgrade", "contract@head"),
        cmd("downgrade", "contract@-1"),
        cmd("downgrade", "e1000000expa"),
        cmd("upgrade", "expand@+1"),
        cmd("upgrade", "heads"),
        cmd("downgrade", "r0000000root"),
        cmd("downgrade", "base"),
    ];
    if let Err(e) = compare(&server, "expand/contract", &revs, cmds) {
        panic!("{e}");
    }
}
