//! `mm data ...`

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use mm_data::{SoundClassesConfig, sound_classes};

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Write the synthetic sound-event classes as 16-bit WAV files (CLASS_INSTANCE.wav).
    Sounds {
        /// Output directory (created if missing).
        #[arg(long)]
        out: PathBuf,
        /// Number of classes.
        #[arg(long, default_value_t = 8)]
        classes: usize,
        /// Clips per class.
        #[arg(long, default_value_t = 2)]
        per_class: usize,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Sounds {
            out,
            classes,
            per_class,
            seed,
        } => {
            let cfg = SoundClassesConfig {
                n_classes: classes,
                clips_per_class: per_class,
                seed,
                ..Default::default()
            };
            let clips = sound_classes::generate(&cfg)?;
            std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
            let spec = hound::WavSpec {
                channels: 1,
                sample_rate: cfg.sample_rate_hz,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            };
            for (i, clip) in clips.iter().enumerate() {
                let path = out.join(format!("{:02}_{:03}.wav", clip.label, i % per_class));
                let tmp = path.with_extension("wav.tmp");
                let mut w = hound::WavWriter::create(&tmp, spec)
                    .with_context(|| format!("creating {}", tmp.display()))?;
                for &s in &clip.samples {
                    w.write_sample((s.clamp(-1.0, 1.0) * 32767.0).round() as i16)?;
                }
                w.finalize()?;
                std::fs::rename(&tmp, &path)
                    .with_context(|| format!("renaming to {}", path.display()))?;
            }
            for k in 0..classes {
                println!("class {k:2}: {}", sound_classes::class_name(&cfg, k));
            }
            println!("{} clips -> {}", clips.len(), out.display());
            Ok(())
        }
    }
}
