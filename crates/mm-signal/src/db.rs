//! Decibel scaling, as `librosa.power_to_db` and `librosa.amplitude_to_db` compute it.

use ndarray::{ArrayBase, DataMut, Dimension};
use rayon::prelude::*;

use crate::error::{Result, invalid};

/// The value that maps to 0 dB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DbRef {
    /// A fixed value (librosa's `ref=1.0` by default); its absolute value is used.
    Value(f32),
    /// The array's maximum (librosa's `ref=np.max`).
    Max,
}

/// dB conversion parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DbConfig {
    /// The value that maps to 0 dB.
    pub reference: DbRef,
    /// Floor applied before the logarithm (of power for `power_to_db`, of amplitude for
    /// `amplitude_to_db`).
    pub amin: f32,
    /// If set, clamp to `max - top_db` (over the whole array).
    pub top_db: Option<f32>,
}

impl Default for DbConfig {
    /// `power_to_db`'s defaults: `ref=1.0, amin=1e-10, top_db=80`.
    fn default() -> Self {
        Self {
            reference: DbRef::Value(1.0),
            amin: 1e-10,
            top_db: Some(80.0),
        }
    }
}

impl DbConfig {
    /// `amplitude_to_db`'s defaults: `ref=1.0, amin=1e-5, top_db=80`.
    pub fn amplitude() -> Self {
        Self {
            amin: 1e-5,
            ..Self::default()
        }
    }

    fn validate(&self) -> Result<()> {
        if self.amin.is_nan() || self.amin <= 0.0 {
            return Err(invalid("amin", "must be positive"));
        }
        if let Some(t) = self.top_db
            && (t.is_nan() || t < 0.0)
        {
            return Err(invalid("top_db", "must be non-negative"));
        }
        if let DbRef::Value(r) = self.reference
            && !r.is_finite()
        {
            return Err(invalid("reference", "must be finite"));
        }
        Ok(())
    }
}

/// Lanes of the vectorised passes: partial maxima are kept per lane, so that the reduction
/// needs no reassociation.
const LANES: usize = 8;

#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.2"))]
fn max_slice(v: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = v.chunks_exact(LANES);
    for c in &mut chunks {
        for (m, x) in lanes.iter_mut().zip(c) {
            *m = m.max(*x);
        }
    }
    chunks
        .remainder()
        .iter()
        .chain(&lanes)
        .fold(f32::NEG_INFINITY, |m, x| m.max(*x))
}

/// `v = 10 log10(max(v, amin)) - offset` for normal positive `amin`, in one pass that also
/// returns the largest result.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.2"))]
fn db_pass(v: &mut [f32], amin: f32, offset: f32) -> f32 {
    let db = |s: f32| ten_log10(s.max(amin)) - offset;
    let mut lanes = [f32::NEG_INFINITY; LANES];
    let mut chunks = v.chunks_exact_mut(LANES);
    for c in &mut chunks {
        for (m, x) in lanes.iter_mut().zip(c) {
            *x = db(*x);
            *m = m.max(*x);
        }
    }
    let mut top = lanes.iter().fold(f32::NEG_INFINITY, |m, x| m.max(*x));
    for x in chunks.into_remainder() {
        *x = db(*x);
        top = top.max(*x);
    }
    top
}

#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.2"))]
fn clamp_below(v: &mut [f32], floor: f32) {
    for x in v {
        *x = x.max(floor);
    }
}

/// Converts a power spectrogram to decibels in place: `10 log10(max(amin, S)) - 10
/// log10(max(amin, |ref|))`, then clamps at `max - top_db`.
pub fn power_to_db_inplace<S, D>(spec: &mut ArrayBase<S, D>, cfg: &DbConfig) -> Result<()>
where
    S: DataMut<Elem = f32>,
    D: Dimension,
{
    if let Some(v) = spec.as_slice_memory_order_mut() {
        return power_to_db_slice(v, cfg, false);
    }
    // a strided view: through a contiguous copy, so that there is one implementation
    let mut v: Vec<f32> = spec.iter().copied().collect();
    power_to_db_slice(&mut v, cfg, false)?;
    spec.iter_mut().zip(v).for_each(|(s, x)| *s = x);
    Ok(())
}

/// `10 log10(max(amin, |ref|))`, in `f64` as librosa computes it.
fn db_offset(reference: f32, amin: f32) -> f32 {
    (10.0 * f64::from(reference.max(amin)).log10()) as f32
}

