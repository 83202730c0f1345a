//! STFT and mel spectrogram throughput, with a naive DFT beside the FFT path.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mm_signal::{MelConfig, MelSpectrogram, Stft, StftConfig};
use std::hint::black_box;

fn signal(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i as f32) * 0.01).sin() + 0.1 * ((i * 7919 % 101) as f32 / 101.0))
        .collect()
}

fn naive_power_frame(frame: &[f32], out: &mut [f32]) {
    let n = frame.len();
    for (k, o) in out.iter_mut().enumerate() {
        let (mut re, mut im) = (0.0f32, 0.0f32);
        for (t, &x) in frame.iter().enumerate() {
            let a = -2.0 * std::f32::consts::PI * ((k * t) % n) as f32 / n as f32;
            re += x * a.cos();
            im += x * a.sin();
        }
        *o = re * re + im * im;
    }
}

fn stft(c: &mut Criterion) {
    let mut g = c.benchmark_group("stft_one_frame");
    for n_fft in [256usize, 512] {
        let x = signal(n_fft);
        let cfg = StftConfig {
            n_fft,
            hop_length: Some(n_fft),
            center: false,
            ..Default::default()
        };
        let fast = Stft::new(&cfg).unwrap();
        g.bench_with_input(BenchmarkId::new("fast", n_fft), &x, |b, x| {
            b.iter(|| fast.power(black_box(x)).unwrap())
        });
        let mut out = vec![0.0; n_fft / 2 + 1];
        g.bench_with_input(BenchmarkId::new("naive", n_fft), &x, |b, x| {
            b.iter(|| naive_power_frame(black_box(x), &mut out))
        });
    }
    g.finish();

    let mut g = c.benchmark_group("log_mel_1s_16k");
    let x = signal(16_000);
    let mel = MelSpectrogram::new(
        &StftConfig {
            n_fft: 512,
            hop_length: Some(160),
            ..Default::default()
        },
        &MelConfig {
            sample_rate_hz: 16_000.0,
            n_fft: 512,
            n_mels: 40,
            ..Default::default()
        },
    )
    .unwrap();
    g.bench_function("mel_spectrogram", |b| {
        b.iter(|| mel.process(black_box(&x)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, stft);
criterion_main!(benches);
