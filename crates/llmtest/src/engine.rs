//! Planning (suites × cases × models → sorted work items, each case's graders built once)
//! and execution (one shared runtime, bounded concurrency per model, each item run once and
//! shared by whoever waits for it: a harness trial, a snapshot trial, the CLI).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio::sync::{OnceCell, Semaphore};

use llmtest_backend::{
    Backend, BackendContext, BackendError, BackendFactory, InfraError, InfraKind, RecordBackend,
    ReplayBackend, Response,
};
use llmtest_grade::{
    Grader, GraderRegistry, Outcome, Sample, grade_sample_with, pass_at_k, split_reasoning,
};
use llmtest_spec::{
    Case, Diagnostic, Diagnostics, Profile, Project, ReasoningPolicy, RunMode, Suite,
};

use crate::results::{CaseResult, ModelInfo, SampleResult};

/// One case on one model.
#[derive(Clone, Debug)]
pub struct Work {
    pub suite: Arc<Suite>,
    pub case: usize,
    pub model: String,
    /// The case's graders, built when the plan was resolved.
    pub(crate) graders: Graders,
}

/// A case's assertions with the graders built for them, once per case when the plan is
/// resolved and shared by the case's items on every model.
#[derive(Clone, Default)]
/// `list[i]` is built from the case's `expect[i]`; `quick`: every one only computes (see
/// [`GraderRegistry::is_quick`]), so the case is graded where its answer arrives.
pub(crate) struct Graders {
    list: Arc<[Arc<dyn Grader>]>,
    quick: bool,
}

impl Graders {
    /// Builds the graders of `case`'s assertions. The loader has checked every assertion, but
    /// it checks a suite's default assertions before their templates are rendered for each
    /// case, so a rendering can still be refused here: that is a load error of the case.
    pub(crate) fn build(registry: &GraderRegistry, case: &Case) -> Result<Graders, Diagnostic> {
        let built: Result<Vec<_>, Diagnostic> = case
            .expect
            .iter()
            .map(|a| match registry.build(a) {
                Ok(g) => Ok(g),
                Err(e) => {
                    let mut d = Diagnostic::new(
                        case.loc.clone(),
                        format!(
                            "case `{}`: assertion `{}`: {}",
                            case.id,
                            a.display_kind(),
                            e.message
                        ),
                    );
                    d.hint = e.hint;
                    Err(d)
                }
            })
            .collect();
        built.map(|g| Graders {
            list: g.into(),
            quick: case.expect.iter().all(|a| registry.is_quick(&a.kind)),
        })
    }
}

impl std::fmt::Debug for Graders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} grader(s)", self.list.len())
    }
}

impl Work {
    pub fn case(&self) -> &Case {
        &self.suite.cases[self.case]
    }
    /// The trial name: `suite::case::model`. Substring filters select a suite, a case or a model.
    pub fn name(&self) -> String {
        format!("{}::{}::{}", self.suite.name, self.case().id, self.model)
    }
}

/// What will run: suites loaded, models chosen, work sorted by name.
pub struct Plan {
    pub project: Project,
    pub profile: Profile,
    pub suites: Vec<Arc<Suite>>,
    pub work: Vec<Work>,
}

/// Options that shape a plan.
#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// Suite files or directories (default: the config's).
    pub paths: Vec<PathBuf>,
    pub profile: Option<String>,
    /// Run these models instead of the profile's.
    pub models: Vec<String>,
    /// Force a mode (the `record` command).
    pub mode: Option<RunMode>,
    /// Resolve only these suites (a process that runs one trial); `None`: all.
    pub only_suites: Option<Vec<String>>,
    /// Within them, build only the case with this id (a process that runs one case trial).
    pub only_case: Option<String>,
}

