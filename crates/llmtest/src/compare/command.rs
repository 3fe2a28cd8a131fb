//! The `llmtest compare` subcommand: read one or two results files, pick a model in each,
//! compare, print Markdown or JSON. Exit 0 (no regression), 1 (significant regression),
//! 2 (bad input: unreadable or mismatched files, unknown model, bad `--alpha`), 3 (the
//! output file cannot be written).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::results::RunResults;

use super::{CompareError, Side, compare, json, markdown};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CompareFormat {
    /// Markdown, for a terminal or a pull-request comment.
    Md,
    /// JSON, versioned (`schema_version`).
    Json,
}

/// `llmtest compare RESULTS --baseline A --candidate B` (two models of one run), or
/// `llmtest compare BASE.json CAND.json` (two runs; `--baseline`/`--candidate` pick the model
/// in each when a file holds several).
#[derive(clap::Args, Clone, Debug)]
pub(crate) struct CompareArgs {
    /// The baseline's results.json (written by `llmtest run`).
    pub baseline_results: PathBuf,
    /// The candidate's results.json (default: the baseline's file).
    pub candidate_results: Option<PathBuf>,
    /// The baseline model (required when its file holds several models).
    #[arg(long, value_name = "MODEL")]
    pub baseline: Option<String>,
    /// The candidate model (required when its file holds several models).
    #[arg(long, value_name = "MODEL")]
    pub candidate: Option<String>,
    /// Significance level of the paired test.
    #[arg(long, default_value_t = super::DEFAULT_ALPHA)]
    pub alpha: f64,
    /// Compare only these suites (repeatable).
    #[arg(long = "suite", value_name = "SUITE")]
    pub suites: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = CompareFormat::Md)]
    pub format: CompareFormat,
    /// Write the comparison here instead of stdout.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
}

pub(crate) fn command(a: &CompareArgs) -> ExitCode {
    match build(a) {
        Ok((text, code)) => match &a.output {
            Some(p) => match crate::results::write_atomic(p, text.as_bytes()) {
                Ok(()) => {
                    eprintln!("llmtest compare: wrote {}", p.display());
                    ExitCode::from(code)
                }
                Err(e) => {
                    eprintln!("error: cannot write {}: {e}", p.display());
                    ExitCode::from(3)
                }
            },
            None => {
                print!("{text}");
                ExitCode::from(code)
            }
        },
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn build(a: &CompareArgs) -> Result<(String, u8), CompareError> {
    if !(a.alpha > 0.0 && a.alpha < 1.0) {
        return Err(CompareError::Alpha(a.alpha));
    }
    let base = RunResults::read(&a.baseline_results)?;
    let cand = match &a.candidate_results {
        Some(p) => Some(RunResults::read(p)?),
        None => None,
    };
    let base_file = a.baseline_results.display().to_string();
    let two_files = cand.is_some();
    let (cand_res, cand_path) = match (&cand, &a.candidate_results) {
        (Some(c), Some(p)) => (c, p.as_path()),
        _ => (&base, a.baseline_results.as_path()),
    };
    let b_model = pick(
        &base,
        &a.baseline_results,
        a.baseline.as_deref(),
        "baseline",
    )?;
    let c_model = pick(cand_res, cand_path, a.candidate.as_deref(), "candidate")?;
    for s in &a.suites {
        if !base
            .cases
            .iter()
            .chain(&cand_res.cases)
            .any(|c| &c.suite == s)
        {
            let mut known: Vec<&str> = base.cases.iter().map(|c| c.suite.as_str()).collect();
            known.sort();
            known.dedup();
            return Err(CompareError::UnknownSuite {
                suite: s.clone(),
                known: known.join(", "),
            });
        }
    }
    let file = |p: &Path| two_files.then(|| p.display().to_string());
    let bs = side(&base, b_model, file(&a.baseline_results), &a.suites);
    let cs = side(cand_res, c_model, file(cand_path), &a.suites);
    if !two_files && bs.model == cs.model {
        return Err(CompareError::SameSide(format!(
            "{} in {base_file}",
            bs.model
        )));
    }
    if base.llmtest_version != cand_res.llmtest_version {
        eprintln!(
            "note: the runs were made by llmtest {} and {}",
            base.llmtest_version, cand_res.llmtest_version
        );
    }
    if two_files {
        suites_agree(&base, cand_res, &bs)?;
    }
    let c = compare(&bs, &cs, a.alpha)?;
    eprintln!("llmtest compare: {}", c.headline());
    let text = match a.format {
        CompareFormat::Md => markdown(&c),
        CompareFormat::Json => json(&c),
    };
    Ok((llmtest_backend::redact_secrets(&text), c.exit_code()))
}

fn side<'a>(r: &'a RunResults, model: String, file: Option<String>, suites: &[String]) -> Side<'a> {
    let cases = r
        .cases
        .iter()
        .filter(|c| c.model == model)
        .filter(|c| suites.is_empty() || suites.contains(&c.suite))
        .collect();
    Side {
        model,
        file,
        profile: Some(r.profile.clone()),
        cases,
    }
}

/// Two runs of the same suites: where both files record their suites' hashes (cases,
/// prompts, assertions), every compared suite's must match.
fn suites_agree(a: &RunResults, b: &RunResults, side: &Side) -> Result<(), CompareError> {
    let (Some(x), Some(y)) = (&a.identity, &b.identity) else {
        return Ok(());
    };
    let mut changed: Vec<String> = side
        .cases
        .iter()
        .map(|c| c.suite.clone())
        .filter(|s| matches!((x.suites.get(s), y.suites.get(s)), (Some(h), Some(k)) if h != k))
        .collect();
    changed.sort();
    changed.dedup();
    if changed.is_empty() {
        Ok(())
    } else {
        Err(CompareError::SuitesChanged(changed))
    }
}

/// The model of `r` to compare: `named` (which must be in the file), else the file's only one.
fn pick(
    r: &RunResults,
    path: &Path,
    named: Option<&str>,
    role: &'static str,
) -> Result<String, CompareError> {
    let mut available: Vec<String> = r.cases.iter().map(|c| c.model.clone()).collect();
    available.sort();
    available.dedup();
    match named {
        Some(m) if available.iter().any(|x| x == m) => Ok(m.to_owned()),
        Some(m) => Err(CompareError::UnknownModel {
            file: path.display().to_string(),
            model: m.to_owned(),
            available,
        }),
        None if available.len() == 1 => Ok(available.remove(0)),
        None => Err(CompareError::AmbiguousModel {
            file: path.display().to_string(),
            role,
            available,
        }),
    }
}
