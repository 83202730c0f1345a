//! Synthetic speakers: faces whose attributes set the voice (Speech2Face), and a source-filter
//! synthesiser that speaks sub-word units (spoken captions for image-to-speech).
//!
//! A speaker has a face shape (round or long), a size (3 levels), a skin tone (4) and a
//! speaking rate (3). The voice follows the face: larger faces speak lower (`f0` from 250 Hz down
//! to 160 Hz), long faces have longer vocal tracts (formants scaled by 0.88 instead of 1.08),
//! and the rate sets the units per second. Units are a consonant onset (none, /s/, /t/) and a
//! vowel (/a e i o u/): 15 units; each word of a caption maps to a fixed 1-2 unit sequence.

use ndarray::Array3;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Number of sub-word units.
pub const UNITS: usize = 15;
const VOWEL_FORMANTS: [[f32; 3]; 5] = [
    [730.0, 1090.0, 2440.0], // a
    [530.0, 1840.0, 2480.0], // e
    [270.0, 2290.0, 3010.0], // i
    [570.0, 840.0, 2410.0],  // o
    [300.0, 870.0, 2240.0],  // u
];
const SKIN: [[u8; 3]; 4] = [
    [241, 214, 190],
    [224, 172, 133],
    [170, 118, 80],
    [105, 70, 48],
];

/// A speaker's face and voice attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Speaker {
    /// 0 round, 1 long.
    pub face_shape: usize,
    /// 0 small .. 2 large.
    pub size: usize,
    /// 0 light .. 3 dark.
    pub skin: usize,
    /// 0 slow .. 2 fast.
    pub rate: usize,
}

impl Speaker {
    /// A random speaker.
    pub fn random(rng: &mut ChaCha8Rng) -> Self {
        Self {
            face_shape: rng.random_range(0..2),
            size: rng.random_range(0..3),
            skin: rng.random_range(0..4),
            rate: rng.random_range(0..3),
        }
    }

    /// Attributes as stored: `[face_shape, size, skin, rate]`.
    pub fn attributes(&self) -> [i64; 4] {
        [self.face_shape, self.size, self.skin, self.rate].map(|v| v as i64)
    }

    /// Mean pitch in Hz.
    pub fn f0(&self) -> f32 {
        250.0 - 45.0 * self.size as f32
    }

    /// Formant scale (vocal tract length).
    pub fn tract(&self) -> f32 {
        (if self.face_shape == 1 { 0.88 } else { 1.08 }) * (1.0 - 0.04 * self.size as f32)
    }

    /// Units per second.
    pub fn units_per_s(&self) -> f32 {
        3.0 + self.rate as f32
    }

    /// The face, `[64, 64, 3]`.
    pub fn face(&self, rng: &mut ChaCha8Rng) -> Array3<u8> {
        let (cx, cy) = (32.0f32, 35.0f32);
        let a = 15.0 + 3.0 * self.size as f32 - 3.0 * self.face_shape as f32;
        let b = 17.0 + 2.0 * self.size as f32 + 5.0 * self.face_shape as f32;
        let skin = SKIN[self.skin];
        let hair =
            [[40u8, 30, 20], [120, 80, 30], [200, 170, 90], [20, 20, 20]][rng.random_range(0..4)];
        Array3::from_shape_fn((64, 64, 3), |(r, c, ch)| {
            let (x, y) = ((c as f32 - cx) / a, (r as f32 - cy) / b);
            let inside = x * x + y * y <= 1.0;
            let eye = [(-0.4f32, -0.2f32), (0.4, -0.2)]
                .iter()
                .any(|(ex, ey)| (x - ex).powi(2) * 60.0 + (y - ey).powi(2) * 80.0 <= 1.0);
            let mouth = (y - 0.45).abs() < 0.05 && x.abs() < 0.35;
            if inside && y < -0.65 {
                hair[ch]
            } else if inside && (eye || mouth) {
                30
            } else if inside {
                skin[ch]
            } else {
                200
            }
        })
    }
}

/// The fixed unit sequence (1-2 units) of a word.
pub fn word_units(word: &str) -> Vec<usize> {
    let h = word.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let first = (h % UNITS as u64) as usize;
    if word.len() > 3 {
        vec![first, ((h >> 17) % UNITS as u64) as usize]
    } else {
        vec![first]
    }
}

