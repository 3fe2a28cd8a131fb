//! Judge calls over the engine's backends. Model-graded assertions (`rubric`, `closed-qa`,
//! `factuality`, `pairwise`) ask a judge model through the same backends as the candidates:
//! retries, rate limits and each model's concurrency limit apply, and in `record`/`replay`
//! mode the judge's requests are recorded and replayed like any other (under the judge
//! model's cassette of the suite). Generations are shared: the answer `pairwise` compares
//! with is the other model's own trial's answer, asked once.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::{OnceCell, Semaphore};

use llmtest_backend::{Backend, InfraError, InfraKind, Request, Response};
use llmtest_grade::judge::{Judge, JudgeCall, JudgeFailure, JudgeReply, KINDS, Structured};
use llmtest_grade::split_reasoning;
use llmtest_spec::{
    AssertionSpec, Diagnostic, Diagnostics, Project, Prompt, ReasoningPolicy, Suite,
};

/// What a case's judge calls cost, reported apart from the candidate's usage and latency.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct JudgeUsage {
    /// Requests sent to judge models (a `pairwise` assertion sends two).
    pub calls: u32,
    /// The judge models asked, in name order (absent in files written before it existed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prompt_tokens: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub completion_tokens: u64,
    /// Summed end-to-end latency of the judge requests, ms (0 when replayed).
    pub total_ms: f64,
    /// The judge's answers came from cassettes: `total_ms` is not a latency.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

type Generation = Result<Arc<Response>, InfraError>;

/// A model's backend and its concurrency limit, or why it cannot be asked.
pub(crate) type HubBackend = Result<(Arc<dyn Backend>, Arc<Semaphore>), String>;

/// The engine's backends, for generations shared between trials and for judge calls.
pub(crate) struct Hub {
    handle: tokio::runtime::Handle,
    project: Project,
    backends: BTreeMap<String, HubBackend>,
    default_judge: Option<String>,
    gens: Mutex<HashMap<String, Arc<OnceCell<Generation>>>>,
    /// Some assertion compares answers (`pairwise`): generations are kept for it. Otherwise
    /// each is asked once anyway and keeping them would hold every answer twice.
    share: bool,
}

impl Hub {
    pub(crate) fn new(
        handle: tokio::runtime::Handle,
        project: Project,
        backends: BTreeMap<String, HubBackend>,
        default_judge: Option<String>,
        suites: &[Arc<Suite>],
    ) -> Hub {
        Hub {
            handle,
            project,
            backends,
            default_judge,
            gens: Mutex::new(HashMap::new()),
            share: judged(suites).any(|a| a.params.contains_key("against")),
        }
    }

    async fn send(&self, req: &Request) -> Generation {
        let (backend, sem) = match self.backends.get(&req.model) {
            Some(Ok(b)) => b.clone(),
            Some(Err(why)) => return Err(InfraError::new(InfraKind::Unavailable, why.clone())),
            None => {
                return Err(InfraError::new(
                    InfraKind::Other,
                    format!("model `{}` was not started", req.model),
                ));
            }
        };
        let _permit = sem.acquire().await.expect("semaphore never closed");
        backend.generate(req).await.map(Arc::new)
    }

    /// The generation of one case on one model, asked once however many wait for it.
    pub(crate) async fn generate(&self, req: &Request) -> Generation {
        if !self.share {
            return self.send(req).await;
        }
        let key = format!("{}::{}::{}", req.suite, req.case_id, req.model);
        let cell = self
            .gens
            .lock()
            .expect("generations")
            .entry(key)
            .or_default()
            .clone();
        cell.get_or_init(|| self.send(req)).await.clone()
    }

    /// A model's `params` from `llmtest.yaml`.
    fn model_params(&self, model: &str) -> llmtest_spec::GenParams {
        self.project
            .models
            .get(model)
            .map(|m| m.params.clone())
            .unwrap_or_default()
    }

    /// The request of a case on a model: model params, then suite and case params.
    pub(crate) fn case_request(&self, suite: &Suite, case: usize, model: &str) -> Request {
        let c = &suite.cases[case];
        let model_params = self.model_params(model);
        Request {
            model: model.to_owned(),
            suite: suite.name.clone(),
            case_id: c.id.clone(),
            prompt: c.prompt.clone(),
            params: model_params.merged(&c.params),
            n: c.samples,
        }
    }
}

