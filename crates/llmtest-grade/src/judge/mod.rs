//! Model-graded assertions: a judge model (any model of `llmtest.yaml`) grades the answer.
//!
//! ```yaml
//! expect:
//!   - type: rubric
//!     rubric: The code is readable, well structured and commented where it helps.
//!     scale: 1-5                  # 1-5 (default), 0-10 or pass-fail
//!     judge: qwen-plus            # default: the suite's `defaults.judge`, else the profile's
//!     judge_samples: 3            # ask 3 times: mean and spread; straddling → `unstable`
//!   - {type: closed-qa, criterion: The answer names a concrete city.}
//!   - {type: factuality, reference: "{{ reference }}"}
//!   - {type: pairwise, against: qwen-plus}
//! ```
//!
//! | parameter | types | default | meaning |
//! |---|---|---|---|
//! | `rubric` | rubric | — (required) | what a good answer does |
//! | `scale` | rubric | `1-5` | `1-5`, `0-10` or `pass-fail`; the score maps to 0–1 (`(s-1)/4`, `s/10`, 1/0) |
//! | `criterion` | closed-qa, pairwise | — (required for closed-qa) | the question the judge answers Y/N, or what "better" means |
//! | `reference` | factuality | — (required) | the expert answer |
//! | `accept` | factuality | `[A, B, C, E]` | the choices that pass (`D`, a contradiction, fails) |
//! | `against` | pairwise | — (required) | the model whose answer to the same case is compared |
//! | `judge` | all | the suite's `defaults.judge`, else the profile's `judge:` | the judge model |
//! | `judge_samples` | all | 1 | verdicts asked for; reported as mean, spread, min, max |
//! | `threshold` | all | 0.5 | mapped score (mean over samples) needed to pass |
//! | `template`, `system` | all | the defaults in [`prompts`] | the judge's user and system messages |
//! | `temperature`, `max_tokens` | all | the judge model's params, `max_tokens` 512 | the judge request's |
//! | `structured` | all | `json_schema` | `json_schema`, `json_object` (providers without schema support) or `none` |
//!
//! The verdict is asked for as JSON with a schema ([`JudgeCall::schema`], sent as structured
//! output where the backend supports it) and read tolerantly otherwise. A verdict that cannot
//! be read, or a judge that cannot be reached, is [`Outcome::JudgeError`], never a score.
//! With `judge_samples: k`, a case whose verdicts fall on both sides of the threshold is
//! [`Outcome::Unstable`]. `pairwise` asks twice, with the answers in both orders: a win in
//! one order and a loss in the other is a tie (score 0.5), which passes at the default
//! threshold (the answer is not worse).

mod parse;
pub mod prompts;

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Map, Value, json};

use llmtest_spec::{CheckError, GenParams, Message, Role};

use crate::grader::{Grade, Grader, GraderContext, GraderFactory, Outcome, Sample, parse_params};

/// The model-graded assertion types.
pub const KINDS: [&str; 4] = llmtest_spec::JUDGED_KINDS;

/// Asks judge models on a grader's behalf. The runner implements it over its backends (so
/// retries, rate limits, concurrency and cassettes apply to judge calls too); graders call
/// it from the blocking pool, so it may block.
pub trait Judge: Send + Sync + fmt::Debug {
    /// Asks the judge; returns `call.n` texts.
    fn ask(&self, call: &JudgeCall) -> Result<JudgeReply, JudgeFailure>;
    /// The (reasoning-stripped) answer `model` gave to the case being graded (`pairwise`).
    fn answer_of(&self, model: &str) -> Result<String, JudgeFailure>;
}

/// One question to a judge.
#[derive(Clone, Debug, PartialEq)]
pub struct JudgeCall {
    /// The judge model; `None`: the profile's `judge:`.
    pub model: Option<String>,
    pub messages: Vec<Message>,
    /// The JSON schema of the verdict object.
    pub schema: Value,
    /// Verdicts wanted (`judge_samples`).
    pub n: u32,
    pub params: GenParams,
    /// How the verdict's format is asked of the server.
    pub structured: Structured,
}

