//! The CLI's run loop: items already in the journal (with `--resume`) are taken from it,
//! the rest are started on the engine, journaled as each finishes and shown as they come —
//! a progress bar on a terminal (done/total, pass/fail/infra, rate, ETA), plain lines in
//! plan order otherwise (a pipe, a log file, or `CI` set).

use std::io::IsTerminal as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use llmtest_grade::Outcome;

use crate::engine::{Engine, Plan, Work};
use crate::journal::{self, Journal};
use crate::results::CaseResult;

/// How the loop runs.
pub(crate) struct LoopOptions<'a> {
    /// Continue from the journal instead of starting it afresh.
    pub resume: bool,
    pub journal: &'a Path,
}

#[derive(Default)]
struct Counts {
    done: AtomicUsize,
    pass: AtomicUsize,
    wrong: AtomicUsize,
    infra: AtomicUsize,
}

impl Counts {
    fn add(&self, o: Outcome) {
        self.done.fetch_add(1, Ordering::SeqCst);
        let c = if o == Outcome::Pass {
            &self.pass
        } else if o.is_infra() {
            &self.infra
        } else if o == Outcome::Skipped {
            return;
        } else {
            &self.wrong
        };
        c.fetch_add(1, Ordering::SeqCst);
    }

    fn message(&self) -> String {
        format!(
            "✅ {} ❌ {} ⚠️ {}",
            self.pass.load(Ordering::SeqCst),
            self.wrong.load(Ordering::SeqCst),
            self.infra.load(Ordering::SeqCst)
        )
    }
}

fn progress_bar(total: usize) -> Option<indicatif::ProgressBar> {
    let on_terminal = std::io::stderr().is_terminal() && std::env::var_os("CI").is_none();
    if !on_terminal {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:32.cyan/blue} {pos}/{len} {msg}  {per_sec} · ETA {eta}",
        )
        .expect("progress template")
        .progress_chars("█▉▊▋▌▍▎▏ "),
    );
    bar.enable_steady_tick(Duration::from_millis(250));
    Some(bar)
}

/// Runs `work` (in plan order) and returns one result per item.
pub(crate) fn run(
    engine: &Arc<Engine>,
    plan: &Plan,
    work: &[Work],
    opts: &LoopOptions<'_>,
) -> Vec<CaseResult> {
    let mode = plan.profile.mode.as_str();
    let keys: Vec<String> = work
        .iter()
        .map(|w| journal::item_key(&plan.project, mode, w))
        .collect();
    let mut resumed = std::collections::HashMap::new();
    let journal = if opts.resume {
        match journal::read(opts.journal) {
            Ok(r) => {
                if r.truncated_tail {
                    eprintln!(
                        "llmtest: the journal's last line was cut off mid-write; that item runs again"
                    );
                }
                if r.bad_lines > 0 {
                    eprintln!(
                        "warning: {} unreadable journal line(s) ignored",
                        r.bad_lines
                    );
                }
                resumed = r.results;
            }
            Err(e) => eprintln!(
                "warning: cannot read {}: {e}; running everything",
                opts.journal.display()
            ),
        }
        Journal::append(opts.journal)
    } else {
        Journal::create(opts.journal)
    };
    let journal = match journal {
        Ok(j) => Some(Arc::new(j)),
        Err(e) => {
            eprintln!(
                "warning: cannot write the journal {}: {e}; this run cannot be resumed",
                opts.journal.display()
            );
            None
        }
    };
    // Boxed: a run that resumes nothing holds 8 bytes per item here, not a whole result.
    let from_journal: Vec<Option<Box<CaseResult>>> = work
        .iter()
        .zip(&keys)
        .map(|(w, k)| {
            resumed
                .remove(k)
                .filter(|r| r.suite == w.suite.name && r.case == w.case().id && r.model == w.model)
                .map(Box::new)
        })
        .collect();
    drop(resumed);
    let todo: Vec<Work> = work
        .iter()
        .zip(&from_journal)
        .filter(|(_, r)| r.is_none())
        .map(|(w, _)| w.clone())
        .collect();
    if opts.resume {
        eprintln!(
            "llmtest: resuming: {} item(s) from the journal, {} to run",
            work.len() - todo.len(),
            todo.len()
        );
    }
    let counts = Arc::new(Counts::default());
    let bar = progress_bar(work.len());
    for r in from_journal.iter().flatten() {
        counts.add(r.outcome);
    }
    if let Some(b) = &bar {
        b.set_position(counts.done.load(Ordering::SeqCst) as u64);
        b.set_message(counts.message());
    }
    let finished = Arc::new((std::sync::Mutex::new(0usize), std::sync::Condvar::new()));
    {
        let (journal, counts, bar, finished) = (
            journal.clone(),
            counts.clone(),
            bar.clone(),
            finished.clone(),
        );
        let (names, key_of): (Vec<String>, Vec<String>) = work
            .iter()
            .zip(&keys)
            .map(|(w, k)| (w.name(), k.clone()))
            .unzip();
        let key_of: std::collections::HashMap<String, String> =
            names.into_iter().zip(key_of).collect();
        engine.prefetch_with(
            &todo,
            Arc::new(move |w: &Work, r: &CaseResult| {
                if crate::engine::interrupted() {
                    return; // a stopped backend's error, not a result
                }
                let name = w.name();
                if let (Some(j), Some(k)) = (&journal, key_of.get(&name)) {
                    j.record(k, &name, r);
                }
                counts.add(r.outcome);
                if let Some(b) = &bar {
                    b.set_position(counts.done.load(Ordering::SeqCst) as u64);
                    b.set_message(counts.message());
                }
                let (n, cv) = &*finished;
                *n.lock().expect("finished") += 1;
                cv.notify_all();
            }),
        );
    }
    let mut out = Vec::with_capacity(work.len());
    for (i, (w, prior)) in work.iter().zip(from_journal).enumerate() {
        let (r, note) = match prior {
            Some(r) => (*r, " (journal)"),
            None => (engine.take(w), ""),
        };
        if crate::engine::interrupted() {
            // The signal handler is stopping the backends and exits with 130; what fails
            // meanwhile is no result. Wait for it (bounded), never writing results.
            if let Some(b) = &bar {
                b.abandon();
            }
            std::thread::sleep(Duration::from_secs(30));
            std::process::exit(130);
        }
        if bar.is_none() {
            // One write per line: stderr is unbuffered and padding is written a character
            // at a time, a system call each (≈ 9% of a 500-case run's CPU).
            let line = format!(
                "[{:>4}/{}] {:<22} {}{note}\n",
                i + 1,
                work.len(),
                r.outcome.as_str(),
                w.name()
            );
            let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), line.as_bytes());
        }
        out.push(r);
    }
    // The last results may be read before their journal lines are written: wait for them
    // (bounded), so a finished run's journal is whole.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (n, cv) = &*finished;
    let mut done = n.lock().expect("finished");
    while *done < todo.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        done = cv.wait_timeout(done, left).expect("finished").0;
    }
    drop(done);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    out
}
