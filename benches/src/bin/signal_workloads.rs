//! Times the W1 and W2 workloads (see `mm_benches::w1`, `mm_benches::w2`) on an input `.npy`
//! and prints one JSON line, for `scripts/bench_signal.py`:
//!
//! ```text
//! signal-workloads --workload w1|w2 --input FILE.npy [--threads N] [--repeat R]
//! signal-workloads --workload w2 --device cuda|cpu [--repeat R]   # the tensor path (tch)
//! ```
//!
//! Without `--input`, a deterministic signal of the workload's size is generated. Every time is
//! the best of `R` runs, in milliseconds. `fft_floor_ms` is the cost of the forward real FFTs
//! alone on the same frames, pre-windowed, with the plan and buffers reused: what no STFT can
//! beat.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mm_benches::{test_signal, w1, w2};
use mm_signal::{
    DbConfig, LogMelSpectrogram, MelFilterbank, MelSpectrogram, Mfcc, Stft, batch_into,
    power_to_db_inplace,
};
use ndarray::{Array2, Array3, ArrayView2};
use ndarray_npy::read_npy;
use rayon::prelude::*;
use realfft::RealFftPlanner;
use serde_json::json;

struct Args {
    workload: String,
    device: Option<String>,
    input: Option<PathBuf>,
    threads: usize,
    repeat: usize,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        workload: String::new(),
        device: None,
        input: None,
        threads: 1,
        repeat: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--workload" => a.workload = val()?,
            "--device" => a.device = Some(val()?),
            "--input" => a.input = Some(PathBuf::from(val()?)),
            "--threads" => a.threads = val()?.parse()?,
            "--repeat" => a.repeat = val()?.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    if a.repeat == 0 || a.threads == 0 {
        bail!("--repeat and --threads must be positive");
    }
    Ok(a)
}

