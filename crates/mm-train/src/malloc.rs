//! Keeping glibc's malloc from returning libtorch's activation buffers to the kernel after
//! every step.
//!
//! libtorch allocates CPU tensors with `posix_memalign`. glibc serves blocks above its
//! `M_MMAP_THRESHOLD` (128 KiB, raised dynamically up to 32 MiB by earlier frees) with a fresh
//! `mmap` and gives them back with `munmap` when freed, so every training step pays page faults
//! for its large activations again. Measured on the retrieval task (2 vCPUs, batch 64):
//! 6-9 million page faults and 500-560 samples/s with the default, 0.3 million and about 930
//! samples/s with the threshold at 1 GiB. Python's PyTorch is exposed to the same effect; its
//! process happens to raise the dynamic threshold earlier.
#![allow(unsafe_code)]

/// Sets glibc's `M_MMAP_THRESHOLD` to 1 GiB so that freed tensor buffers are reused instead of
/// unmapped and faulted in again (see the module docs). Process-wide; call it once at the
/// start of a training binary (`mm` does). Peak memory stays mapped until the heap top is
/// trimmed. Returns whether the setting was applied (always false off glibc).
pub fn keep_freed_buffers() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; M_MMAP_THRESHOLD with a value
        // below INT_MAX is a documented, supported setting, valid at any time.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
