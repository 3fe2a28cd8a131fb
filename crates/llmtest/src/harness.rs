//! The `cargo test` harness: one libtest-mimic trial per case × model, plus one snapshot
//! trial per suite × model. Requests for all selected trials start at once on one shared
//! runtime (bounded per model by `max_concurrency`, independent of `--test-threads`); each
//! trial then waits for its own result and grades it. Works with `cargo nextest run`
//! (a process per test: that process runs just its own item).

use std::collections::{BTreeMap, BTreeSet};
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use libtest_mimic::{Arguments, Completion, Failed, Trial};

use llmtest_grade::Outcome;
use llmtest_spec::SnapshotMode;

use crate::engine::{Engine, Plan, PlanOptions, Work};
use crate::results::CaseResult;
use crate::{Llmtest, snapshot};

type EngineCell = Arc<OnceLock<Arc<Engine>>>;

type Outcomes = BTreeMap<(String, String), BTreeMap<String, Outcome>>;

/// Committed snapshots' recorded outcomes, read once per suite × model before any trial
/// runs: a snapshot trial of this same run may rewrite the file (`INSTA_UPDATE=always`),
/// and what it writes must not turn a new failure into a "known" one.
#[derive(Default)]
struct Recorded(OnceLock<Outcomes>);

impl Recorded {
    fn load(&self, dir: &std::path::Path, work: &[Work], cache: Option<&std::path::Path>) {
        // The cases each suite × model runs here (one, in a one-trial process).
        let mut ids: BTreeMap<(String, String), Vec<&str>> = BTreeMap::new();
        for w in work {
            ids.entry((w.suite.name.clone(), w.model.clone()))
                .or_default()
                .push(&w.case().id);
        }
        let mut map = Outcomes::new();
        for ((suite, model), ids) in ids {
            if let Some(m) = snapshot::recorded_outcomes(dir, &suite, &model, cache, Some(&ids)) {
                map.insert((suite, model), m);
            }
        }
        let _ = self.0.set(map);
    }

    fn outcome(&self, suite: &str, model: &str, case: &str) -> Option<Outcome> {
        let map = self.0.get()?;
        map.get(&(suite.to_owned(), model.to_owned()))
            .and_then(|m| m.get(case).copied())
    }
}