/// How a judge request asks for its JSON verdict (`structured:`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Structured {
    /// `response_format: {type: json_schema, …}` with the verdict's schema (OpenAI, vLLM,
    /// llama.cpp constrain decoding to it). The default.
    #[default]
    JsonSchema,
    /// `response_format: {type: json_object}`: JSON, any shape (providers without schemas).
    JsonObject,
    /// Nothing: the prompt describes the format and the answer is read tolerantly.
    None,
}

/// A judge's texts, one per verdict asked for.
#[derive(Clone, Debug, PartialEq)]
pub struct JudgeReply {
    /// The judge model that answered.
    pub model: String,
    pub texts: Vec<String>,
}

/// The judge could not be asked (unknown model, timeout, 429/5xx after retries, cassette miss).
#[derive(Clone, Debug, PartialEq)]
pub struct JudgeFailure(pub String);

impl fmt::Display for JudgeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The factories of [`KINDS`].
pub(crate) fn factories() -> Vec<Arc<dyn GraderFactory>> {
    KINDS
        .iter()
        .map(|k| Arc::new(Factory(k)) as Arc<dyn GraderFactory>)
        .collect()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    rubric: Option<String>,
    #[serde(default)]
    scale: Option<Scale>,
    #[serde(default)]
    criterion: Option<String>,
    #[serde(default)]
    reference: Option<String>,
    #[serde(default)]
    accept: Option<Vec<String>>,
    #[serde(default)]
    against: Option<String>,
    #[serde(default)]
    judge: Option<String>,
    #[serde(default)]
    judge_samples: Option<u32>,
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    structured: Structured,
}

/// A rubric's scale.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq)]
pub enum Scale {
    #[default]
    #[serde(rename = "1-5")]
    OneToFive,
    #[serde(rename = "0-10")]
    ZeroToTen,
    #[serde(rename = "pass-fail")]
    PassFail,
}

#[derive(Clone, Debug)]
enum Kind {
    Rubric {
        rubric: String,
        scale: Scale,
    },
    ClosedQa {
        criterion: String,
    },
    Factuality {
        reference: String,
        accept: Vec<String>,
    },
    Pairwise {
        against: String,
        criterion: String,
    },
}

/// One verdict, mapped to 0–1.
#[derive(Clone, Debug)]
struct Verdict {
    score: f64,
    /// What the judge said (`4`, `Y`, `C`, `A/B`).
    raw: String,
    reason: String,
}

