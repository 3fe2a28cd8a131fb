//! The repo's test binaries (the `evals` harness above all) are linked without PIE on Linux:
//! under `cargo nextest run` every trial is a process of its own, and a position-independent
//! debug binary makes each one apply ≈160,000 relocations at start-up (measured in README.md,
//! "One trial per process"). Nothing else about the binaries changes.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-link-arg-tests=-no-pie");
    }
}