impl Plan {
    /// Loads and validates everything; all problems are returned together.
    pub fn load(
        root: &Path,
        registry: &GraderRegistry,
        opts: &PlanOptions,
    ) -> Result<Plan, Diagnostics> {
        let project = Project::load(root)?;
        let mut profile = project.profile(opts.profile.as_deref()).map_err(one)?;
        if let Some(m) = opts.mode {
            profile.mode = m;
        }
        if !opts.models.is_empty() {
            let mut diags = Diagnostics::default();
            for m in &opts.models {
                if !project.models.contains_key(m) {
                    let known: Vec<&str> = project.models.keys().map(String::as_str).collect();
                    diags.push(
                        Diagnostic::new(
                            llmtest_spec::Loc::new(llmtest_spec::CONFIG_FILE, 0, 0),
                            format!("unknown model `{m}`"),
                        )
                        .with_hint(llmtest_spec::unknown_name_hint(m, known.iter().copied())),
                    );
                }
            }
            if !diags.is_empty() {
                return Err(diags);
            }
            profile.models = opts.models.clone();
        }
        let files = project.discover(&opts.paths)?;
        let suites: Vec<Arc<Suite>> = llmtest_spec::load_suites_filtered(
            &project,
            &files,
            registry,
            opts.only_suites.as_deref(),
            opts.only_case.as_deref(),
        )?
        .into_iter()
        .map(Arc::new)
        .collect();
        crate::perf::refuse_replay(&profile, &suites)?;
        if opts.paths.is_empty() && opts.only_suites.is_none() {
            // A model limited to suites that do not exist is a typo, not an intent.
            let mut diags = Diagnostics::default();
            for m in project.models.values() {
                for s in m.suites.iter().flatten() {
                    if !suites.iter().any(|x| &x.name == s) {
                        let names: Vec<&str> = suites.iter().map(|x| x.name.as_str()).collect();
                        diags.push(
                            Diagnostic::new(
                                m.loc.clone(),
                                format!("model `{}` names unknown suite `{s}`", m.name),
                            )
                            .with_hint(llmtest_spec::unknown_name_hint(s, names.iter().copied())),
                        );
                    }
                }
            }
            if !diags.is_empty() {
                return Err(diags);
            }
        }
        let mut work = Vec::new();
        let mut unbuilt = Diagnostics::default();
        for s in &suites {
            let models = models_for(&project, &profile, s);
            if models.is_empty() {
                continue;
            }
            for (i, case) in s.cases.iter().enumerate() {
                let graders = match Graders::build(registry, case) {
                    Ok(g) => g,
                    Err(d) => {
                        unbuilt.push(d);
                        continue;
                    }
                };
                for m in &models {
                    work.push(Work {
                        suite: s.clone(),
                        case: i,
                        model: m.clone(),
                        graders: graders.clone(),
                    });
                }
            }
        }
        if !unbuilt.is_empty() {
            return Err(unbuilt);
        }
        work.sort_by_cached_key(Work::name);
        // Only suites that run need a judge (a profile without one can run the others).
        let judged: Vec<Arc<Suite>> = suites
            .iter()
            .filter(|s| work.iter().any(|w| Arc::ptr_eq(&w.suite, s)))
            .cloned()
            .collect();
        let judges = crate::judge::check(&judged, &project, profile.judge.as_deref());
        if !judges.is_empty() {
            return Err(judges);
        }
        Ok(Plan {
            project,
            profile,
            suites,
            work,
        })
    }
}

fn one(msg: String) -> Diagnostics {
    Diagnostics(vec![Diagnostic::new(
        llmtest_spec::Loc::new(llmtest_spec::CONFIG_FILE, 0, 0),
        msg,
    )])
}

/// The models a suite runs on: the profile's (or those asked for), narrowed to the ones the
/// suite names in `models:`, and to models whose `suites:` (if any) include this suite.
fn models_for(project: &Project, profile: &Profile, suite: &Suite) -> Vec<String> {
    profile
        .models
        .iter()
        .filter(|m| suite.models.as_ref().is_none_or(|named| named.contains(m)))
        .filter(|m| {
            project
                .models
                .get(*m)
                .is_none_or(|c| c.suites.as_ref().is_none_or(|s| s.contains(&suite.name)))
        })
        .cloned()
        .collect()
}

