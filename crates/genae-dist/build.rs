//! Builds `shim/c10d_shim.cpp` against the headers of the libtorch that torch-sys links (found
//! from `DEP_TCH_LIBTORCH_LIB`), with the Gloo headers vendored in `vendor/`, the way torch-sys
//! builds its own C++; then the usual RUNPATH to libtorch (genae-build).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=shim/c10d_shim.cpp");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        panic!(
            "genae-dist: DEP_TCH_LIBTORCH_LIB is not set (torch-sys sets it for the crates that \
             depend on it directly); is LIBTORCH set to the `torch` folder of torch 2.11.0?"
        );
    };
    // Canonical, so that a `LIBTORCH` symlink (e.g. `.genae/libtorch`) leads to the wheel's
    // folder, beside which the `nvidia/` headers of the `nccl` feature are.
    let lib_dir = std::fs::canonicalize(&lib).unwrap_or_else(|_| PathBuf::from(&lib));
    let torch = lib_dir
        .parent()
        .expect("libtorch's lib/ folder has a parent")
        .to_path_buf();
    let include = torch.join("include");
    let gloo = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("vendor/gloo-70dc360/include");
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .file("shim/c10d_shim.cpp")
        .include(&gloo)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("GLOG_USE_GLOG_EXPORT", None)
        .define("USE_C10D_GLOO", None)
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(false);
    let nccl = std::env::var_os("CARGO_FEATURE_NCCL").is_some();
    if nccl {
        // The pip wheels put the CUDA and NCCL headers beside `torch/`.
        // (cu13's wheel lacks `crt/`, which triton's copy of the CUDA headers has.)
        let site = torch.parent().expect("torch/ has a parent");
        for sub in [
            "nvidia/cu13/include",
            "nvidia/nccl/include",
            "nvidia/cudnn/include",
            "triton/backends/nvidia/include",
        ] {
            if site.join(sub).is_dir() {
                build.include(site.join(sub));
            }
        }
        let cuda = site.join("nvidia/cu13/include");
        if !cuda.join("cuda_runtime.h").is_file() || !cuda.join("nv/target").is_file() {
            panic!(
                "genae-dist's `nccl` feature compiles against the CUDA 13 headers of the pip \
                 wheels beside {}: `nvidia-cuda-runtime` (installed with torch) and \
                 `nvidia-cuda-cccl` (`pip install 'nvidia-cuda-cccl==13.0.*'` into torch's \
                 Python); {} lacks cuda_runtime.h or nv/target",
                torch.display(),
                cuda.display()
            );
        }
        build
            .define("USE_C10D_NCCL", None)
            .define("GENAE_DIST_NCCL", None);
    }
    build.compile("genae_c10d_shim");
    println!("cargo:rustc-link-search=native={lib}");
    if nccl {
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
    }
    for name in ["torch_cpu", "c10", "stdc++"] {
        println!("cargo:rustc-link-lib=dylib={name}");
    }
    genae_build::link_libtorch();
}
