//! The `llmtest` command line.
//!
//! Exit codes: 0 every case passed; 1 some case failed (a wrong answer, unterminated
//! reasoning, a code timeout or error); 2 invalid suites, config or arguments (nothing ran);
//! 3 infrastructure errors (timeouts, HTTP 429/5xx, broken streams, missing GPU, cassette
//! misses) — these take precedence over 1 because the results are incomplete.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use llmtest_spec::RunMode;

use crate::Llmtest;
use crate::engine::{Plan, PlanOptions};
use crate::report::{Format, render};
use crate::results::{RESULTS_SCHEMA_VERSION, RunResults, Summary};

#[derive(Parser)]
#[command(
    name = "llmtest",
    version,
    about = "Evaluate LLMs with YAML suites: run, record, validate, report"
)]
struct Cli {
    /// Project root (default: the current directory).
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(clap::Args, Clone)]
struct Select {
    /// Suite files or directories (default: those in llmtest.yaml).
    paths: Vec<PathBuf>,
    /// Run these models instead of the profile's (repeatable).
    #[arg(long = "model", short = 'm', value_name = "MODEL")]
    models: Vec<String>,
    /// The profile (default: LLMTEST_PROFILE, else llmtest.yaml's default_profile).
    #[arg(long, short = 'p')]
    profile: Option<String>,
    /// Only items whose name (`suite::case::model`) contains this.
    #[arg(long, short = 'f')]
    filter: Option<String>,
    /// Only shard K of N (by a hash of the item name, as `cargo nextest run --partition
    /// hash:K/N`); put the shards together with `llmtest merge`.
    #[arg(long, value_name = "K/N")]
    shard: Option<crate::shard::Shard>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run suites and report.
    Run {
        #[command(flatten)]
        select: Select,
        /// Report format on stdout (or in --output). Default: md.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Write the report here instead of stdout.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
        /// Continue an interrupted run: items in the results directory's journal are not
        /// requested again.
        #[arg(long)]
        resume: bool,
    },
    /// Put shards (`run --shard K/N --format json -o …`) back together into one results.json.
    Merge {
        /// The shards' results files, one per shard.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
        /// Write the merged results here instead of stdout.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Render a saved results.json again (no model is called).
    Report {
        /// A results.json written by `llmtest run` (schema version 1).
        results: PathBuf,
        /// Mark flips against this earlier results.json.
        #[arg(long, value_name = "RESULTS")]
        baseline: Option<PathBuf>,
        /// Report format. Default: html.
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Write the report here instead of stdout.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
    /// Compare two models' results case by case: flips, pass rates with Wilson 95%
    /// intervals, an exact paired test and a verdict (exit 1 on a significant regression).
    Compare(crate::compare::CompareArgs),
    /// Run live backends and write cassettes for replay.
    Record {
        #[command(flatten)]
        select: Select,
    },
    /// List the items a run would execute (suite::case::model).
    List {
        #[command(flatten)]
        select: Select,
    },
    /// Check suites and config; report every problem.
    Validate {
        #[command(flatten)]
        select: Select,
    },
    /// Print the JSON Schemas, or write/check them under schemas/.
    Schema {
        /// Write schemas/suite.schema.json and schemas/llmtest.schema.json.
        #[arg(long)]
        write: bool,
        /// Exit 1 if the committed schemas are stale.
        #[arg(long, conflicts_with = "write")]
        check: bool,
    },
    /// Measure a judge against human labels: accuracy, Cohen's kappa, confusion matrix.
    Calibrate(crate::calibrate::Args),
    /// What this machine offers: ONNX Runtime library, GPU, Python.
    Doctor,
    /// Run the suites as the `cargo test` harness does (libtest arguments after `--`:
    /// `--list`, `--exact NAME`, `--skip F`, `--ignored`, filters).
    Test {
        /// Only the trials of shard K of N (by a hash of the trial name, as `cargo nextest
        /// run --partition hash:K/N`; the harness reads `LLMTEST_SHARD=K/N`).
        #[arg(long)]
        shard: Option<crate::shard::Shard>,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

pub(crate) fn main(lt: &Llmtest, args: Vec<OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let lt = match &cli.root {
        Some(r) => lt.clone().root(r),
        None => lt
            .clone()
            .root(std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))),
    };
    let root = lt.root_dir();
    match cli.cmd {
        Cmd::Run {
            select,
            format,
            output,
            resume,
        } => run(
            &lt,
            &root,
            &select,
            None,
            format.unwrap_or(Format::Md),
            output,
            resume,
        ),
        Cmd::Merge { shards, output } => crate::shard::command(&shards, output.as_deref()),
        Cmd::Report {
            results,
            baseline,
            format,
            output,
        } => crate::report::command(&results, baseline.as_deref(), format, output.as_deref()),
        Cmd::Compare(args) => crate::compare::command(&args),
        Cmd::Record { select } => {
            if select.models.is_empty() && select.profile.is_none() {
                eprintln!(
                    "error: `record` needs the models to call: `--model M` (repeatable) or `--profile P`"
                );
                return ExitCode::from(2);
            }
            run(
                &lt,
                &root,
                &select,
                Some(RunMode::Record),
                Format::Md,
                None,
                false,
            )
        }
        Cmd::List { select } => match plan(&lt, &root, &select, None) {
            Ok(plan) => {
                let mut out = std::io::stdout().lock();
                for w in filtered(&plan, &select) {
                    let _ = writeln!(out, "{}", w.name());
                }
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Cmd::Validate { select } => match plan(&lt, &root, &select, None) {
            Ok(plan) => {
                let cases: usize = plan.suites.iter().map(|s| s.cases.len()).sum();
                println!(
                    "ok: {} suite(s), {} case(s), {} item(s) on profile `{}`",
                    plan.suites.len(),
                    cases,
                    plan.work.len(),
                    plan.profile.name
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Cmd::Schema { write, check } => schema(&root, write, check),
        Cmd::Calibrate(args) => crate::calibrate::main(&lt, &root, args),
        Cmd::Doctor => {
            doctor(&root);
            ExitCode::SUCCESS
        }
        Cmd::Test { shard, args } => {
            use clap::Parser as _;
            let argv = std::iter::once("llmtest-test".to_string()).chain(args);
            match libtest_mimic::Arguments::try_parse_from(argv) {
                Ok(a) => crate::harness::run(&lt, a, shard),
                Err(e) => {
                    let _ = e.print();
                    ExitCode::from(2)
                }
            }
        }
    }
}

fn plan(
    lt: &Llmtest,
    root: &std::path::Path,
    s: &Select,
    mode: Option<RunMode>,
) -> Result<Plan, ExitCode> {
    let registry = lt.grader_registry(root);
    let opts = PlanOptions {
        paths: s.paths.clone(),
        profile: s.profile.clone(),
        models: s.models.clone(),
        mode,
        ..PlanOptions::default()
    };
    match Plan::load(root, &registry, &opts) {
        Ok(p) => Ok(p),
        Err(d) => {
            eprintln!("{d}");
            Err(ExitCode::from(2))
        }
    }
}

fn filtered<'a>(plan: &'a Plan, s: &Select) -> Vec<&'a crate::Work> {
    plan.work
        .iter()
        .filter(|w| s.filter.as_deref().is_none_or(|f| w.name().contains(f)))
        .filter(|w| s.shard.is_none_or(|sh| sh.contains(&w.name())))
        .collect()
}

fn run(
    lt: &Llmtest,
    root: &std::path::Path,
    s: &Select,
    mode: Option<RunMode>,
    format: Format,
    output: Option<PathBuf>,
    resume: bool,
) -> ExitCode {
    let plan = match plan(lt, root, s, mode) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let work: Vec<crate::Work> = filtered(&plan, s).into_iter().cloned().collect();
    if work.is_empty() {
        eprintln!(
            "error: nothing to run: no suite × model matches (profile `{}`); `llmtest list` shows the items",
            plan.profile.name
        );
        return ExitCode::from(2);
    }
    let (engine, models) = match lt.start_engine(&plan, &work) {
        Ok(started) => started,
        Err(code) => return code,
    };
    eprintln!(
        "llmtest: {} item(s) on {} model(s), profile `{}` ({})",
        work.len(),
        models.len(),
        plan.profile.name,
        plan.profile.mode.as_str()
    );
    let journal = root
        .join(&plan.project.results)
        .join(crate::journal::file_name(s.shard));
    let cases = crate::runner::run(
        &engine,
        &plan,
        &work,
        &crate::runner::LoopOptions {
            resume,
            journal: &journal,
        },
    );
    engine.shutdown();
    let unsharded = Select {
        shard: None,
        ..s.clone()
    };
    let identity = crate::shard::identity(&plan, filtered(&plan, &unsharded).len(), s.shard);
    let summary = Summary::from_cases(&cases);
    let results = RunResults {
        schema_version: RESULTS_SCHEMA_VERSION,
        llmtest_version: env!("CARGO_PKG_VERSION").to_owned(),
        profile: plan.profile.name.clone(),
        mode: plan.profile.mode.as_str().to_owned(),
        models: engine.model_infos(),
        cases,
        summary,
        identity: Some(identity),
    };
    let results_dir = root.join(&plan.project.results);
    let json_path = results_dir.join("results.json");
    if let Err(e) = crate::report::write_json(&json_path, &results) {
        eprintln!("warning: cannot write {}: {e}", json_path.display());
    }
    let written = match (&output, format) {
        (Some(p), Format::Json) => crate::report::write_json(p, &results),
        (Some(p), f) => {
            let report = llmtest_backend::redact_secrets(render(&results, f));
            crate::results::write_atomic(p, report.as_bytes())
        }
        (None, Format::Json) => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            crate::report::write_json_to(&mut out, &results)
                .and_then(|()| std::io::Write::flush(&mut out))
        }
        (None, f) => {
            print!("{}", llmtest_backend::redact_secrets(render(&results, f)));
            Ok(())
        }
    };
    if let Err(e) = written {
        let to = output
            .as_ref()
            .map_or("standard output".into(), |p| p.display().to_string());
        eprintln!("error: cannot write {to}: {e}");
        return ExitCode::from(3);
    }
    for line in crate::compare::trial::summary_lines(&plan, &results.cases) {
        eprintln!("llmtest: compare {line}");
    }
    if let Some(line) = crate::report::judge_summary(&results) {
        eprintln!("llmtest: {line}");
    }
    let by = &results.summary.by_outcome;
    eprintln!(
        "llmtest: {} passed, {} failed, {} infrastructure errors, {} skipped; results in {}",
        by.get("pass").unwrap_or(&0),
        results.summary.total
            - by.get("pass").unwrap_or(&0)
            - by.get("infra_error").unwrap_or(&0)
            - by.get("skipped").unwrap_or(&0),
        by.get("infra_error").unwrap_or(&0),
        by.get("skipped").unwrap_or(&0),
        plan.project.results.join("results.json").display()
    );
    ExitCode::from(results.summary.exit_code())
}

fn schema(root: &std::path::Path, write: bool, check: bool) -> ExitCode {
    let files = [
        ("schemas/suite.schema.json", llmtest_spec::suite_schema()),
        ("schemas/llmtest.schema.json", llmtest_spec::config_schema()),
    ];
    if !write && !check {
        for (name, s) in &files {
            println!("// {name}\n{s}");
        }
        return ExitCode::SUCCESS;
    }
    let mut stale = false;
    for (name, s) in &files {
        let p = root.join(name);
        if write {
            if let Err(e) = std::fs::create_dir_all(p.parent().expect("has parent"))
                .and_then(|_| std::fs::write(&p, s))
            {
                eprintln!("error: cannot write {name}: {e}");
                return ExitCode::from(3);
            }
            eprintln!("wrote {name}");
        } else if std::fs::read_to_string(&p).ok().as_deref() != Some(s.as_str()) {
            eprintln!("{name} is stale: run `llmtest schema --write`");
            stale = true;
        }
    }
    if stale {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn doctor(root: &std::path::Path) {
    println!("llmtest {}", env!("CARGO_PKG_VERSION"));
    println!("project root: {}", root.display());
    match llmtest_spec::Project::load(root) {
        Ok(p) => println!(
            "llmtest.yaml: {} model(s), {} profile(s)",
            p.models.len(),
            p.profiles.len()
        ),
        Err(d) => println!("llmtest.yaml: invalid\n{d}"),
    }
    #[cfg(feature = "onnx")]
    println!("{}", llmtest_onnx::doctor_at(root));
    #[cfg(not(feature = "onnx"))]
    println!("onnx: not compiled in (feature `onnx`)");
}
