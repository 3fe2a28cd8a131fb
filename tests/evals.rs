//! The repository's suites as `cargo test` trials: `suite::case::model` per case × model and
//! `suite::model::snapshot` per suite × model. Profile: `LLMTEST_PROFILE`, else llmtest.yaml's
//! default (offline replay of recorded cassettes).

fn main() -> std::process::ExitCode {
    llmtest::harness()
}
