//! Test helpers shared by the integration tests.

use tch::{Kind, Tensor};

/// `n` seeded standard-normal values from a local generator (xorshift64* and Box-Muller), not
/// from `tch::manual_seed`, whose global state parallel test threads would race on.
pub fn normal_values(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut uniform = || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        ((state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    };
    (0..n)
        .map(|_| {
            let (u, v) = (uniform(), uniform());
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        })
        .collect()
}

/// A seeded standard-normal tensor of `kind`.
#[allow(dead_code)]
pub fn normal(shape: &[i64], seed: u64, kind: Kind) -> Tensor {
    let n = shape.iter().product::<i64>() as usize;
    Tensor::from_slice(&normal_values(n, seed))
        .reshape(shape)
        .to_kind(kind)
}
