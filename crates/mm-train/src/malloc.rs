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
//!
//! Setting the threshold by hand also freezes glibc's `M_TRIM_THRESHOLD` at its 128 KiB
//! default (only the dynamic adjustment raises it), so a step's buffers freed at the top of
//! the heap were still handed back (`brk`/`madvise`) and faulted in again at the next step.
//! Measured on captioning with its images streamed from a 20,000-scene SynthAV (2 vCPUs, 60
//! steps): 6-14 million page faults, 17-37 s of system time and 137-175 samples/s with only
//! the mmap threshold; 0.18 million, 1 s and 176-183 samples/s with the trim threshold at
//! 1 GiB as well.
#![allow(unsafe_code)]

/// Sets glibc's `M_MMAP_THRESHOLD` and `M_TRIM_THRESHOLD` to 1 GiB so that freed tensor
/// buffers are reused instead of unmapped (or trimmed) and faulted in again (see the module
/// docs). Process-wide; call it once at the start of a training binary (`mm` does). The
/// process's resident memory then stays near its peak: free memory above 1 GiB at the top of
/// the heap is still returned. Returns whether both settings were applied (always false off
/// glibc).
pub fn keep_freed_buffers() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; M_MMAP_THRESHOLD with a value
        // below INT_MAX is a documented, supported setting, valid at any time.
        let mmap = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 30) == 1 };
        // SAFETY: as above; M_TRIM_THRESHOLD takes any non-negative value.
        let trim = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30) == 1 };
        mmap && trim
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