pub(crate) fn run(
    lt: &Llmtest,
    mut args: Arguments,
    shard: Option<crate::shard::Shard>,
) -> ExitCode {
    let root = lt.root_dir();
    let registry = Arc::new(lt.grader_registry(&root));
    // `--exact suite::case::model` (how nextest runs each test in its own process): only
    // that suite, and in it only that case, needs resolving; the listing that chose the name
    // validated everything. `suite::model::snapshot` needs the whole suite.
    let (only_suites, only_case) = match (&args.filter, args.exact, args.list) {
        (Some(name), true, false) => {
            let parts: Vec<&str> = name.splitn(3, "::").collect();
            let case = match parts.as_slice() {
                [_, case, last] if *last != "snapshot" && *case != "compare" => {
                    Some((*case).to_owned())
                }
                _ => None,
            };
            (Some(vec![parts[0].to_owned()]), case)
        }
        _ => (None, None),
    };
    // A one-trial process reads its suite (its case) from the plan cache when that is
    // fresh; a process that loads everything refreshes the cache when it is not.
    let cache = crate::cache::PlanCache::locate(&root);
    if let Some(c) = &cache {
        llmtest_backend::set_cassette_index_dir(c.dir().join("index"));
    }
    let cached = match (&cache, &only_suites) {
        (Some(c), Some(s)) => c.load(&registry, &s[0], only_case.as_deref()),
        _ => None,
    };
    let whole = only_suites.is_none();
    let plan = match cached {
        Some(p) => p,
        None => match Plan::load(
            &root,
            &registry,
            &PlanOptions {
                only_suites,
                only_case,
                ..PlanOptions::default()
            },
        ) {
            Ok(p) => p,
            Err(d) => {
                eprintln!("{d}");
                return ExitCode::from(2);
            }
        },
    };
    if whole
        && let Some(c) = &cache
        && !c.is_fresh()
    {
        // Best effort: without it each one-trial process loads its suite itself.
        let _ = c.store(&plan, &llmtest_spec::files_read());
    }
    if std::env::var_os("INSTA_WORKSPACE_ROOT").is_none() {
        // Snapshots belong to the project being tested, not to wherever llmtest was built.
        // SAFETY: set before any thread of ours exists.
        unsafe { std::env::set_var("INSTA_WORKSPACE_ROOT", &plan.project.root) };
    }
    let cell: EngineCell = Arc::new(OnceLock::new());
    let snapshots_dir = plan.project.root.join(&plan.project.snapshots);
    let allow_known = plan.profile.allow_known_failures;
    let recorded = Arc::new(Recorded::default());

    let mut trials = Vec::with_capacity(plan.work.len() + plan.suites.len());
    let mut needs: BTreeMap<String, Vec<Work>> = BTreeMap::new();
    for w in &plan.work {
        let name = w.name();
        needs.insert(name.clone(), vec![w.clone()]);
        let (cell, w, rec) = (cell.clone(), w.clone(), recorded.clone());
        let (suite, model) = (w.suite.name.clone(), w.model.clone());
        let known = move |case: &str| {
            if allow_known {
                rec.outcome(&suite, &model, case)
            } else {
                None
            }
        };
        trials.push(Trial::ignorable_test(name, move || {
            case_trial(&cell, &w, &known)
        }));
    }
    let mut groups: BTreeMap<(String, String), Vec<Work>> = BTreeMap::new();
    for w in &plan.work {
        if w.suite.snapshot != SnapshotMode::Off {
            groups
                .entry((w.suite.name.clone(), w.model.clone()))
                .or_default()
                .push(w.clone());
        }
    }
    for ((suite, model), works) in groups {
        let name = format!("{suite}::{model}::snapshot");
        needs.insert(name.clone(), works.clone());
        let (cell, dir) = (cell.clone(), snapshots_dir.clone());
        trials.push(Trial::ignorable_test(name, move || {
            snapshot_trial(&cell, &suite, &model, &works, &dir)
        }));
    }
    for p in crate::compare::trial::planned(&plan) {
        needs.insert(p.name.clone(), p.works.clone());
        let cell = cell.clone();
        trials.push(Trial::ignorable_test(p.name.clone(), move || {
            crate::compare::trial::run(engine(&cell)?, &p)
        }));
    }
    trials.sort_by(|a, b| a.name().cmp(b.name()));
    if let Some(shard) = shard {
        // The same assignment as `llmtest run --shard` and nextest's `hash:K/N` partition.
        trials.retain(|t| shard.contains(t.name()));
    }

    if args.list {
        return libtest_mimic::run(&args, trials).exit_code();
    }
    let selected: Vec<&Trial> = trials
        .iter()
        .filter(|t| !args.is_filtered_out(t) && !args.is_ignored(t))
        .collect();
    if selected.is_empty() && (args.filter.is_some() || !args.skip.is_empty()) {
        // A filter that matches nothing is more likely a typo than an intent.
        eprintln!(
            "llmtest: no trial matches the filter; `--list` shows the {} trial names",
            trials.len()
        );
    }
    let mut work: Vec<Work> = Vec::new();
    let mut seen = BTreeSet::new();
    for t in &selected {
        for w in needs.get(t.name()).into_iter().flatten() {
            if seen.insert(w.name()) {
                work.push(w.clone());
            }
        }
    }
    // One trial (how nextest runs each): it runs on this thread, not in a pool of threads
    // (spawning and tearing down threads was a tenth of such a process's time).
    if selected.len() == 1 {
        args.test_threads = Some(1);
    }
    let (engine, models) = match lt.start_engine(&plan, &work) {
        Ok(started) => started,
        Err(code) => return code,
    };
    for m in &models {
        if let Some(r) = engine.skip_reason(m) {
            eprintln!("llmtest: {r}");
        }
    }
    if allow_known {
        let index = cache.as_ref().map(|c| c.dir().join("index"));
        recorded.load(&snapshots_dir, &work, index.as_deref());
    }
    engine.prefetch(&work);
    let _ = cell.set(engine.clone());
    let conclusion = libtest_mimic::run(&args, trials);
    engine.shutdown();
    conclusion.exit_code()
}

fn engine(cell: &EngineCell) -> Result<&Arc<Engine>, Failed> {
    cell.get()
        .ok_or_else(|| Failed::from("llmtest engine was not started"))
}

