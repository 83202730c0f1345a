//! Analysis windows, as `scipy.signal.get_window` (and so librosa) computes them.

use serde::{Deserialize, Serialize};

/// The shape of an analysis window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WindowKind {
    /// Hann (raised cosine), `0.5 - 0.5 cos`.
    #[default]
    Hann,
    /// Hamming, `0.54 - 0.46 cos`.
    Hamming,
    /// Blackman, `0.42 - 0.5 cos + 0.08 cos 2`.
    Blackman,
    /// Rectangular (all ones), librosa's `"boxcar"`.
    Rectangular,
}

/// Whether a window is periodic (for spectral analysis, librosa's `fftbins=True`, the default
/// of every STFT) or symmetric (for filter design).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Symmetry {
    /// `len` points of a `len + 1`-point symmetric window (the last point dropped).
    #[default]
    Periodic,
    /// Symmetric about its centre; first and last points equal.
    Symmetric,
}

impl WindowKind {
    /// The window's `len` coefficients, in `f64` as scipy computes them.
    ///
    /// ```
    /// use mm_signal::{WindowKind, Symmetry};
    /// let w = WindowKind::Hann.coefficients(4, Symmetry::Periodic);
    /// for (a, b) in w.iter().zip([0.0, 0.5, 1.0, 0.5]) {
    ///     assert!((a - b).abs() < 1e-12);
    /// }
    /// ```
    pub fn coefficients(self, len: usize, symmetry: Symmetry) -> Vec<f64> {
        if len == 0 {
            return Vec::new();
        }
        if len == 1 {
            return vec![1.0];
        }
        let n = match symmetry {
            Symmetry::Periodic => len + 1,
            Symmetry::Symmetric => len,
        };
        let cosine_sum = |a: &[f64]| -> Vec<f64> {
            let step = 2.0 * std::f64::consts::PI / (n - 1) as f64;
            (0..len)
                .map(|i| {
                    let x = step * i as f64;
                    a.iter()
                        .enumerate()
                        .map(|(k, &ak)| {
                            let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
                            sign * ak * (k as f64 * x).cos()
                        })
                        .sum()
                })
                .collect()
        };
        match self {
            WindowKind::Hann => cosine_sum(&[0.5, 0.5]),
            WindowKind::Hamming => cosine_sum(&[0.54, 0.46]),
            WindowKind::Blackman => cosine_sum(&[0.42, 0.50, 0.08]),
            WindowKind::Rectangular => vec![1.0; len],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_windows_are_symmetric_and_periodic_ones_drop_the_last_point() {
        for kind in [WindowKind::Hann, WindowKind::Hamming, WindowKind::Blackman] {
            for len in [5usize, 8, 33] {
                let s = kind.coefficients(len, Symmetry::Symmetric);
                for i in 0..len {
                    assert!((s[i] - s[len - 1 - i]).abs() < 1e-12);
                }
                let p = kind.coefficients(len, Symmetry::Periodic);
                let s1 = kind.coefficients(len + 1, Symmetry::Symmetric);
                for i in 0..len {
                    assert!((p[i] - s1[i]).abs() < 1e-12);
                }
            }
        }
    }

    #[test]
    fn known_values() {
        // scipy.signal.get_window('hamming', 4, fftbins=True)
        let h = WindowKind::Hamming.coefficients(4, Symmetry::Periodic);
        let want = [0.08, 0.54, 1.0, 0.54];
        for (a, b) in h.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{h:?}");
        }
        // scipy.signal.get_window('blackman', 3, fftbins=False) = [0, 1, 0] (up to rounding)
        let b = WindowKind::Blackman.coefficients(3, Symmetry::Symmetric);
        assert!(b[0].abs() < 1e-12 && (b[1] - 1.0).abs() < 1e-12 && b[2].abs() < 1e-12);
        assert_eq!(
            WindowKind::Rectangular.coefficients(3, Symmetry::Periodic),
            vec![1.0; 3]
        );
    }
}
