fn main() {
    println!("cargo::rustc-link-arg-tests=-no-pie");
}