struct Factory(&'static str);

impl GraderFactory for Factory {
    fn kind(&self) -> &str {
        self.0
    }
    fn build(
        &self,
        params: &Map<String, Value>,
        _ctx: &GraderContext,
    ) -> Result<Arc<dyn Grader>, CheckError> {
        let p: Params = parse_params(params)?;
        let needs = |v: Option<String>, key: &str, hint: &str| {
            v.ok_or_else(|| {
                CheckError::new(format!("`{}` needs `{key}`", self.0)).with_hint(hint.to_owned())
            })
        };
        // Each type's own keys; another type's key here is a mix-up, not a typo serde sees.
        let own = own_keys(self.0);
        if let Some(k) = SPECIFIC_KEYS
            .iter()
            .find(|k| params.contains_key(**k) && !own.contains(k))
        {
            return Err(
                CheckError::new(format!("`{k}` does not apply to `{}`", self.0))
                    .with_hint(format!("`{}` takes: {}", self.0, keys_of(self.0))),
            );
        }
        let kind = match self.0 {
            "rubric" => Kind::Rubric {
                rubric: needs(
                    p.rubric,
                    "rubric",
                    "write what a good answer does, e.g. `rubric: The code is readable and commented`",
                )?,
                scale: p.scale.unwrap_or_default(),
            },
            "closed-qa" => Kind::ClosedQa {
                criterion: needs(
                    p.criterion,
                    "criterion",
                    "the question the judge answers Y or N, e.g. `criterion: The answer names a city`",
                )?,
            },
            "factuality" => {
                let accept = p
                    .accept
                    .unwrap_or_else(|| ["A", "B", "C", "E"].map(String::from).to_vec());
                if let Some(bad) = accept
                    .iter()
                    .find(|c| !["A", "B", "C", "D", "E"].contains(&c.as_str()))
                {
                    return Err(CheckError::new(format!("`accept` holds `{bad}`"))
                        .with_hint("choices are A (subset), B (superset), C (same), D (contradiction), E (differs, not in fact)"));
                }
                Kind::Factuality {
                    reference: needs(
                        p.reference,
                        "reference",
                        "the expert answer, e.g. `reference: \"{{ answer }}\"` from the case's variables",
                    )?,
                    accept,
                }
            }
            _ => Kind::Pairwise {
                against: needs(
                    p.against,
                    "against",
                    "the model to compare with, e.g. `against: qwen-plus`",
                )?,
                criterion: p
                    .criterion
                    .unwrap_or_else(|| "correctness first, then completeness and clarity".into()),
            },
        };
        let samples = p.judge_samples.unwrap_or(1);
        if samples == 0 || samples > 20 {
            return Err(
                CheckError::new(format!("`judge_samples: {samples}` is out of range"))
                    .with_hint("ask between 1 and 20 verdicts"),
            );
        }
        let threshold = p.threshold.unwrap_or(0.5);
        if !(0.0..=1.0).contains(&threshold) {
            return Err(
                CheckError::new(format!("`threshold: {threshold}` is outside 0–1"))
                    .with_hint("the threshold is on the mapped score: 0.5 is 3 of 1–5, 5 of 0–10"),
            );
        }
        let template = p
            .template
            .unwrap_or_else(|| default_template(&kind).to_owned());
        let required: &[&str] = match kind {
            Kind::Pairwise { .. } => &["{answer_a}", "{answer_b}"],
            _ => &["{answer}"],
        };
        if let Some(missing) = required.iter().find(|r| !template.contains(*r)) {
            return Err(
                CheckError::new(format!("the judge template has no {missing}")).with_hint(format!(
                    "placeholders are {}; write them with single braces",
                    placeholders(&kind)
                )),
            );
        }
        Ok(Arc::new(JudgeGrader {
            kind,
            judge: p.judge,
            samples,
            threshold,
            template,
            system: p.system.unwrap_or_else(|| prompts::SYSTEM.to_owned()),
            params: GenParams {
                temperature: p.temperature,
                max_tokens: Some(p.max_tokens.unwrap_or(512)),
                ..GenParams::default()
            },
            structured: p.structured,
        }))
    }
}

/// The keys that belong to one model-graded type or another.
const SPECIFIC_KEYS: [&str; 6] = [
    "rubric",
    "scale",
    "criterion",
    "reference",
    "accept",
    "against",
];

fn own_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "rubric" => &["rubric", "scale"],
        "closed-qa" => &["criterion"],
        "factuality" => &["reference", "accept"],
        _ => &["against", "criterion"],
    }
}

fn keys_of(kind: &str) -> String {
    let own = own_keys(kind).join(", ");
    format!(
        "{own} and the common keys (judge, judge_samples, threshold, template, system, temperature, max_tokens, structured)"
    )
}

fn placeholders(kind: &Kind) -> &'static str {
    match kind {
        Kind::Rubric { .. } => "{question}, {answer}, {rubric}, {scale}, {format}",
        Kind::ClosedQa { .. } => "{question}, {answer}, {criterion}, {format}",
        Kind::Factuality { .. } => "{question}, {answer}, {reference}, {format}",
        Kind::Pairwise { .. } => "{question}, {answer_a}, {answer_b}, {criterion}, {format}",
    }
}

fn default_template(kind: &Kind) -> &'static str {
    match kind {
        Kind::Rubric { .. } => prompts::RUBRIC,
        Kind::ClosedQa { .. } => prompts::CLOSED_QA,
        Kind::Factuality { .. } => prompts::FACTUALITY,
        Kind::Pairwise { .. } => prompts::PAIRWISE,
    }
}

