//! With the `split` feature, the linker keeps its relocations (`--emit-relocs`): the splitting
//! step (wasm_split_cli_support, run by `cargo xtask`) reads them to move code into chunks.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_SPLIT").is_some() {
        println!("cargo::rustc-link-arg-bins=--emit-relocs");
    }
}
