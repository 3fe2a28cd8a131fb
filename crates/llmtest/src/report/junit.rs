//! JUnit XML: a test suite per llmtest suite × model, a test case per case.

use llmtest_grade::Outcome;

use crate::results::{CaseResult, RunResults};

/// JUnit XML: a test suite per llmtest suite × model, a test case per case.
pub fn junit(r: &RunResults) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    let mut report = Report::new("llmtest");
    let mut groups: std::collections::BTreeMap<(String, String), Vec<&CaseResult>> =
        Default::default();
    for c in &r.cases {
        groups
            .entry((c.suite.clone(), c.model.clone()))
            .or_default()
            .push(c);
    }
    for ((suite, model), cases) in groups {
        let mut ts = TestSuite::new(format!("{suite}@{model}"));
        for c in cases {
            let status = match c.outcome {
                Outcome::Pass => TestCaseStatus::success(),
                Outcome::Skipped => {
                    let mut s = TestCaseStatus::skipped();
                    if let Some(m) = &c.skipped {
                        s.set_message(m.clone());
                    }
                    s
                }
                o if o.is_infra() => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                    s.set_message(
                        c.error
                            .as_ref()
                            .map(ToString::to_string)
                            .unwrap_or_default(),
                    );
                    s.set_type(o.as_str());
                    s
                }
                other => {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(crate::harness::failure_message(c));
                    s.set_type(other.as_str());
                    s
                }
            };
            let mut tc = TestCase::new(c.case.clone(), status);
            tc.set_classname(format!("{}.{}", c.suite, c.model));
            if let Some(t) = c.timings.as_ref().filter(|t| !t.replayed) {
                tc.set_time(std::time::Duration::from_secs_f64(t.total_ms / 1e3));
            }
            ts.add_test_case(tc);
        }
        report.add_test_suite(ts);
    }
    report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- junit serialization failed: {e} -->\n"))
}