enum Slot {
    Ready {
        backend: Arc<dyn Backend>,
        sem: Arc<Semaphore>,
        /// The model's request limit (the semaphore's permits).
        limit: usize,
    },
    /// Missing credential: trials are skipped (ignored) with this reason.
    Skipped(String),
    /// The backend cannot run here: every trial is an infrastructure error.
    Unavailable(String),
}

impl Slot {
    fn ready(backend: Arc<dyn Backend>, limit: usize) -> Slot {
        Slot::Ready {
            backend,
            sem: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }
}

/// Called as each item finishes (the run journal, the progress bar).
pub type OnDone = Arc<dyn Fn(&Work, &CaseResult) + Send + Sync>;

/// An item's place in the engine: its result once run, or `Taken` when handed over.
enum Item {
    Live(Arc<OnceCell<Arc<CaseResult>>>),
    Taken,
}

/// Executes work items. Create once per process; share across threads.
pub struct Engine {
    rt: tokio::runtime::Runtime,
    project: Project,
    mode: RunMode,
    slots: BTreeMap<String, Slot>,
    cells: Mutex<HashMap<String, Item>>,
    /// Called once per item by whoever runs it (a worker or a caller of `result`).
    done: Mutex<Option<OnDone>>,
    /// Generations (shared with `pairwise`) and judge calls.
    hub: Arc<crate::judge::Hub>,
}

impl Engine {
    /// Creates the backends of `models` (only those: a filtered run starts no other server).
    /// A model whose options are invalid is a config error (exit 2), returned with the others.
    pub fn new(
        plan: &Plan,
        models: &[String],
        factories: &BTreeMap<String, Arc<dyn BackendFactory>>,
    ) -> Result<Engine, Diagnostics> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .worker_threads(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
                    .max(2),
            )
            .thread_name("llmtest")
            .build()
            .map_err(|e| one(format!("cannot start the async runtime: {e}")))?;
        let ctx = BackendContext {
            root: plan.project.root.clone(),
            cassettes: plan.project.root.join(&plan.project.cassettes),
        };
        let mut slots = BTreeMap::new();
        let mut diags = Diagnostics::default();
        for name in models {
            let Some(cfg) = plan.project.models.get(name) else {
                continue;
            };
            let offline = factories.get(&cfg.backend).is_some_and(|f| f.offline());
            let mode = if offline {
                RunMode::Live
            } else {
                plan.profile.mode
            };
            let slot = match mode {
                RunMode::Replay => {
                    match ReplayBackend::open(&ctx.cassettes, &plan.project.cassettes, name) {
                        Ok(b) => Slot::ready(Arc::new(b), cfg.max_concurrency.max(16)),
                        Err(e) => Slot::Unavailable(e),
                    }
                }
                RunMode::Live | RunMode::Record => match factories.get(&cfg.backend) {
                    None => {
                        let known: Vec<&str> = factories.keys().map(String::as_str).collect();
                        diags.push(
                            Diagnostic::new(
                                cfg.loc.clone(),
                                format!("model `{name}`: unknown backend `{}`", cfg.backend),
                            )
                            .with_hint(
                                llmtest_spec::unknown_name_hint(
                                    &cfg.backend,
                                    known.iter().copied(),
                                ),
                            ),
                        );
                        continue;
                    }
                    Some(f) => {
                        let _guard = rt.enter();
                        match f.create(cfg, &ctx) {
                            Ok(b) => {
                                let b: Arc<dyn Backend> = if mode == RunMode::Record {
                                    Arc::new(RecordBackend::new(b, &ctx.cassettes, name))
                                } else {
                                    b
                                };
                                Slot::ready(b, cfg.max_concurrency)
                            }
                            Err(BackendError::MissingCredential { var }) => Slot::Skipped(format!(
                                "model `{name}` skipped: environment variable `{var}` is not set"
                            )),
                            Err(BackendError::Unavailable(m)) => {
                                Slot::Unavailable(format!("model `{name}` unavailable: {m}"))
                            }
                            Err(BackendError::Config { message, hint }) => {
                                let mut d = Diagnostic::new(cfg.loc.clone(), message);
                                d.hint = hint;
                                diags.push(d);
                                continue;
                            }
                        }
                    }
                },
            };
            slots.insert(name.clone(), slot);
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        let live: Vec<Arc<dyn Backend>> = slots
            .values()
            .filter_map(|s| {
                if let Slot::Ready { backend, .. } = s {
                    Some(backend.clone())
                } else {
                    None
                }
            })
            .collect();
        if !live.is_empty() {
            rt.spawn(stop_on_signal(live));
        }
        let hub_backends = slots
            .iter()
            .map(|(name, slot)| {
                let b = match slot {
                    Slot::Ready { backend, sem, .. } => Ok((backend.clone(), sem.clone())),
                    Slot::Skipped(r) | Slot::Unavailable(r) => Err(r.clone()),
                };
                (name.clone(), b)
            })
            .collect();
        let hub = Arc::new(crate::judge::Hub::new(
            rt.handle().clone(),
            plan.project.clone(),
            hub_backends,
            plan.profile.judge.clone(),
            &plan.suites,
        ));
        Ok(Engine {
            hub,
            rt,
            project: plan.project.clone(),
            mode: plan.profile.mode,
            slots,
            cells: Mutex::new(HashMap::new()),
            done: Mutex::new(None),
        })
    }

