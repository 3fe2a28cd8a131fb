//! The llmtest repository's own evaluations package. Its `tests/evals.rs` runs the suites in
//! `suites/` as `cargo test` trials, and `snapshots/` belongs to it, so `cargo insta review`
//! works from the repository root. The framework itself lives in `crates/`.
