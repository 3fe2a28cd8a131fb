//! The `llmtest` binary: a thin shell over [`llmtest::Llmtest::cli`].

fn main() -> std::process::ExitCode {
    llmtest::Llmtest::new().cli()
}