/// Best wall time of `repeat` runs of `f`, in ms, after warming up for at least 0.3 s (as
/// criterion does; on this VM a second core needs a few runs before it is scheduled promptly).
fn best_ms<T>(repeat: usize, mut f: impl FnMut() -> T) -> f64 {
    let warm = Instant::now();
    while warm.elapsed().as_secs_f64() < 0.3 {
        std::hint::black_box(f());
    }
    (0..repeat)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// The frames of `y` as the STFT sees them, windowed: `[frames, n_fft]`.
fn windowed_frames(stft: &Stft, y: &[f32]) -> Result<Array2<f32>> {
    let n_fft = stft.n_fft();
    let (hop, p) = (stft.hop_length(), n_fft / 2);
    let frames = stft.n_frames(y.len())?;
    let mut padded = vec![0.0f32; y.len() + 2 * p];
    padded[p..p + y.len()].copy_from_slice(y);
    Ok(Array2::from_shape_fn((frames, n_fft), |(t, i)| {
        padded[t * hop + i] * stft.window()[i]
    }))
}

/// Forward FFTs of pre-windowed frames, plan and buffers reused.
fn fft_only(frames: ArrayView2<'_, f32>, n_fft: usize) -> f32 {
    let fft = RealFftPlanner::<f32>::new().plan_fft_forward(n_fft);
    let (mut input, mut out, mut scratch) = (
        fft.make_input_vec(),
        fft.make_output_vec(),
        fft.make_scratch_vec(),
    );
    let mut acc = 0.0;
    for row in frames.rows() {
        input.copy_from_slice(row.as_slice().unwrap_or(&[]));
        let _ = fft.process_with_scratch(&mut input, &mut out, &mut scratch);
        acc += out[1].re;
    }
    acc
}

fn run_w1(y: &[f32], repeat: usize) -> Result<serde_json::Value> {
    let stft = Stft::new(&w1::stft())?;
    let bank = MelFilterbank::new(&w1::mel())?;
    let mel = MelSpectrogram::new(&w1::stft(), &w1::mel())?;
    let mfcc = Mfcc::new(&w1::stft(), &w1::mel(), &w1::mfcc())?;
    let spec = stft.process(y)?;
    let power = spec.mapv(|c| c.norm_sqr());
    let melspec = bank.apply(power.view())?;
    let mut db = melspec.clone();
    power_to_db_inplace(&mut db, &DbConfig::default())?;
    let t_stft = best_ms(repeat, || stft.process(y));
    let t_power = best_ms(repeat, || spec.mapv(|c| c.norm_sqr()));
    let t_mel = best_ms(repeat, || bank.apply(power.view()));
    let t_db = best_ms(repeat, || {
        let mut m = melspec.clone();
        power_to_db_inplace(&mut m, &DbConfig::default()).map(|_| m)
    });
    let t_mfcc = best_ms(repeat, || mfcc.from_db_mel(db.view()));
    let t_fused = best_ms(repeat, || mel.process(y));
    let mut mel_out = Array2::zeros((mel.n_mels(), stft.n_frames(y.len())?));
    let mut mel_scratch = mel.make_scratch();
    let t_fused_into = best_ms(repeat, || {
        mel.process_into(y, mel_out.view_mut(), &mut mel_scratch)
    });
    let mut spec_buf = vec![0.0f32; stft.n_bins()];
    let mut scratch = stft.make_scratch();
    let t_power_only = best_ms(repeat, || {
        stft.for_each_frame(y, &mut scratch, |_, s| {
            for (d, c) in spec_buf.iter_mut().zip(s) {
                *d = c.norm_sqr();
            }
        })
    });
    let t_frames = best_ms(repeat, || {
        let mut acc = 0.0f32;
        let _ = stft.for_each_frame(y, &mut scratch, |_, s| acc += s[1].re);
        acc
    });
    // the chain as a user runs it: fused STFT-power-mel (frames split across the threads),
    // dB, DCT
    let t_chain = best_ms(repeat, || mfcc.process_par(y));
    let frames = windowed_frames(&stft, y)?;
    let t_floor = best_ms(repeat, || fft_only(frames.view(), stft.n_fft()));
    Ok(json!({
        "workload": "w1",
        "threads": rayon::current_num_threads(),
        "repeat": repeat,
        "samples": y.len(),
        "stages_ms": {"stft": t_stft, "power": t_power, "mel": t_mel, "db": t_db, "mfcc": t_mfcc, "fused_stft_power_mel": t_fused, "stft_frames_only": t_frames, "fused_into_preallocated": t_fused_into, "stft_power_contiguous": t_power_only},
        "chain_ms": t_chain,
        "fft_floor_ms": t_floor,
    }))
}

fn run_w2(clips: ArrayView2<'_, f32>, repeat: usize) -> Result<serde_json::Value> {
    let log_mel = LogMelSpectrogram {
        mel: MelSpectrogram::new(&w2::stft(), &w2::mel())?,
        db: DbConfig::default(),
    };
    let stft = Stft::new(&w2::stft())?;
    let frames = stft.n_frames(clips.ncols())?;
    let mut out = Array3::zeros((clips.nrows(), log_mel.mel.n_mels(), frames));
    let t_total = best_ms(repeat, || batch_into(&log_mel, clips, out.view_mut()));
    batch_into(&log_mel, clips, out.view_mut())?;
    let windowed: Vec<Array2<f32>> = clips
        .rows()
        .into_iter()
        .map(|r| windowed_frames(&stft, r.as_slice().unwrap_or(&[])))
        .collect::<Result<_>>()?;
    let t_floor = best_ms(repeat, || {
        windowed
            .par_iter()
            .map(|f| fft_only(f.view(), stft.n_fft()))
            .sum::<f32>()
    });
    Ok(json!({
        "workload": "w2",
        "threads": rayon::current_num_threads(),
        "repeat": repeat,
        "clips": clips.nrows(),
        "samples_per_clip": clips.ncols(),
        "total_ms": t_total,
        "clips_per_s": clips.nrows() as f64 / (t_total / 1e3),
        "fft_floor_ms": t_floor,
    }))
}

/// W2 on the tensor path: the batch already on `device`, log-mel per clip, timed with the
/// device synchronised.
fn run_w2_tensor(
    clips: ArrayView2<'_, f32>,
    device: tch::Device,
    repeat: usize,
) -> Result<serde_json::Value> {
    use mm_signal::tensor::TensorFeatures;
    let tf = TensorFeatures::new(&w2::stft(), device)?.with_mel(&w2::mel())?;
    let flat: Vec<f32> = clips.iter().copied().collect();
    let x = tch::Tensor::from_slice(&flat)
        .view([clips.nrows() as i64, clips.ncols() as i64])
        .to(device);
    let sync = || {
        if let tch::Device::Cuda(i) = device {
            tch::Cuda::synchronize(i as i64);
        }
    };
    let mut err = None;
    let t_total = best_ms(repeat, || {
        let r = tf.log_mel(&x, &DbConfig::default());
        sync();
        if let Err(e) = r {
            err = Some(e);
        }
    });
    if let Some(e) = err {
        return Err(e.into());
    }
    Ok(json!({
        "workload": "w2",
        "device": format!("{device:?}"),
        "repeat": repeat,
        "clips": clips.nrows(),
        "samples_per_clip": clips.ncols(),
        "total_ms": t_total,
        "clips_per_s": clips.nrows() as f64 / (t_total / 1e3),
    }))
}

fn main() -> Result<()> {
    let a = parse()?;
    rayon::ThreadPoolBuilder::new()
        .num_threads(a.threads)
        .build_global()
        .context("configuring rayon")?;
    let result = match a.workload.as_str() {
        "w1" => {
            let y: Vec<f32> = match &a.input {
                Some(p) => read_npy::<_, ndarray::Array1<f32>>(p)
                    .with_context(|| format!("reading {}", p.display()))?
                    .to_vec(),
                None => test_signal(w1::SECONDS * w1::SAMPLE_RATE as usize, w1::SAMPLE_RATE, 0),
            };
            run_w1(&y, a.repeat)?
        }
        "w2" => {
            let clips: Array2<f32> = match &a.input {
                Some(p) => read_npy(p).with_context(|| format!("reading {}", p.display()))?,
                None => {
                    let len = w2::SECONDS * w2::SAMPLE_RATE as usize;
                    let mut c = Array2::zeros((w2::CLIPS, len));
                    for (i, mut row) in c.rows_mut().into_iter().enumerate() {
                        row.assign(&ndarray::Array1::from(test_signal(
                            len,
                            w2::SAMPLE_RATE,
                            i as u64,
                        )));
                    }
                    c
                }
            };
            match a.device.as_deref() {
                None => run_w2(clips.view(), a.repeat)?,
                Some("cpu") => run_w2_tensor(clips.view(), tch::Device::Cpu, a.repeat)?,
                Some("cuda") => {
                    if !tch::Cuda::is_available() {
                        bail!("--device cuda: CUDA is not available");
                    }
                    run_w2_tensor(clips.view(), tch::Device::Cuda(0), a.repeat)?
                }
                Some(d) => bail!("unknown device `{d}` (cpu or cuda)"),
            }
        }
        w => bail!("unknown workload `{w}` (w1 or w2)"),
    };
    println!("{result}");
    Ok(())
}
