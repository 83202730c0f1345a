//! `mm audio ...`

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum AudioCommand {
    /// Format, channels, sample rate, duration and peak level of a WAV file.
    Info {
        /// The WAV file.
        input: PathBuf,
    },
    /// Compute a feature of an audio file with librosa's semantics and write it as `.npy`
    /// (float32, `[bins, frames]`; `[channels, bins, frames]` with `--mono false`).
    Features(Box<crate::features::FeaturesArgs>),
}

pub fn run(cmd: AudioCommand) -> Result<()> {
    match cmd {
        AudioCommand::Features(args) => crate::features::run(*args),
        AudioCommand::Info { input } => {
            let mut r = hound::WavReader::open(&input)
                .with_context(|| format!("reading {} as WAV", input.display()))?;
            let spec = r.spec();
            let frames = r.duration();
            let peak = match spec.sample_format {
                hound::SampleFormat::Float => r
                    .samples::<f32>()
                    .try_fold(0f32, |m, s| s.map(|s| m.max(s.abs())))?,
                hound::SampleFormat::Int => {
                    let full = (1i64 << (spec.bits_per_sample - 1)) as f32;
                    r.samples::<i32>().try_fold(0f32, |m, s| {
                        s.map(|s| m.max(s.unsigned_abs() as f32 / full))
                    })?
                }
            };
            println!("file: {}", input.display());
            println!(
                "format: {:?} {}-bit, {} channel(s), {} Hz",
                spec.sample_format, spec.bits_per_sample, spec.channels, spec.sample_rate
            );
            println!(
                "duration: {:.3} s ({frames} frames)",
                f64::from(frames) / f64::from(spec.sample_rate)
            );
            println!(
                "peak: {:.4} ({:.1} dBFS)",
                peak,
                20.0 * peak.max(1e-10).log10()
            );
            Ok(())
        }
    }
}
