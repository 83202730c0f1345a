//! Links libtorch with an rpath and `--no-as-needed` (see `mm-build`).
fn main() {
    mm_build::link_libtorch();
}