/// [`power_to_db_inplace`] on a slice; with `parallel`, the slice is cut into one chunk per
/// thread of the current rayon pool (the clamp's maximum is taken over all of them).
pub(crate) fn power_to_db_slice(v: &mut [f32], cfg: &DbConfig, parallel: bool) -> Result<()> {
    cfg.validate()?;
    // below this, splitting costs more than it saves
    const MIN_CHUNK: usize = 1 << 14;
    let chunk = v
        .len()
        .div_ceil(rayon::current_num_threads())
        .max(MIN_CHUNK);
    let split = parallel && chunk < v.len();
    // `f` on every chunk, largest result
    let each = |v: &mut [f32], f: &(dyn Fn(&mut [f32]) -> f32 + Sync)| -> f32 {
        if split {
            v.par_chunks_mut(chunk)
                .map(f)
                .reduce(|| f32::NEG_INFINITY, f32::max)
        } else {
            f(v)
        }
    };
    let reference = match cfg.reference {
        DbRef::Value(r) => r.abs(),
        DbRef::Max => each(v, &|c| max_slice(c)),
    };
    let offset = db_offset(reference, cfg.amin);
    let amin = cfg.amin;
    let top = each(v, &|c| {
        if amin >= f32::MIN_POSITIVE {
            // every argument is a normal positive number or +inf
            db_pass(c, amin, offset)
        } else {
            c.iter_mut()
                .for_each(|s| *s = 10.0 * s.max(amin).log10() - offset);
            max_slice(c)
        }
    });
    if let Some(t) = cfg.top_db {
        let floor = top - t;
        if split {
            v.par_chunks_mut(chunk).for_each(|c| clamp_below(c, floor));
        } else {
            clamp_below(v, floor);
        }
    }
    Ok(())
}

/// `10 log10(x)` for normal positive `x` or `+inf`, branch-free so that loops over it
/// vectorise (glibc's `log10f` does not). The mantissa is reduced to `[sqrt(1/2), sqrt(2))` and
/// `ln` is the series `2 atanh(t)` to `t^9`: error below 2e-6 dB over the whole normal range
/// (tested against `f64::log10`).
#[inline]
pub(crate) fn ten_log10(x: f32) -> f32 {
    const SQRT_HALF_BITS: u32 = 0x3f35_04f3; // sqrt(0.5)
    let bits = x.to_bits();
    // shift the exponent so that the mantissa lands in [sqrt(1/2), sqrt(2))
    let adj = bits.wrapping_sub(SQRT_HALF_BITS);
    let e = (adj as i32 >> 23) as f32;
    let m = f32::from_bits((adj & 0x007f_ffff).wrapping_add(SQRT_HALF_BITS));
    let t = (m - 1.0) / (m + 1.0);
    let t2 = t * t;
    let ln_m =
        2.0 * t * (1.0 + t2 * (1.0 / 3.0 + t2 * (0.2 + t2 * (1.0 / 7.0 + t2 * (1.0 / 9.0)))));
    let v = (e * std::f32::consts::LN_2 + ln_m) * (10.0 / std::f32::consts::LN_10);
    if x == f32::INFINITY { f32::INFINITY } else { v }
}

