//! Prints what the code sandbox can do on this machine (run it as the user that runs the
//! evaluations): `cargo run -p llmtest-code --example sandbox_check`.

fn main() {
    let iso = llmtest_code::isolation();
    println!("sandbox: {}", iso.describe());
    println!("{iso:#?}");
    if let Some(w) = iso.warning() {
        println!("{w}");
    }
}