fn case_trial(
    cell: &EngineCell,
    w: &Work,
    known: &dyn Fn(&str) -> Option<Outcome>,
) -> Result<Completion, Failed> {
    let engine = engine(cell)?;
    if let Some(r) = engine.skip_reason(&w.model) {
        return Ok(Completion::ignored_with(r));
    }
    let r = engine.result(w);
    match r.outcome {
        Outcome::Pass => Ok(Completion::Completed),
        Outcome::Skipped => Ok(Completion::ignored_with(
            r.skipped.clone().unwrap_or_default(),
        )),
        o if o.is_infra() => {
            let e = r
                .error
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_else(|| failure_message(&r));
            let what = if o == Outcome::JudgeError {
                "the judge failed"
            } else {
                "infrastructure error"
            };
            Err(Failed::from(format!("{what}, not a wrong answer: {e}")))
        }
        other => {
            if known(&r.case) == Some(other) {
                return Ok(Completion::Completed);
            }
            Err(Failed::from(failure_message(&r)))
        }
    }
}

fn snapshot_trial(
    cell: &EngineCell,
    suite: &str,
    model: &str,
    works: &[Work],
    dir: &std::path::Path,
) -> Result<Completion, Failed> {
    let engine = engine(cell)?;
    if let Some(r) = engine.skip_reason(model) {
        return Ok(Completion::ignored_with(r));
    }
    let mut results: Vec<Arc<CaseResult>> = works.iter().map(|w| engine.result(w)).collect();
    // Cases skipped by design (no credentials, an answers file covering some cases) are not
    // part of the snapshot; infrastructure errors make it uncheckable.
    results.retain(|r| r.outcome != Outcome::Skipped);
    if results.is_empty() {
        return Ok(Completion::ignored_with("every case was skipped"));
    }
    if let Some(e) = unrunnable("snapshot", &results) {
        return Err(e);
    }
    let mode = works.first().map(|w| w.suite.snapshot).unwrap_or_default();
    let suite_file = works
        .first()
        .map(|w| w.suite.file.clone())
        .unwrap_or_default();
    let refs: Vec<&CaseResult> = results.iter().map(|r| r.as_ref()).collect();
    let doc = snapshot::build(suite, model, mode, &refs);
    match std::panic::catch_unwind(|| snapshot::assert(dir, &suite_file, &doc)) {
        Ok(()) => Ok(Completion::Completed),
        Err(_) => Err(Failed::from(format!(
            "snapshot `{}` does not match these results (diff above); review with `cargo insta review`",
            snapshot::path(
                std::path::Path::new(&engine.project().snapshots),
                suite,
                model
            )
            .display()
        ))),
    }
}

/// The failure of a trial over several results (`what`: snapshot, comparison) when some
/// could not be run: infrastructure, not the model, so nothing is checked.
pub(crate) fn unrunnable(what: &str, results: &[Arc<CaseResult>]) -> Option<Failed> {
    let infra: Vec<&Arc<CaseResult>> = results.iter().filter(|r| r.outcome.is_infra()).collect();
    let first = infra.first()?;
    let e = first
        .error
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    Some(Failed::from(format!(
        "{what} not checked: {} of {} case(s) could not be run (infrastructure, not the model); first: {} on {}: {e}",
        infra.len(),
        results.len(),
        first.case,
        first.model
    )))
}

/// What a failed trial prints: the answer, and what each assertion expected and found.
pub(crate) fn failure_message(r: &CaseResult) -> String {
    let mut out = format!("outcome: {} (score {:.2})", r.outcome, r.score);
    if r.outcome == Outcome::UnterminatedReasoning {
        out.push_str(" — the model ran out of tokens while still thinking; raise max_tokens or check the model");
    }
    for s in &r.samples {
        if s.outcome == Outcome::Pass && r.samples.len() > 1 {
            continue;
        }
        if r.samples.len() > 1 {
            out.push_str(&format!("\nsample {}: {}", s.index, s.outcome));
        }
        out.push_str(&format!(
            "\n  answer: {}",
            llmtest_grade::text::excerpt(&s.answer)
        ));
        if s.reasoning_chars > 0 {
            out.push_str(&format!(
                "\n  reasoning: {} ({} chars, removed before grading)",
                s.reasoning_status, s.reasoning_chars
            ));
        }
        for a in &s.assertions {
            let mark = if a.pass { "✓" } else { "✗" };
            out.push_str(&format!(
                "\n  {mark} {}: expected {}; found {}",
                a.kind, a.expected, a.found
            ));
        }
    }
    out
}