    /// The backends as judge calls and shared generations see them.
    pub(crate) fn hub(&self) -> Arc<crate::judge::Hub> {
        self.hub.clone()
    }

    pub fn project(&self) -> &Project {
        &self.project
    }

    pub fn mode(&self) -> RunMode {
        self.mode
    }

    /// Why a model's trials are skipped, if they are.
    pub fn skip_reason(&self, model: &str) -> Option<&str> {
        match self.slots.get(model) {
            Some(Slot::Skipped(r)) => Some(r),
            _ => None,
        }
    }

    /// The item's cell, made if need be; a taken item gets a fresh one (it runs again).
    fn cell(&self, w: &Work) -> Arc<OnceCell<Arc<CaseResult>>> {
        let (name, mut cells) = (w.name(), self.cells.lock().expect("cells"));
        if let Some(Item::Live(c)) = cells.get(&name) {
            return c.clone();
        }
        let c = Arc::new(OnceCell::new());
        cells.insert(name, Item::Live(c.clone()));
        c
    }

    /// The item's cell for a worker: none once the item was taken (it ran and was handed
    /// over; a worker that reaches it late must not run it again).
    fn worker_cell(&self, w: &Work) -> Option<Arc<OnceCell<Arc<CaseResult>>>> {
        let mut cells = self.cells.lock().expect("cells");
        match cells
            .entry(w.name())
            .or_insert_with(|| Item::Live(Default::default()))
        {
            Item::Live(c) => Some(c.clone()),
            Item::Taken => None,
        }
    }

    /// Runs an item and reports it to the `done` callback, if any: exactly once per run of
    /// an item, wherever it ran.
    async fn run_item(&self, w: &Work) -> Arc<CaseResult> {
        let r = Arc::new(self.execute(w).await);
        let done = self.done.lock().expect("done").clone();
        if let Some(done) = done {
            done(w, &r);
        }
        r
    }

    /// Starts every item in the background; results are picked up with [`Engine::result`].
    pub fn prefetch(self: &Arc<Self>, work: &[Work]) {
        self.start_workers(work);
    }

    /// As [`Engine::prefetch`], calling `done` as each item finishes, in completion order
    /// (the run journal and the progress bar).
    pub fn prefetch_with(self: &Arc<Self>, work: &[Work], done: OnDone) {
        *self.done.lock().expect("done") = Some(done);
        self.start_workers(work);
    }