/// The judge of one case: asks through the hub and adds up what the calls cost.
#[derive(Debug)]
pub(crate) struct CaseJudge {
    hub: Arc<Hub>,
    suite: Arc<Suite>,
    case: usize,
    usage: Mutex<JudgeUsage>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("models", &self.backends.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl CaseJudge {
    pub(crate) fn new(hub: Arc<Hub>, suite: Arc<Suite>, case: usize) -> CaseJudge {
        CaseJudge {
            hub,
            suite,
            case,
            usage: Mutex::new(JudgeUsage::default()),
        }
    }

    /// `None` when no judge was asked.
    pub(crate) fn usage(&self) -> Option<JudgeUsage> {
        let u = self.usage.lock().expect("judge usage").clone();
        (u.calls > 0).then_some(u)
    }
}

impl Judge for CaseJudge {
    fn ask(&self, call: &JudgeCall) -> Result<JudgeReply, JudgeFailure> {
        let Some(model) = call
            .model
            .clone()
            .or_else(|| self.hub.default_judge.clone())
        else {
            return Err(JudgeFailure(
                "no judge model: set `judge:` on the assertion or the profile".into(),
            ));
        };
        let case = &self.suite.cases[self.case];
        let base = self.hub.model_params(&model);
        let mut params = base.merged(&call.params);
        // Structured output: OpenAI, vLLM and llama.cpp accept a JSON schema here and
        // constrain decoding to it; backends that cannot are read tolerantly.
        params.response_format = match call.structured {
            Structured::JsonSchema => Some(json!({
                "type": "json_schema",
                "json_schema": {"name": "verdict", "strict": true, "schema": call.schema},
            })),
            Structured::JsonObject => Some(json!({"type": "json_object"})),
            Structured::None => None,
        };
        params.tools = None;
        params.tool_choice = None;
        let req = Request {
            model: model.clone(),
            suite: self.suite.name.clone(),
            case_id: case.id.clone(),
            prompt: Prompt::Chat(call.messages.clone()),
            params,
            n: call.n,
        };
        let resp = self.hub.handle.block_on(self.hub.send(&req));
        let mut u = self.usage.lock().expect("judge usage");
        u.calls += 1;
        if let Err(at) = u.models.binary_search(&model) {
            u.models.insert(at, model.clone());
        }
        let resp = resp.map_err(|e| JudgeFailure(format!("`{model}`: {e}")))?;
        if let Some(us) = &resp.usage {
            u.prompt_tokens += us.prompt_tokens.unwrap_or(0);
            u.completion_tokens += us.completion_tokens.unwrap_or(0);
        }
        if resp.timings.replayed {
            u.replayed = true;
        } else {
            u.total_ms += resp.timings.total_ms;
        }
        Ok(JudgeReply {
            model,
            texts: resp.choices.iter().map(|c| c.text.clone()).collect(),
        })
    }

    fn answer_of(&self, model: &str) -> Result<String, JudgeFailure> {
        let req = self.hub.case_request(&self.suite, self.case, model);
        let resp = self
            .hub
            .handle
            .block_on(self.hub.generate(&req))
            .map_err(|e| JudgeFailure(e.to_string()))?;
        let ch = resp
            .choices
            .first()
            .ok_or_else(|| JudgeFailure(format!("`{model}` returned no generation")))?;
        Ok(match self.suite.reasoning {
            ReasoningPolicy::Strip => {
                split_reasoning(&ch.text, ch.reasoning.as_deref(), ch.truncated()).answer
            }
            ReasoningPolicy::Keep => ch.text.clone(),
        })
    }
}

/// Models that model-graded assertions name (judges, `pairwise` opponents), which must be
/// started beside the candidates. The profile's judge counts when an assertion uses it.
pub(crate) fn models_named(suites: &[Arc<Suite>], default_judge: Option<&str>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for a in judged(suites) {
        match a.params.get("judge").and_then(Value::as_str) {
            Some(j) => out.insert(j.to_owned()),
            None => default_judge.is_some_and(|j| out.insert(j.to_owned())),
        };
        if let Some(m) = a.params.get("against").and_then(Value::as_str) {
            out.insert(m.to_owned());
        }
    }
    out
}

fn judged(suites: &[Arc<Suite>]) -> impl Iterator<Item = &AssertionSpec> {
    suites
        .iter()
        .flat_map(|s| s.cases.iter())
        .flat_map(|c| c.expect.iter())
        .filter(|a| KINDS.contains(&a.kind.as_str()))
}

/// Every judge and opponent a suite names is a configured model, and an assertion without
/// `judge:` has the profile's to fall back on. One diagnostic per assertion written.
pub(crate) fn check(
    suites: &[Arc<Suite>],
    project: &Project,
    default_judge: Option<&str>,
) -> Diagnostics {
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    let known: Vec<&str> = project.models.keys().map(String::as_str).collect();
    let mut diags = Vec::new();
    for a in judged(suites) {
        let at = (a.loc.file.clone(), a.loc.line, a.loc.col);
        if !seen.insert(at) {
            continue;
        }
        let mut named = Vec::new();
        match a.params.get("judge").and_then(Value::as_str) {
            Some(j) => named.push(("judge", j.to_owned())),
            None if default_judge.is_none() => diags.push(
                Diagnostic::new(
                    a.loc.clone(),
                    format!("`{}` has no judge model", a.kind),
                )
                .with_hint("set `judge: <model>` on the assertion, or `judge:` on the profile in llmtest.yaml"),
            ),
            None => {}
        }
        if let Some(m) = a.params.get("against").and_then(Value::as_str) {
            named.push(("against", m.to_owned()));
        }
        for (key, m) in named {
            if !project.models.contains_key(&m) {
                diags.push(
                    Diagnostic::new(
                        a.loc.clone(),
                        format!("`{key}: {m}` is not a configured model"),
                    )
                    .with_hint(llmtest_spec::unknown_name_hint(&m, known.iter().copied())),
                );
            }
        }
    }
    // With the offending line, as the loader shows its own errors.
    let mut sources: BTreeMap<std::path::PathBuf, String> = BTreeMap::new();
    for d in diags {
        let src = sources.entry(d.loc.file.clone()).or_insert_with(|| {
            std::fs::read_to_string(project.root.join(&d.loc.file)).unwrap_or_default()
        });
        found.push(d.with_source(src));
    }
    Diagnostics(found)
}
