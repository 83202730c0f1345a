//! The one kernel written with `std::arch` intrinsics: transposing a block of spectra.
//!
//! Everything else in the crate is plain Rust that the compiler vectorises (compiled for AVX2
//! as well through `multiversion`), but LLVM does not turn the plain 8x8 transpose loop into
//! shuffles: that loop cost 0.26 us per 1025-bin frame on the dev VM, this one 0.04 us.
// The intrinsics take raw pointers; every access is bounds-checked up front (see SAFETY).
#![allow(unsafe_code)]

/// Frames per block: spectra go through `[bins, BLOCK]` blocks, one AVX register per bin.
pub(crate) const BLOCK: usize = 8;

/// `block[k * BLOCK + j] = tile[j * bins + k]` for `j < n <= BLOCK` and every bin `k < bins`:
/// frame-major spectra (`[BLOCK, bins]`) to bin-major (`[bins, BLOCK]`). Lanes `j >= n` of
/// `block` are left as they were.
pub(crate) fn transpose_block(tile: &[f32], bins: usize, n: usize, block: &mut [f32]) {
    assert!(n <= BLOCK && tile.len() >= BLOCK * bins && block.len() >= bins * BLOCK);
    let mut done = 0;
    #[cfg(target_arch = "x86_64")]
    if n == BLOCK && std::is_x86_feature_detected!("avx") {
        // SAFETY: the CPU supports AVX (checked just above), and the lengths were asserted.
        done = unsafe { transpose_avx(tile, bins, block) };
    }
    for k in done..bins {
        for j in 0..n {
            block[k * BLOCK + j] = tile[j * bins + k];
        }
    }
}

/// The 8x8 tiles of [`transpose_block`] for a full block, as far as whole tiles go; returns
/// the number of bins done.
///
/// # Safety
/// The CPU must support AVX; `tile.len() >= 8 * bins` and `block.len() >= 8 * bins`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose_avx(tile: &[f32], bins: usize, block: &mut [f32]) -> usize {
    use std::arch::x86_64::{
        __m256, _mm256_loadu_ps, _mm256_permute2f128_ps, _mm256_shuffle_ps, _mm256_storeu_ps,
        _mm256_unpackhi_ps, _mm256_unpacklo_ps,
    };
    let whole = bins / 8 * 8;
    let (src, dst) = (tile.as_ptr(), block.as_mut_ptr());
    for k in (0..whole).step_by(8) {
        // SAFETY: row j reads tile[j * bins + k..][..8] with k + 8 <= bins, inside
        // tile[..8 * bins]; the stores write block[(k + i) * 8..][..8], inside
        // block[..8 * bins]. Unaligned loads and stores are used throughout.
        unsafe {
            let r: [__m256; 8] = std::array::from_fn(|j| _mm256_loadu_ps(src.add(j * bins + k)));
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let s0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let s1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let s2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let s3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let s4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let s5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let s6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let s7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let out = [
                _mm256_permute2f128_ps::<0x20>(s0, s4),
                _mm256_permute2f128_ps::<0x20>(s1, s5),
                _mm256_permute2f128_ps::<0x20>(s2, s6),
                _mm256_permute2f128_ps::<0x20>(s3, s7),
                _mm256_permute2f128_ps::<0x31>(s0, s4),
                _mm256_permute2f128_ps::<0x31>(s1, s5),
                _mm256_permute2f128_ps::<0x31>(s2, s6),
                _mm256_permute2f128_ps::<0x31>(s3, s7),
            ];
            for (i, v) in out.into_iter().enumerate() {
                _mm256_storeu_ps(dst.add((k + i) * 8), v);
            }
        }
    }
    whole
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_full_and_partial_blocks_of_any_width() {
        for bins in [1usize, 7, 8, 9, 16, 257, 1025] {
            let tile: Vec<f32> = (0..BLOCK * bins).map(|i| i as f32).collect();
            for n in [1, 3, BLOCK - 1, BLOCK] {
                let mut block = vec![-1.0f32; bins * BLOCK];
                transpose_block(&tile, bins, n, &mut block);
                for k in 0..bins {
                    for j in 0..BLOCK {
                        let want = if j < n { tile[j * bins + k] } else { -1.0 };
                        assert_eq!(block[k * BLOCK + j], want, "bins {bins}, n {n}, ({k}, {j})");
                    }
                }
            }
        }
    }
}