    /// A few workers per model take its items in plan order, each running one at a time: a
    /// run holds as many pending executions as there are workers, not one per case (a task
    /// per case up front cost ≈ 4.8 KB of memory per case before it ran). Twice the model's
    /// request limit, so that grading (code runs, judges) overlaps the next requests.
    fn start_workers(self: &Arc<Self>, work: &[Work]) {
        let mut queues: BTreeMap<&str, Vec<Work>> = BTreeMap::new();
        for w in work {
            queues.entry(w.model.as_str()).or_default().push(w.clone());
        }
        for (model, items) in queues {
            let workers = match self.slots.get(model) {
                Some(Slot::Ready { limit, .. }) => (2 * limit).max(2),
                _ => 1,
            };
            let items: Arc<[Work]> = items.into();
            let next = Arc::new(AtomicUsize::new(0));
            for _ in 0..workers.min(items.len()) {
                let (me, items, next) = (self.clone(), items.clone(), next.clone());
                self.rt.spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(w) = items.get(i) else { break };
                        if let Some(cell) = me.worker_cell(w) {
                            cell.get_or_init(|| me.run_item(w)).await;
                        }
                    }
                });
            }
        }
    }

    /// The result of one item, running it if nobody has yet (blocks the calling thread).
    pub fn result(&self, w: &Work) -> Arc<CaseResult> {
        let cell = self.cell(w);
        self.rt
            .block_on(async { cell.get_or_init(|| self.run_item(w)).await.clone() })
    }

    /// The result of one item, as [`Engine::result`], handed over: the engine keeps no copy,
    /// so asking for it again runs it again. For callers that read each item once.
    pub fn take(&self, w: &Work) -> CaseResult {
        let r = self.result(w);
        // A tombstone, not a removal: a worker that reaches the item later skips it.
        self.cells
            .lock()
            .expect("cells")
            .insert(w.name(), Item::Taken);
        Arc::try_unwrap(r).unwrap_or_else(|shared| (*shared).clone())
    }

    /// Runs every item (bounded per model) and returns the results in plan order.
    pub fn run_all(self: &Arc<Self>, work: &[Work]) -> Vec<CaseResult> {
        self.prefetch(work);
        work.iter().map(|w| self.take(w)).collect()
    }

    /// Model descriptions for the results file.
    pub fn model_infos(&self) -> Vec<ModelInfo> {
        self.slots
            .iter()
            .map(|(name, slot)| {
                let backend = self
                    .project
                    .models
                    .get(name)
                    .map(|m| m.backend.clone())
                    .unwrap_or_default();
                let (unavailable, facts) = match slot {
                    Slot::Ready { backend, .. } => (None, backend.facts()),
                    Slot::Skipped(r) | Slot::Unavailable(r) => (Some(r.clone()), Map::new()),
                };
                ModelInfo {
                    name: name.clone(),
                    backend,
                    unavailable,
                    facts,
                }
            })
            .collect()
    }

    /// Stops managed servers and flushes recordings. Call once at the end, also after failures.
    pub fn shutdown(&self) {
        self.rt.block_on(async {
            for slot in self.slots.values() {
                if let Slot::Ready { backend, .. } = slot {
                    backend.shutdown().await;
                }
            }
        });
    }

    /// Runs one item: its model's backend (or why there is none), then a perf scenario, or
    /// the generations and their grades.
    async fn execute(&self, w: &Work) -> CaseResult {
        let backend = match self.slots.get(&w.model) {
            Some(Slot::Ready { backend, .. }) => backend,
            Some(Slot::Skipped(r)) => return CaseResult::skipped(w, r.clone()),
            Some(Slot::Unavailable(r)) => {
                return CaseResult::infra(w, InfraError::new(InfraKind::Unavailable, r.clone()));
            }
            None => {
                let e = InfraError::new(
                    InfraKind::Other,
                    format!("model `{}` was not started", w.model),
                );
                return CaseResult::infra(w, e);
            }
        };
        if let Some(spec) = &w.suite.perf {
            let base = CaseResult::empty(w, Outcome::InfraError);
            return crate::perf::run_case(backend.clone(), &self.project, w, spec, base).await;
        }
        match self.generate(w).await {
            Ok(resp) => self.grade(w, resp).await,
            Err(e) if e.kind == InfraKind::Skip => CaseResult::skipped(w, e.message),
            Err(e) => CaseResult::infra(w, e),
        }
    }

    /// The case's generations, as many as it asks for (shared with `pairwise` judges).
    async fn generate(&self, w: &Work) -> Result<Arc<Response>, InfraError> {
        let req = self.hub.case_request(&w.suite, w.case, &w.model);
        let resp = self.hub.generate(&req).await?;
        let asked = w.case().samples as usize;
        if resp.choices.len() != asked {
            return Err(InfraError::new(
                InfraKind::Stream,
                format!(
                    "backend returned {} generation(s), {asked} were asked for",
                    resp.choices.len()
                ),
            ));
        }
        Ok(resp)
    }

    /// Grades the generations on the blocking pool (graders run code and wait for judges).
    async fn grade(&self, w: &Work, resp: Arc<Response>) -> CaseResult {
        let judge = crate::judge::CaseJudge::new(self.hub.clone(), w.suite.clone(), w.case);
        if w.graders.quick {
            // No program, no judge: a blocking thread would cost more than the grading
            // (two context switches a case; ≈ 10% of a 500-case run's wall time).
            let graded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                grade_response(w, &resp, None)
            }));
            return graded.unwrap_or_else(|_| {
                let e = InfraError::new(InfraKind::Other, "grader panicked".to_string());
                CaseResult::infra(w, e)
            });
        }
        let item = w.clone();
        let graded = tokio::task::spawn_blocking(move || {
            let mut r = grade_response(&item, &resp, Some(&judge));
            r.judge = judge.usage();
            r
        })
        .await;
        graded.unwrap_or_else(|e| {
            CaseResult::infra(
                w,
                InfraError::new(InfraKind::Other, format!("grader panicked: {e}")),
            )
        })
    }
}

