//! Links libtorch with an rpath and `--no-as-needed` when the `tch` feature is on (see
//! `mm-build`); does nothing otherwise.
fn main() {
    mm_build::link_libtorch();
}
