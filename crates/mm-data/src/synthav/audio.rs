//! Object sounds and scene ambiences.

use ndarray::Array2;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::MAX_OBJECTS;
use super::scene::Scene;

/// Base pitch per colour (Hz); small objects sound an octave higher.
const COLOUR_HZ: [f32; 5] = [220.0, 277.2, 329.6, 392.0, 466.2];

/// `(sources [MAX_OBJECTS, n], ambience [n])`.
pub(super) fn render(
    scene: &Scene,
    sr: u32,
    n: usize,
    rng: &mut ChaCha8Rng,
) -> (Array2<f32>, Vec<f32>) {
    let sr = sr as f32;
    let mut sources = Array2::<f32>::zeros((MAX_OBJECTS, n));
    for (k, o) in scene.objects.iter().enumerate() {
        if !o.sounding {
            continue;
        }
        let f0 = COLOUR_HZ[o.colour]
            * if o.size == 0 { 2.0 } else { 1.0 }
            * rng.random_range(0.97..1.03);
        let gain = rng.random_range(0.2..0.35);
        let onset = rng.random_range(0..=n / 5);
        let phase: f32 = rng.random_range(0.0..std::f32::consts::TAU);
        // timbre by shape: circle = soft harmonic hum, square = odd harmonics (buzzy),
        // triangle = bell (inharmonic partials, struck)
        let partials: &[(f32, f32)] = match o.shape {
            0 => &[(1.0, 1.0), (2.0, 0.35), (3.0, 0.12)],
            1 => &[
                (1.0, 1.0),
                (3.0, 0.33),
                (5.0, 0.2),
                (7.0, 0.14),
                (9.0, 0.11),
            ],
            _ => &[(1.0, 1.0), (2.76, 0.6), (5.4, 0.35), (8.93, 0.2)],
        };
        let mut row = sources.row_mut(k);
        for i in onset..n {
            let t = (i - onset) as f32 / sr;
            let env = match o.shape {
                0 => (t * 40.0).min(1.0) * (0.8 + 0.2 * (std::f32::consts::TAU * 4.0 * t).sin()),
                1 => (t * 80.0).min(1.0),
                _ => (-t * 6.0).exp(),
            };
            let s: f32 = partials
                .iter()
                .map(|(m, a)| a * (std::f32::consts::TAU * f0 * m * t + phase * m).sin())
                .sum();
            row[i] = gain * env * s / 1.6;
        }
    }
    (sources, ambience(scene.scene_type, sr, n, rng))
}

fn ambience(kind: usize, sr: f32, n: usize, rng: &mut ChaCha8Rng) -> Vec<f32> {
    let white = Normal::new(0.0f32, 1.0).ok();
    let noise = |rng: &mut ChaCha8Rng| white.as_ref().map_or(0.0, |d| d.sample(rng));
    let mut out = vec![0.0f32; n];
    match kind {
        // beach: low-passed noise swelling like waves
        0 => {
            let mut lp = 0.0f32;
            let rate = rng.random_range(0.3..0.6);
            for (i, y) in out.iter_mut().enumerate() {
                lp += 0.05 * (noise(rng) - lp);
                let t = i as f32 / sr;
                *y = 0.25 * lp * (0.6 + 0.4 * (std::f32::consts::TAU * rate * t).sin());
            }
        }
        // forest: bird chirps (fast upward sweeps) over faint noise
        1 => {
            for y in out.iter_mut() {
                *y = 0.004 * noise(rng);
            }
            for _ in 0..rng.random_range(2..5) {
                let start = rng.random_range(0..n.saturating_sub(n / 10).max(1));
                let len = (0.08 * sr) as usize;
                let f_lo = rng.random_range(2500.0..3500.0);
                for j in 0..len.min(n - start) {
                    let t = j as f32 / sr;
                    let f = f_lo + 8000.0 * t;
                    out[start + j] += 0.06
                        * (std::f32::consts::TAU * f * t).sin()
                        * (std::f32::consts::PI * j as f32 / len as f32).sin();
                }
            }
        }
        // city: mains hum and rumble
        2 => {
            let mut lp = 0.0f32;
            for (i, y) in out.iter_mut().enumerate() {
                let t = i as f32 / sr;
                lp += 0.01 * (noise(rng) - lp);
                *y = 0.03 * (std::f32::consts::TAU * 60.0 * t).sin()
                    + 0.015 * (std::f32::consts::TAU * 120.0 * t).sin()
                    + 0.3 * lp;
            }
        }
        // night: crickets (4.5 kHz pulses at 15 Hz)
        _ => {
            let f = rng.random_range(4200.0..4800.0);
            for (i, y) in out.iter_mut().enumerate() {
                let t = i as f32 / sr;
                let gate = if (t * 15.0).fract() < 0.3 { 1.0 } else { 0.0 };
                *y = 0.03 * gate * (std::f32::consts::TAU * f * t).sin() + 0.002 * noise(rng);
            }
        }
    }
    out
}