/// On Ctrl-C or SIGTERM, stop managed servers and flush recordings before exiting, so an
/// interrupted run leaves no server behind.
static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Has Ctrl-C or SIGTERM arrived? Results after it are the stopped backends' errors, not
/// answers: the run loop stops taking them while the backends shut down.
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

async fn stop_on_signal(backends: Vec<Arc<dyn Backend>>) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(t) => t,
        Err(_) => return,
    };
    let code = tokio::select! {
        r = tokio::signal::ctrl_c() => if r.is_ok() { 130 } else { return },
        _ = term.recv() => 143,
    };
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
    eprintln!("llmtest: interrupted; stopping backends");
    for b in &backends {
        b.shutdown().await;
    }
    std::process::exit(code);
}

/// Grades every generation of a response: reasoning policy, assertions, case outcome, pass@k.
pub(crate) fn grade_response(
    w: &Work,
    resp: &Response,
    judge: Option<&dyn llmtest_grade::judge::Judge>,
) -> CaseResult {
    let (suite, case, model) = (&*w.suite, w.case(), w.model.as_str());
    let mut samples = Vec::with_capacity(resp.choices.len());
    for (i, ch) in resp.choices.iter().enumerate() {
        let split = match suite.reasoning {
            ReasoningPolicy::Strip => {
                split_reasoning(&ch.text, ch.reasoning.as_deref(), ch.truncated())
            }
            ReasoningPolicy::Keep => llmtest_grade::Split {
                answer: ch.text.clone(),
                reasoning: ch.reasoning.clone(),
                unterminated: false,
            },
        };
        let sample = Sample {
            suite: &suite.name,
            model,
            case,
            index: i as u32,
            output: &ch.text,
            answer: &split.answer,
            reasoning: split.reasoning.as_deref(),
            tool_calls: &ch.tool_calls,
            judge,
        };
        let v = grade_sample_with(
            &case.expect,
            &w.graders.list,
            &sample,
            case.threshold,
            split.unterminated,
        );
        let extracted = v.assertions.iter().find_map(|a| a.extracted.clone());
        let reasoning_status = if split.unterminated {
            "unterminated"
        } else if split.reasoning.is_some() {
            "stripped"
        } else {
            "none"
        };
        samples.push(SampleResult {
            index: i as u32,
            outcome: v.outcome,
            score: v.score,
            answer: split.answer.clone(),
            output: ch.text.clone(),
            extracted,
            reasoning_chars: split.reasoning.as_ref().map_or(0, |r| r.chars().count()),
            reasoning: split.reasoning,
            reasoning_status: reasoning_status.into(),
            finish_reason: ch.finish_reason.clone(),
            assertions: v.assertions,
        });
    }
    let n = samples.len() as u64;
    let c = samples
        .iter()
        .filter(|s| s.outcome == Outcome::Pass)
        .count() as u64;
    let outcome = if c == n {
        Outcome::Pass
    } else {
        samples
            .iter()
            .map(|s| s.outcome)
            .filter(|o| *o != Outcome::Pass)
            .max_by_key(|o| o.severity())
            .unwrap_or(Outcome::Fail)
    };
    let mut pak = BTreeMap::new();
    for k in &suite.pass_at_k {
        if let Some(p) = pass_at_k(n, c, *k as u64) {
            pak.insert(format!("pass@{k}"), p);
        }
    }
    let score = if samples.is_empty() {
        0.0
    } else {
        samples.iter().map(|s| s.score).sum::<f64>() / n as f64
    };
    let mut facts = resp.facts.clone();
    facts.retain(|_, v| !v.is_null());
    CaseResult {
        score,
        samples,
        pass_at_k: pak,
        usage: resp.usage.clone(),
        timings: Some(resp.timings.clone()),
        facts: facts.into_iter().collect::<Map<String, Value>>(),
        ..CaseResult::empty(w, outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use llmtest_grade::{FnFactory, Grade, GraderContext};
    use llmtest_spec::CheckError;

    fn project(suite: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("llmtest.yaml"),
            "version: 1\nmodels:\n  a: {backend: exec, command: [cat]}\n  b: {backend: exec, command: [cat]}\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("suites")).unwrap();
        std::fs::write(dir.path().join("suites/s.yaml"), suite).unwrap();
        dir
    }

    struct Always;

    impl Grader for Always {
        fn grade(&self, _: &Sample<'_>) -> Grade {
            Grade::binary(true, "", "")
        }
    }

    /// The built-ins and `picky`, a plugin's assertion that refuses the value `bad` (and so
    /// accepts a template that renders to it).
    fn registry() -> GraderRegistry {
        let mut r = GraderRegistry::with_builtins(GraderContext::default());
        r.register(Arc::new(FnFactory::new(
            "picky",
            |p: &Map<String, Value>, _: &GraderContext| {
                if p.get("value").and_then(Value::as_str) == Some("bad") {
                    return Err(CheckError::new("`bad` is refused"));
                }
                Ok(Arc::new(Always) as Arc<dyn Grader>)
            },
        )));
        r
    }

    #[test]
    fn graders_are_built_once_per_case_and_shared_by_its_models() {
        let dir = project(
            "version: 1\nsuite: s\ncases:\n  - {id: one, prompt: hi, expect: [{type: contains, value: hi}, {type: picky, value: ok}]}\n  - {id: two, prompt: ho, expect: [{type: not-contains, value: ha}]}\n",
        );
        let plan = Plan::load(dir.path(), &registry(), &PlanOptions::default()).expect("loads");
        assert_eq!(plan.work.len(), 4);
        let item = |case: &str, model: &str| {
            plan.work
                .iter()
                .find(|w| w.case().id == case && w.model == model)
                .expect("planned")
        };
        assert!(Arc::ptr_eq(
            &item("one", "a").graders.list,
            &item("one", "b").graders.list
        ));
        let kinds = |w: &Work| -> Vec<String> {
            assert_eq!(
                w.graders.list.len(),
                w.case().expect.len(),
                "one grader each"
            );
            w.case().expect.iter().map(|a| a.display_kind()).collect()
        };
        assert_eq!(kinds(item("one", "b")), ["contains", "picky"]);
        assert_eq!(kinds(item("two", "a")), ["not-contains"]);
    }

    #[test]
    fn a_default_assertion_refused_once_rendered_is_a_load_error_of_its_case() {
        let dir = project(
            "version: 1\nsuite: s\ndefaults:\n  expect: [{type: picky, value: \"{{ v }}\"}]\ncases:\n  - {id: fine, prompt: hi, vars: {v: good}}\n  - {id: broken, prompt: hi, vars: {v: bad}}\n",
        );
        let Err(err) = Plan::load(dir.path(), &registry(), &PlanOptions::default()) else {
            panic!("a refused assertion must stop the plan");
        };
        assert_eq!(err.0.len(), 1, "{err}");
        let d = &err.0[0];
        assert_eq!(
            d.message, "case `broken`: assertion `picky`: `bad` is refused",
            "{err}"
        );
        assert_eq!(
            (d.loc.file.as_path(), d.loc.line),
            (Path::new("suites/s.yaml"), 7)
        );
    }
}

#[cfg(test)]
mod item_tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// An item handed over by `take` before any worker reached it is not run again when a
    /// worker gets there, and `done` hears of every item exactly once, wherever it ran.
    #[test]
    fn a_taken_item_is_neither_run_again_nor_reported_twice() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("llmtest.yaml"),
            "version: 1\nmodels:\n  a: {backend: exec, command: [cat]}\n",
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("suites")).unwrap();
        std::fs::write(
            dir.path().join("suites/s.yaml"),
            "version: 1\nsuite: s\ncases:\n  - {id: one, prompt: hi, expect: [{type: contains, value: hi}]}\n  - {id: two, prompt: ho, expect: [{type: contains, value: ho}]}\n  - {id: three, prompt: he, expect: [{type: contains, value: he}]}\n",
        )
        .unwrap();
        let lt = crate::Llmtest::new().root(dir.path());
        let registry = lt.grader_registry(dir.path());
        let plan = Plan::load(dir.path(), &registry, &PlanOptions::default()).expect("loads");
        let engine = Arc::new(
            Engine::new(&plan, &["a".to_string()], &lt.backend_factories()).expect("engine"),
        );
        let seen: Arc<Mutex<Vec<String>>> = Arc::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let (s, n) = (seen.clone(), runs.clone());
        // `done` set, nothing started yet.
        engine.prefetch_with(
            &[],
            Arc::new(move |w: &Work, _: &CaseResult| {
                s.lock().unwrap().push(w.name());
                n.fetch_add(1, Ordering::SeqCst);
            }),
        );
        let last = plan.work.last().unwrap();
        let taken = engine.take(last);
        assert_eq!(taken.outcome, Outcome::Pass);
        assert_eq!(runs.load(Ordering::SeqCst), 1, "run where it was asked for");
        engine.prefetch(&plan.work);
        let rest: Vec<CaseResult> = plan.work[..2].iter().map(|w| engine.take(w)).collect();
        assert!(rest.iter().all(|r| r.outcome == Outcome::Pass));
        // Workers are done with the queue once they have passed its last item.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while runs.load(Ordering::SeqCst) < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        let mut names = seen.lock().unwrap().clone();
        names.sort();
        let mut want: Vec<String> = plan.work.iter().map(Work::name).collect();
        want.sort();
        assert_eq!(names, want, "each item reported once");
        engine.shutdown();
    }
}
