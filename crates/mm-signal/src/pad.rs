//! Edge padding for centred STFT frames, as `numpy.pad` computes it for the modes librosa's
//! `stft` accepts.

use serde::{Deserialize, Serialize};

/// How the signal is extended at both ends when frames are centred (`numpy.pad` modes).
///
/// librosa's `stft` rejects `wrap`, `maximum`, `mean`, `median` and `minimum`; numpy's `empty`
/// (uninitialised memory) is not offered because its output is undefined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PadMode {
    /// Zeros (librosa's default since 0.10).
    #[default]
    Constant,
    /// Repeat the edge sample.
    Edge,
    /// Linear ramp from the edge sample down to zero at the outer end (`end_values=0`).
    LinearRamp,
    /// Mirror without repeating the edge sample: `[3 2 | 1 2 3 | 2 1]`.
    Reflect,
    /// Mirror repeating the edge sample: `[2 1 | 1 2 3 | 3 2]`.
    Symmetric,
}

impl PadMode {
    /// All modes, for parsers and tests.
    pub const ALL: [PadMode; 5] = [
        PadMode::Constant,
        PadMode::Edge,
        PadMode::LinearRamp,
        PadMode::Reflect,
        PadMode::Symmetric,
    ];

    /// The name librosa and numpy use.
    pub fn name(self) -> &'static str {
        match self {
            PadMode::Constant => "constant",
            PadMode::Edge => "edge",
            PadMode::LinearRamp => "linear_ramp",
            PadMode::Reflect => "reflect",
            PadMode::Symmetric => "symmetric",
        }
    }

    /// Parses a librosa/numpy mode name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }
}

/// The sample at index `i` (may be negative or past the end) of `seg` padded with `left` samples
/// before and `right` after, as `numpy.pad(seg, (left, right), mode)` would hold it at position
/// `i + left`. `seg` must not be empty.
pub(crate) fn padded_at(seg: &[f32], i: isize, left: usize, right: usize, mode: PadMode) -> f32 {
    let n = seg.len() as isize;
    if (0..n).contains(&i) {
        return seg[i as usize];
    }
    match mode {
        PadMode::Constant => 0.0,
        PadMode::Edge => seg[i.clamp(0, n - 1) as usize],
        PadMode::LinearRamp => {
            // numpy: linspace(0, edge, width, endpoint=False), mirrored on the right
            let (edge, width, dist) = if i < 0 {
                (seg[0], left as f64, (-i) as f64)
            } else {
                (seg[(n - 1) as usize], right as f64, (i - n + 1) as f64)
            };
            (f64::from(edge) * (width - dist) / width) as f32
        }
        PadMode::Reflect => {
            if n == 1 {
                return seg[0];
            }
            let period = 2 * (n - 1);
            let m = i.rem_euclid(period);
            seg[(if m < n { m } else { period - m }) as usize]
        }
        PadMode::Symmetric => {
            let period = 2 * n;
            let m = i.rem_euclid(period);
            seg[(if m < n { m } else { period - 1 - m }) as usize]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pad(x: &[f32], p: usize, mode: PadMode) -> Vec<f32> {
        (-(p as isize)..(x.len() + p) as isize)
            .map(|i| padded_at(x, i, p, p, mode))
            .collect()
    }

    #[test]
    fn matches_numpy_pad_including_pads_longer_than_the_signal() {
        // numpy.pad(np.float32([1, 2, 3]), (7, 7), mode=...)
        let x = [1.0f32, 2.0, 3.0];
        let r: Vec<f32> = [2, 3, 2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2, 3, 2, 1, 2]
            .map(|v| v as f32)
            .to_vec();
        assert_eq!(pad(&x, 7, PadMode::Reflect), r);
        let s: Vec<f32> = [1, 1, 2, 3, 3, 2, 1, 1, 2, 3, 3, 2, 1, 1, 2, 3, 3]
            .map(|v| v as f32)
            .to_vec();
        assert_eq!(pad(&x, 7, PadMode::Symmetric), s);
        let e: Vec<f32> = [1, 1, 1, 1, 1, 1, 1, 1, 2, 3, 3, 3, 3, 3, 3, 3, 3]
            .map(|v| v as f32)
            .to_vec();
        assert_eq!(pad(&x, 7, PadMode::Edge), e);
        let lr = pad(&x, 7, PadMode::LinearRamp);
        let want = [
            0.0,
            0.142_857_15,
            0.285_714_3,
            0.428_571_43,
            0.571_428_6,
            0.714_285_73,
            0.857_142_87,
            1.0,
            2.0,
            3.0,
            2.571_428_5,
            2.142_857,
            1.714_285_7,
            1.285_714_3,
            0.857_142_87,
            0.428_571_43,
            0.0,
        ];
        for (a, b) in lr.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{lr:?}");
        }
        // numpy.pad(np.float32([1, 2]), (5, 5), mode="reflect")
        let two: Vec<f32> = [2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1]
            .map(|v| v as f32)
            .to_vec();
        assert_eq!(pad(&[1.0, 2.0], 5, PadMode::Reflect), two);
        assert_eq!(pad(&[4.0], 2, PadMode::Reflect), vec![4.0; 5]);
        assert_eq!(
            pad(&x, 2, PadMode::Constant),
            vec![0.0, 0.0, 1.0, 2.0, 3.0, 0.0, 0.0]
        );
    }

    #[test]
    fn names_round_trip() {
        for m in PadMode::ALL {
            assert_eq!(PadMode::from_name(m.name()), Some(m));
        }
        assert_eq!(PadMode::from_name("wrap"), None);
    }
}
