//! RUNPATH to libtorch, libtorch_cuda kept (see the genae-build crate).

fn main() {
    genae_build::link_libtorch();
}
