//! Shared build script for every workspace crate whose tests, benches, binaries or doctests
//! link libtorch.
//!
//! torch-sys exports the libtorch library folder as `DEP_TCH_LIBTORCH_LIB` to crates that depend
//! on it directly. Without the flags below a downstream binary has no RUNPATH (so it needs
//! `LD_LIBRARY_PATH` to start) and the linker drops `libtorch_cuda.so` as unused (so CUDA is
//! silently unavailable). With them, binaries and test executables start on their own.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    match std::env::var("DEP_TCH_LIBTORCH_LIB") {
        Ok(lib) if !lib.is_empty() => {
            println!("cargo:rustc-link-arg=-Wl,-rpath={lib}");
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-ltorch");
        }
        _ => println!(
            "cargo:warning=DEP_TCH_LIBTORCH_LIB is not set: is torch-sys a direct dependency? \
             Binaries will need LD_LIBRARY_PATH."
        ),
    }
}
