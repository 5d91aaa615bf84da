//! Link setting for the browser build only: keep each piece of constant data in a segment of
//! its own, so that `cargo leptos build --split` can move it into the page file that uses it
//! (the linker otherwise merges them, and all of it stays in the main module: cargo-leptos
//! #679).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_ARCH").is_ok_and(|arch| arch == "wasm32") {
        println!("cargo:rustc-link-arg-cdylib=--no-merge-data-segments");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