/// Converts an amplitude (magnitude) spectrogram to decibels in place, as
/// `power_to_db(S**2, ref=ref**2, amin=amin**2, top_db)` (librosa's definition); with
/// [`DbRef::Max`] the reference is the largest amplitude.
pub fn amplitude_to_db_inplace<S, D>(spec: &mut ArrayBase<S, D>, cfg: &DbConfig) -> Result<()>
where
    S: DataMut<Elem = f32>,
    D: Dimension,
{
    cfg.validate()?;
    let reference = match cfg.reference {
        DbRef::Value(r) => r.abs(),
        DbRef::Max => spec.iter().fold(f32::NEG_INFINITY, |m, v| m.max(v.abs())),
    };
    spec.mapv_inplace(|s| s * s);
    power_to_db_inplace(
        spec,
        &DbConfig {
            reference: DbRef::Value(reference * reference),
            amin: cfg.amin * cfg.amin,
            top_db: cfg.top_db,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn fast_log_matches_f64_over_the_normal_range() {
        let mut worst = 0.0f64;
        let mut x = f32::MIN_POSITIVE;
        while x < f32::MAX / 1.001 {
            for v in [x, x * 1.0001, x * 1.37, x * 1.414, x * 1.4143, x * 1.999] {
                let want = 10.0 * f64::from(v).log10();
                worst = worst.max((f64::from(ten_log10(v)) - want).abs());
            }
            x *= 1.7;
        }
        assert!(worst < 2e-6 * 40.0, "worst {worst} dB");
        for v in [1.0f32, 10.0, 100.0, 1e-10] {
            let want = 10.0 * f64::from(v).log10();
            assert!((f64::from(ten_log10(v)) - want).abs() < 2e-5, "{v}");
        }
        assert_eq!(ten_log10(f32::INFINITY), f32::INFINITY);
        let mut a = array![f32::INFINITY, 1.0];
        power_to_db_inplace(
            &mut a,
            &DbConfig {
                top_db: None,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(a[0], f32::INFINITY);
    }

    /// Split across threads, every reference and clamp setting gives the sequential result.
    #[test]
    fn parallel_slices_equal_sequential() {
        let v: Vec<f32> = (0..100_003)
            .map(|i| ((i * 7919) % 10_007) as f32 * 1e-3 * (i % 5) as f32)
            .collect();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        for reference in [DbRef::Value(2.0), DbRef::Max] {
            for top_db in [None, Some(40.0)] {
                for amin in [1e-10, 1e-45] {
                    let cfg = DbConfig {
                        reference,
                        amin,
                        top_db,
                    };
                    let mut seq = v.clone();
                    power_to_db_slice(&mut seq, &cfg, false).unwrap();
                    let mut par = v.clone();
                    pool.install(|| power_to_db_slice(&mut par, &cfg, true))
                        .unwrap();
                    assert_eq!(par, seq, "{cfg:?}");
                    let mut arr = ndarray::Array1::from(v.clone());
                    power_to_db_inplace(&mut arr, &cfg).unwrap();
                    assert_eq!(arr.to_vec(), seq, "{cfg:?}");
                    // a strided view goes through the element-wise path
                    let mut every_other: Vec<f32> = v.iter().step_by(2).copied().collect();
                    power_to_db_slice(&mut every_other, &cfg, false).unwrap();
                    let mut arr = ndarray::Array1::from(v.clone());
                    let mut view = arr.slice_mut(ndarray::s![..;2]);
                    power_to_db_inplace(&mut view, &cfg).unwrap();
                    assert_eq!(view.to_vec(), every_other, "{cfg:?}");
                }
            }
        }
    }

    #[test]
    fn db_values_and_clamp() {
        let mut s = array![[1.0f32, 10.0, 100.0], [0.0, 1e-12, 1e-3]];
        power_to_db_inplace(&mut s, &DbConfig::default()).unwrap();
        assert_eq!(s[[0, 0]], 0.0);
        assert!((s[[0, 1]] - 10.0).abs() < 1e-5);
        assert!((s[[0, 2]] - 20.0).abs() < 1e-5);
        // zero and tiny powers hit the 80 dB floor below the maximum (20 dB)
        assert!((s[[1, 0]] + 60.0).abs() < 1e-5);
        assert!((s[[1, 1]] + 60.0).abs() < 1e-5);
        assert!((s[[1, 2]] + 30.0).abs() < 1e-4);
        let mut r = array![10.0f32, 1.0];
        let max_ref = DbConfig {
            reference: DbRef::Max,
            top_db: None,
            ..Default::default()
        };
        power_to_db_inplace(&mut r, &max_ref).unwrap();
        assert!(r[0].abs() < 1e-6 && (r[1] + 10.0).abs() < 1e-5);
        for bad in [
            DbConfig {
                amin: 0.0,
                ..Default::default()
            },
            DbConfig {
                top_db: Some(-1.0),
                ..Default::default()
            },
            DbConfig {
                reference: DbRef::Value(f32::NAN),
                ..Default::default()
            },
        ] {
            assert!(power_to_db_inplace(&mut r, &bad).is_err());
        }
    }

    #[test]
    fn amplitude_db_is_twenty_log10() {
        let mut a = array![1.0f32, 0.1, -0.01, 0.0];
        amplitude_to_db_inplace(
            &mut a,
            &DbConfig {
                top_db: None,
                ..DbConfig::amplitude()
            },
        )
        .unwrap();
        let want = [0.0, -20.0, -40.0, -100.0];
        for (x, w) in a.iter().zip(want) {
            assert!((x - w).abs() < 1e-4, "{a}");
        }
        let mut b = array![2.0f32, 1.0];
        amplitude_to_db_inplace(
            &mut b,
            &DbConfig {
                reference: DbRef::Max,
                ..DbConfig::amplitude()
            },
        )
        .unwrap();
        assert!(b[0].abs() < 1e-6 && (b[1] + 6.0206).abs() < 1e-3);
    }
}