/// Speaks `units` with `speaker`'s voice into `n` samples at `sr` (cut when longer).
pub fn speak(
    units: &[usize],
    speaker: &Speaker,
    sr: u32,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<f32> {
    let sr_f = sr as f32;
    let per_unit = (sr_f / speaker.units_per_s()) as usize;
    let f0 = speaker.f0() * rng.random_range(0.95..1.05);
    let mut out = vec![0.0f32; n];
    let mut phase = 0.0f32;
    let mut t0 = 0usize;
    for &u in units {
        if t0 >= n {
            break;
        }
        let (consonant, vowel) = (u / 5, u % 5);
        let len = per_unit.min(n - t0);
        // consonant onset: 40 ms of noise (/s/ hissy, /t/ a short burst)
        let onset = match consonant {
            0 => 0,
            1 => (0.04 * sr_f) as usize,
            _ => (0.015 * sr_f) as usize,
        }
        .min(len);
        let mut prev = 0.0f32;
        for i in 0..onset {
            let w: f32 = rng.random_range(-1.0..1.0);
            // /s/: first difference (high-passed); /t/: plain burst
            out[t0 + i] = if consonant == 1 {
                0.15 * (w - prev)
            } else {
                0.25 * w
            };
            prev = w;
        }
        // voiced part: glottal pulse train through three formant resonators
        let mut src = vec![0.0f32; len - onset];
        for (i, s) in src.iter_mut().enumerate() {
            let t = (t0 + onset + i) as f32 / sr_f;
            let f = f0 * (1.0 + 0.02 * (std::f32::consts::TAU * 5.0 * t).sin());
            phase += f / sr_f;
            if phase >= 1.0 {
                phase -= 1.0;
                *s = 1.0;
            }
        }
        let mut y = src;
        for (k, &fm) in VOWEL_FORMANTS[vowel].iter().enumerate() {
            let freq = (fm * speaker.tract()).min(0.45 * sr_f);
            let bw = [80.0, 100.0, 140.0][k];
            let r = (-std::f32::consts::PI * bw / sr_f).exp();
            let (b1, b2) = (
                2.0 * r * (std::f32::consts::TAU * freq / sr_f).cos(),
                -r * r,
            );
            let (mut y1, mut y2) = (0.0f32, 0.0f32);
            for v in y.iter_mut() {
                let o = (1.0 - r) * *v + b1 * y1 + b2 * y2;
                y2 = y1;
                y1 = o;
                *v = o;
            }
        }
        let peak = y.iter().fold(1e-9f32, |m, v| m.max(v.abs()));
        let vl = y.len();
        for (i, v) in y.iter().enumerate() {
            // fade in and out over 10 ms
            let edge = ((i.min(vl - i) as f32) / (0.01 * sr_f)).min(1.0);
            out[t0 + onset + i] = 0.4 * edge * v / peak;
        }
        t0 += per_unit;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn larger_faces_speak_lower_and_long_faces_have_lower_formants() {
        let small = Speaker {
            face_shape: 0,
            size: 0,
            skin: 0,
            rate: 1,
        };
        let large = Speaker { size: 2, ..small };
        assert!(large.f0() < small.f0());
        let long = Speaker {
            face_shape: 1,
            ..small
        };
        assert!(long.tract() < small.tract());
        // the autocorrelation peak of a sustained /a/ sits at the pitch period
        let period = |s: &Speaker| {
            let y = speak(&[0], s, 8000, 2000, &mut ChaCha8Rng::seed_from_u64(1));
            let seg = &y[400..1200];
            (20..80)
                .max_by(|&a, &b| {
                    let ac = |l: usize| seg.iter().zip(&seg[l..]).map(|(p, q)| p * q).sum::<f32>();
                    ac(a).total_cmp(&ac(b))
                })
                .unwrap()
        };
        let (ps, pl) = (period(&small), period(&large));
        // 8000 / 250 Hz = 32 samples, 8000 / 160 Hz = 50 (within the +-5 % jitter)
        assert!((29..=35).contains(&ps), "{ps}");
        assert!((46..=54).contains(&pl), "{pl}");
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (fs, fl) = (
            small.face(&mut rng),
            Speaker {
                face_shape: 1,
                size: 2,
                ..small
            }
            .face(&mut rng),
        );
        let skin_px = |f: &Array3<u8>| {
            f.outer_iter()
                .flat_map(|r| r.outer_iter().map(|p| p.to_vec()).collect::<Vec<_>>())
                .filter(|p| p[..] == SKIN[0][..])
                .count()
        };
        assert!(
            skin_px(&fl) > skin_px(&fs),
            "a larger, longer face covers more pixels"
        );
    }

    #[test]
    fn words_map_to_fixed_units_and_speech_fills_its_length() {
        assert_eq!(word_units("circle"), word_units("circle"));
        assert_eq!(word_units("a").len(), 1);
        assert_eq!(word_units("purple").len(), 2);
        assert!(word_units("square").iter().all(|&u| u < UNITS));
        let s = Speaker {
            face_shape: 0,
            size: 1,
            skin: 2,
            rate: 2,
        };
        let y = speak(
            &[0, 6, 12, 3],
            &s,
            8000,
            8000,
            &mut ChaCha8Rng::seed_from_u64(0),
        );
        assert_eq!(y.len(), 8000);
        assert!(y.iter().all(|v| v.is_finite() && v.abs() <= 0.5));
        // 4 units at 5 per second: 0.8 s of sound, then silence
        assert!(y[..6000].iter().any(|v| v.abs() > 0.05));
        assert!(y[6500..].iter().all(|v| *v == 0.0));
    }
}
