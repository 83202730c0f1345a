//! Decibel scaling, as `librosa.power_to_db` computes it.

use ndarray::{ArrayBase, DataMut, Dimension};

use crate::error::{Result, invalid};

/// `power_to_db` parameters (librosa's defaults: `ref=1.0, amin=1e-10, top_db=80`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DbConfig {
    /// The power that maps to 0 dB.
    pub reference: f32,
    /// Floor applied before the logarithm.
    pub amin: f32,
    /// If set, clamp to `max - top_db` (over the whole array).
    pub top_db: Option<f32>,
}

impl Default for DbConfig {
    fn default() -> Self {
        Self {
            reference: 1.0,
            amin: 1e-10,
            top_db: Some(80.0),
        }
    }
}

/// Converts a power spectrogram to decibels in place: `10 log10(max(amin, S)) - 10
/// log10(max(amin, ref))`, then clamps at `max - top_db`.
pub fn power_to_db_inplace<S, D>(spec: &mut ArrayBase<S, D>, cfg: &DbConfig) -> Result<()>
where
    S: DataMut<Elem = f32>,
    D: Dimension,
{
    if cfg.amin.is_nan() || cfg.amin <= 0.0 {
        return Err(invalid("amin", "must be positive"));
    }
    if let Some(t) = cfg.top_db
        && (t.is_nan() || t < 0.0)
    {
        return Err(invalid("top_db", "must be non-negative"));
    }
    let offset = 10.0 * cfg.reference.abs().max(cfg.amin).log10();
    spec.mapv_inplace(|s| 10.0 * s.max(cfg.amin).log10() - offset);
    if let Some(t) = cfg.top_db {
        let max = spec.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
        spec.mapv_inplace(|v| v.max(max - t));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

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
        let mut r = array![10.0f32];
        power_to_db_inplace(
            &mut r,
            &DbConfig {
                reference: 10.0,
                top_db: None,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(r[0].abs() < 1e-6);
        assert!(
            power_to_db_inplace(
                &mut r,
                &DbConfig {
                    amin: 0.0,
                    ..Default::default()
                }
            )
            .is_err()
        );
    }
}
