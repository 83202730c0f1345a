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

/// The W1 stages (30 s at 22050 Hz; see `mm_benches::w1`), each on the previous stage's output.
fn w1_stages(c: &mut Criterion) {
    use mm_benches::{test_signal, w1};
    use mm_signal::{DbConfig, MelFilterbank, Mfcc, power_to_db_inplace};
    let y = test_signal(w1::SECONDS * w1::SAMPLE_RATE as usize, w1::SAMPLE_RATE, 0);
    let stft = Stft::new(&w1::stft()).unwrap();
    let bank = MelFilterbank::new(&w1::mel()).unwrap();
    let mel = MelSpectrogram::new(&w1::stft(), &w1::mel()).unwrap();
    let mfcc = Mfcc::new(&w1::stft(), &w1::mel(), &w1::mfcc()).unwrap();
    let spec = stft.process(&y).unwrap();
    let power = spec.mapv(|c| c.norm_sqr());
    let melspec = bank.apply(power.view()).unwrap();
    let mut db = melspec.clone();
    power_to_db_inplace(&mut db, &DbConfig::default()).unwrap();
    let mut g = c.benchmark_group("w1");
    g.sample_size(20);
    g.bench_function("stft", |b| b.iter(|| stft.process(black_box(&y)).unwrap()));
    g.bench_function("power", |b| b.iter(|| spec.mapv(|c| c.norm_sqr())));
    g.bench_function("mel_from_power", |b| {
        b.iter(|| bank.apply(power.view()).unwrap())
    });
    g.bench_function("fused_stft_power_mel", |b| {
        b.iter(|| mel.process(black_box(&y)).unwrap())
    });
    g.bench_function("power_to_db", |b| {
        b.iter_batched(
            || melspec.clone(),
            |mut m| power_to_db_inplace(&mut m, &DbConfig::default()).unwrap(),
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("mfcc_from_db", |b| {
        b.iter(|| mfcc.from_db_mel(db.view()).unwrap())
    });
    g.bench_function("chain", |b| b.iter(|| mfcc.process(black_box(&y)).unwrap()));
    g.finish();
}

criterion_group!(benches, stft, w1_stages);
criterion_main!(benches);
