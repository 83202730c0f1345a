//! Learning-rate schedules: a factor of the base rate for each step, with linear warm-up.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The shape of the schedule after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    /// The base rate throughout.
    #[default]
    Constant,
    /// Multiplied by `gamma` every `step_size` steps (PyTorch's `StepLR`, counted in steps).
    Step,
    /// Cosine annealing from the base rate to `min_factor` times it at the last step
    /// (PyTorch's `CosineAnnealingLR` with `T_max` = the steps after warm-up).
    Cosine,
}

/// The `[train.schedule]` table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// The shape.
    #[serde(default)]
    pub kind: ScheduleKind,
    /// Steps of linear warm-up from `base / warmup_steps` to the base rate.
    #[serde(default)]
    pub warmup_steps: usize,
    /// [`ScheduleKind::Step`]: steps between decays.
    #[serde(default)]
    pub step_size: usize,
    /// [`ScheduleKind::Step`]: the decay factor.
    #[serde(default = "default_gamma")]
    pub gamma: f64,
    /// [`ScheduleKind::Cosine`]: the final rate as a fraction of the base rate.
    #[serde(default)]
    pub min_factor: f64,
}

fn default_gamma() -> f64 {
    0.1
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            kind: ScheduleKind::Constant,
            warmup_steps: 0,
            step_size: 0,
            gamma: default_gamma(),
            min_factor: 0.0,
        }
    }
}

impl ScheduleConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |reason: &str| {
            Err(Error::InvalidParameter {
                name: "train.schedule",
                reason: reason.into(),
            })
        };
        if self.kind == ScheduleKind::Step
            && (self.step_size == 0 || self.gamma.is_nan() || self.gamma <= 0.0)
        {
            return bad("kind = \"step\" needs step_size > 0 and gamma > 0");
        }
        if !(0.0..=1.0).contains(&self.min_factor) {
            return bad("min_factor must be in [0, 1]");
        }
        Ok(())
    }

    /// The factor of the base rate for 0-based `step` of `total` steps.
    pub fn factor(&self, step: usize, total: usize) -> f64 {
        let warm = if step < self.warmup_steps {
            (step + 1) as f64 / self.warmup_steps as f64
        } else {
            1.0
        };
        let after = step.saturating_sub(self.warmup_steps);
        let base = match self.kind {
            ScheduleKind::Constant => 1.0,
            ScheduleKind::Step => self.gamma.powi((after / self.step_size.max(1)) as i32),
            ScheduleKind::Cosine => {
                let span = total
                    .saturating_sub(self.warmup_steps)
                    .saturating_sub(1)
                    .max(1);
                let t = (after as f64 / span as f64).min(1.0);
                self.min_factor
                    + (1.0 - self.min_factor) * 0.5 * (1.0 + (std::f64::consts::PI * t).cos())
            }
        };
        warm * base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let c = ScheduleConfig::default();
        assert_eq!(c.factor(0, 10), 1.0);
        let w = ScheduleConfig {
            warmup_steps: 4,
            ..Default::default()
        };
        assert_eq!(
            (0..6).map(|s| w.factor(s, 10)).collect::<Vec<_>>(),
            [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
        );
        let s = ScheduleConfig {
            kind: ScheduleKind::Step,
            step_size: 3,
            gamma: 0.5,
            ..Default::default()
        };
        assert_eq!(
            (0..7).map(|k| s.factor(k, 10)).collect::<Vec<_>>(),
            [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25]
        );
        let cos = ScheduleConfig {
            kind: ScheduleKind::Cosine,
            min_factor: 0.1,
            ..Default::default()
        };
        assert_eq!(cos.factor(0, 11), 1.0);
        assert!((cos.factor(5, 11) - 0.55).abs() < 1e-12);
        assert!((cos.factor(10, 11) - 0.1).abs() < 1e-12);
        assert!((1..11).all(|k| cos.factor(k, 11) < cos.factor(k - 1, 11)));
        let bad = ScheduleConfig {
            kind: ScheduleKind::Step,
            ..Default::default()
        };
        assert!(bad.validate().is_err());
    }
}