struct JudgeGrader {
    kind: Kind,
    judge: Option<String>,
    samples: u32,
    threshold: f64,
    template: String,
    system: String,
    params: GenParams,
    structured: Structured,
}

const REASON: &str = r#"{"type": "string", "maxLength": 300}"#;

impl JudgeGrader {
    /// The verdict's field, its JSON schema and how the prompt describes the format.
    fn verdict_shape(&self) -> (&'static str, Value, String) {
        let reason: Value = serde_json::from_str(REASON).expect("static schema");
        let (key, field, format) = match &self.kind {
            Kind::Rubric { scale, .. } => match scale {
                Scale::PassFail => (
                    "pass",
                    json!({"type": "boolean"}),
                    r#"{"reason": "<one or two sentences>", "pass": true or false}"#.to_owned(),
                ),
                _ => {
                    let (lo, hi) = scale_bounds(*scale);
                    (
                        "score",
                        json!({"type": "integer", "minimum": lo, "maximum": hi}),
                        format!(
                            r#"{{"reason": "<one or two sentences>", "score": <an integer from {lo} to {hi}>}}"#
                        ),
                    )
                }
            },
            Kind::ClosedQa { .. } => (
                "verdict",
                json!({"type": "string", "enum": ["Y", "N"]}),
                r#"{"reason": "<one or two sentences>", "verdict": "Y" or "N"}"#.to_owned(),
            ),
            Kind::Factuality { .. } => (
                "choice",
                json!({"type": "string", "enum": ["A", "B", "C", "D", "E"]}),
                r#"{"reason": "<one or two sentences>", "choice": "A", "B", "C", "D" or "E"}"#
                    .to_owned(),
            ),
            Kind::Pairwise { .. } => (
                "winner",
                json!({"type": "string", "enum": ["A", "B", "tie"]}),
                r#"{"reason": "<one or two sentences>", "winner": "A", "B" or "tie"}"#.to_owned(),
            ),
        };
        let schema = json!({
            "type": "object",
            "properties": {"reason": reason, key: field},
            "required": ["reason", key],
            "additionalProperties": false,
        });
        (key, schema, format)
    }

    fn call(&self, user: String, schema: &Value) -> JudgeCall {
        JudgeCall {
            model: self.judge.clone(),
            messages: vec![
                Message {
                    role: Role::System,
                    content: self.system.clone(),
                },
                Message {
                    role: Role::User,
                    content: user,
                },
            ],
            schema: schema.clone(),
            n: self.samples,
            params: self.params.clone(),
            structured: self.structured,
        }
    }

