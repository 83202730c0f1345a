//! `mm audio ...`

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum AudioCommand {
    /// Format, channels, sample rate, duration and peak level of an audio file.
    Info {
        /// The audio file (WAV, FLAC, Ogg Vorbis, MP3).
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
            // the encoding line comes from the WAV header when there is one
            let encoding = hound::WavReader::open(&input).ok().map(|r| {
                let spec = r.spec();
                format!("{:?} {}-bit WAV", spec.sample_format, spec.bits_per_sample)
            });
            let audio = mm_signal::read_audio(&input)
                .with_context(|| format!("reading {}", input.display()))?;
            let peak = audio
                .samples
                .iter()
                .filter(|s| s.is_finite())
                .fold(0f32, |m, s| m.max(s.abs()));
            // NaN and infinity would vanish from the peak (f32::max skips NaN): say so
            let bad = audio.samples.iter().filter(|s| !s.is_finite()).count();
            println!("file: {}", input.display());
            println!(
                "format: {}, {} channel(s), {} Hz",
                encoding.unwrap_or_else(|| "decoded by symphonia".into()),
                audio.channels(),
                audio.sample_rate
            );
            println!(
                "duration: {:.3} s ({} frames)",
                audio.duration_s(),
                audio.frames()
            );
            println!(
                "peak: {:.4} ({:.1} dBFS)",
                peak,
                20.0 * peak.max(1e-10).log10()
            );
            if let Some(((c, f), _)) = audio.samples.indexed_iter().find(|(_, s)| !s.is_finite()) {
                println!(
                    "warning: {bad} non-finite sample(s) (NaN or infinity), the first at frame \
                     {f} of channel {c}; features of this file are refused"
                );
            }
            Ok(())
        }
    }
}