    /// Reads one verdict text into a 0–1 score.
    fn read(&self, text: &str, key: &str) -> Result<Verdict, String> {
        let o = parse::verdict_object(text, key)?;
        let v = &o[key];
        let reason = parse::reason(&o);
        let word = || -> Option<String> {
            v.as_str()
                .map(|s| s.trim().trim_matches(|c| c == '(' || c == ')').to_owned())
        };
        let (score, raw) = match &self.kind {
            Kind::Rubric {
                scale: Scale::PassFail,
                ..
            } => {
                let b = match v {
                    Value::Bool(b) => *b,
                    Value::String(s) => match s.to_ascii_lowercase().as_str() {
                        "true" | "pass" | "yes" | "y" => true,
                        "false" | "fail" | "no" | "n" => false,
                        _ => return Err(format!("`pass` is {v}, not true or false")),
                    },
                    _ => return Err(format!("`pass` is {v}, not true or false")),
                };
                (if b { 1.0 } else { 0.0 }, b.to_string())
            }
            Kind::Rubric { scale, .. } => {
                let (lo, hi) = scale_bounds(*scale);
                let s = match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s
                        .trim()
                        .split('/')
                        .next()
                        .and_then(|x| x.trim().parse().ok()),
                    _ => None,
                }
                .ok_or_else(|| format!("`score` is {v}, not a number"))?;
                if !(lo as f64..=hi as f64).contains(&s) {
                    return Err(format!("score {s} is outside {lo}–{hi}"));
                }
                ((s - lo as f64) / (hi - lo) as f64, format!("{s}/{hi}"))
            }
            Kind::ClosedQa { .. } => match word().map(|w| w.to_ascii_uppercase()).as_deref() {
                Some("Y" | "YES") => (1.0, "Y".into()),
                Some("N" | "NO") => (0.0, "N".into()),
                _ => return Err(format!("`verdict` is {v}, not Y or N")),
            },
            Kind::Factuality { accept, .. } => {
                let c = word()
                    .map(|w| w.to_ascii_uppercase())
                    .filter(|w| ["A", "B", "C", "D", "E"].contains(&w.as_str()))
                    .ok_or_else(|| format!("`choice` is {v}, not one of A–E"))?;
                (if accept.contains(&c) { 1.0 } else { 0.0 }, c)
            }
            Kind::Pairwise { .. } => {
                let w = word().map(|w| w.to_ascii_lowercase());
                match w.as_deref() {
                    Some("a") => (1.0, "A".into()),
                    Some("b") => (0.0, "B".into()),
                    Some("tie" | "draw" | "equal") => (0.5, "tie".into()),
                    _ => return Err(format!("`winner` is {v}, not A, B or tie")),
                }
            }
        };
        Ok(Verdict { score, raw, reason })
    }

    fn verdicts(
        &self,
        s: &Sample<'_>,
        judge: &dyn Judge,
    ) -> Result<(String, Vec<Verdict>), String> {
        let (key, schema, format) = self.verdict_shape();
        let question = s.case.prompt.text();
        let ask = |user: String| -> Result<(String, Vec<Verdict>), String> {
            let reply = judge
                .ask(&self.call(user, &schema))
                .map_err(|e| format!("judge call failed: {e}"))?;
            if reply.texts.len() != self.samples as usize {
                return Err(format!(
                    "judge `{}` returned {} verdict(s), {} were asked for",
                    reply.model,
                    reply.texts.len(),
                    self.samples
                ));
            }
            let vs = reply
                .texts
                .iter()
                .map(|t| self.read(t, key))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("judge `{}`: unreadable verdict: {e}", reply.model))?;
            Ok((reply.model, vs))
        };
        match &self.kind {
            Kind::Rubric { rubric, scale } => ask(prompts::fill(
                &self.template,
                &[
                    ("question", question),
                    ("answer", s.answer),
                    ("rubric", rubric),
                    ("scale", scale_text(*scale)),
                    ("format", &format),
                ],
            )),
            Kind::ClosedQa { criterion } => ask(prompts::fill(
                &self.template,
                &[
                    ("question", question),
                    ("answer", s.answer),
                    ("criterion", criterion),
                    ("format", &format),
                ],
            )),
            Kind::Factuality { reference, .. } => ask(prompts::fill(
                &self.template,
                &[
                    ("question", question),
                    ("answer", s.answer),
                    ("reference", reference),
                    ("format", &format),
                ],
            )),
            Kind::Pairwise { against, criterion } => {
                let other = judge
                    .answer_of(against)
                    .map_err(|e| format!("no answer from `{against}` to compare with: {e}"))?;
                let prompt = |a: &str, b: &str| {
                    prompts::fill(
                        &self.template,
                        &[
                            ("question", question),
                            ("answer_a", a),
                            ("answer_b", b),
                            ("criterion", criterion),
                            ("format", &format),
                        ],
                    )
                };
                // The candidate is A in the first order and B in the second.
                let (model, first) = ask(prompt(s.answer, &other))?;
                let (_, second) = ask(prompt(&other, s.answer))?;
                Ok((model, combine_orders(&first, &second)))
            }
        }
    }
}

/// Pairs verdict i of both orders: the candidate's win in order 1 is `A`, in order 2 `B`.
/// Both orders agree → that result; they disagree → a tie (position bias cancelled).
fn combine_orders(first: &[Verdict], second: &[Verdict]) -> Vec<Verdict> {
    first
        .iter()
        .zip(second)
        .map(|(a, b)| {
            let one = a.score;
            let two = 1.0 - b.score;
            let score = if one == two { one } else { 0.5 };
            let outcome = match score {
                s if s > 0.5 => "win",
                s if s < 0.5 => "loss",
                _ if one != two => "tie (orders disagree)",
                _ => "tie",
            };
            Verdict {
                score,
                raw: format!("{outcome}: {}|{}", a.raw, b.raw),
                reason: a.reason.clone(),
            }
        })
        .collect()
}

fn scale_bounds(s: Scale) -> (i64, i64) {
    match s {
        Scale::OneToFive => (1, 5),
        Scale::ZeroToTen => (0, 10),
        Scale::PassFail => (0, 1),
    }
}

fn scale_text(s: Scale) -> &'static str {
    match s {
        Scale::OneToFive => "a scale from 1 (poor) to 5 (excellent)",
        Scale::ZeroToTen => "a scale from 0 (poor) to 10 (excellent)",
        Scale::PassFail => "pass or fail",
    }
}

/// Mean, population standard deviation, min and max.
pub fn spread(xs: &[f64]) -> (f64, f64, f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0, 0.0, 0.0);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, var.sqrt(), min, max)
}

impl Grader for JudgeGrader {
    fn grade(&self, s: &Sample<'_>) -> Grade {
        let expected = match &self.kind {
            Kind::Rubric { scale, .. } => {
                format!("judged ≥ {} on {}", self.threshold, scale_text(*scale))
            }
            Kind::ClosedQa { criterion } => format!("meets: {criterion}"),
            Kind::Factuality { reference, accept } => format!(
                "facts consistent with {:?} (choices {})",
                crate::text::excerpt(reference),
                accept.join("")
            ),
            Kind::Pairwise { against, .. } => format!("not worse than `{against}`"),
        };
        let judge_error = |why: String| Grade {
            outcome: Some(Outcome::JudgeError),
            ..Grade::binary(false, expected.clone(), why)
        };
        let Some(judge) = s.judge else {
            return judge_error("no judge is available to this run".into());
        };
        let (model, verdicts) = match self.verdicts(s, judge) {
            Ok(v) => v,
            Err(e) => return judge_error(e),
        };
        let scores: Vec<f64> = verdicts.iter().map(|v| v.score).collect();
        let (mean, sd, min, max) = spread(&scores);
        let passes = |x: f64| x + 1e-12 >= self.threshold;
        let unstable = verdicts.len() > 1 && passes(max) && !passes(min);
        let pass = passes(mean) && !unstable;
        let raws: Vec<&str> = verdicts.iter().map(|v| v.raw.as_str()).collect();
        let first_reason = verdicts.first().map(|v| v.reason.as_str()).unwrap_or("");
        let found = if verdicts.len() == 1 {
            format!("{} ({model}): {first_reason}", raws[0])
        } else {
            format!(
                "mean {mean:.2} of {} verdicts [{}], sd {sd:.2} ({model}){}: {first_reason}",
                verdicts.len(),
                raws.join(", "),
                if unstable {
                    ", unstable across samples"
                } else {
                    ""
                }
            )
        };
        let detail = json!({
            "judge": model,
            "verdicts": verdicts.iter().map(|v| json!({"verdict": v.raw, "score": v.score, "reason": v.reason})).collect::<Vec<_>>(),
            "mean": mean,
            "sd": sd,
            "min": min,
            "max": max,
            "threshold": self.threshold,
        });
        Grade {
            pass,
            score: mean,
            expected,
            found,
            extracted: Some(raws.join(",")),
            outcome: if unstable {
                Some(Outcome::Unstable)
            } else {
                None
            },
            detail: Some(detail),
        }
    }
}

#[cfg(test)]
mod tests;
