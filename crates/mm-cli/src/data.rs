//! `mm data ...`

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use mm_data::{SoundClassesConfig, sound_classes};

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate the SynthAV audio-visual-text data set into an HDF5 file.
    Synthav {
        /// Output file.
        #[arg(long, default_value = "data/synthav.h5")]
        out: PathBuf,
        /// Number of scenes.
        #[arg(long, default_value_t = 1000)]
        scenes: usize,
        /// Seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Convert a downloaded data set into an mm HDF5 file.
    #[command(subcommand)]
    Convert(ConvertCommand),
    /// Summarise an mm HDF5 data set: source, fields, splits.
    Info {
        /// The file.
        file: PathBuf,
    },
    /// Write one sample's image (PNG), audio (WAV), spectrogram (PNG) and text for a person to
    /// look at and listen to.
    Show {
        /// The file.
        file: PathBuf,
        /// Sample index.
        #[arg(long, default_value_t = 0)]
        index: usize,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
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

#[derive(Debug, Subcommand)]
pub enum ConvertCommand {
    /// ESC-50: `meta/esc50.csv` and `audio/*.wav` under `--raw`.
    Esc50 {
        /// The unpacked ESC-50 directory.
        #[arg(long)]
        raw: PathBuf,
        /// Output file.
        #[arg(long, default_value = "data/esc50.h5")]
        out: PathBuf,
        /// Output sample rate.
        #[arg(long, default_value_t = 16_000)]
        sample_rate: u32,
        /// Clip length in seconds (padded or cut).
        #[arg(long, default_value_t = 5.0)]
        seconds: f32,
        /// Also store log-mel features with this many bands.
        #[arg(long)]
        log_mel: Option<usize>,
        /// Skip and report bad entries instead of stopping.
        #[arg(long)]
        skip_bad: bool,
    },
    /// Flickr8k: images plus `dataset_flickr8k.json` or `Flickr8k.token.txt` and the split lists.
    Flickr8k(CaptionArgs),
    /// COCO captions with Karpathy's split: `dataset_coco.json`, `train2014/`, `val2014/`.
    Coco(CaptionArgs),
    /// VQA v2: questions and annotations JSON, `train2014/`, `val2014/` (min-count: question words).
    Vqa(CaptionArgs),
    /// Audio-visual folders: `<raw>/<clip>/frames/*.jpg|png` and `<raw>/<clip>/audio.wav`.
    AvFolders {
        /// The directory of clip folders.
        #[arg(long)]
        raw: PathBuf,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Output image side.
        #[arg(long, default_value_t = 224)]
        image_size: u32,
        /// Output sample rate.
        #[arg(long, default_value_t = 16_000)]
        sample_rate: u32,
        /// Clip length in seconds (padded or cut).
        #[arg(long, default_value_t = 10.0)]
        seconds: f32,
        /// Seed of the train/val/test shuffle.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Also store log-mel features with this many bands.
        #[arg(long)]
        log_mel: Option<usize>,
        /// Skip and report bad clips instead of stopping.
        #[arg(long)]
        skip_bad: bool,
    },
}

/// Arguments of the image-caption converters.
#[derive(Debug, clap::Args)]
pub struct CaptionArgs {
    /// The unpacked data set directory.
    #[arg(long)]
    raw: PathBuf,
    /// Output file.
    #[arg(long)]
    out: PathBuf,
    /// Output image side (shorter side resized, centre crop).
    #[arg(long, default_value_t = 224)]
    image_size: u32,
    /// Words seen fewer times in the training captions become `<unk>`.
    #[arg(long, default_value_t = 5)]
    min_count: u64,
    /// Skip and report bad entries instead of stopping.
    #[arg(long)]
    skip_bad: bool,
}

impl CaptionArgs {
    fn config(&self) -> mm_data::convert::flickr8k::Flickr8kConfig {
        mm_data::convert::flickr8k::Flickr8kConfig {
            image_size: self.image_size,
            min_count: self.min_count,
            skip_bad: self.skip_bad,
        }
    }
}

/// Runs a converter with a progress bar and prints its report.
fn convert_with(
    out: &std::path::Path,
    what: &str,
    f: impl FnOnce(&mut dyn FnMut(usize, usize)) -> mm_data::Result<mm_data::convert::Report>,
) -> Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let bar = indicatif::ProgressBar::new(0);
    let rep = f(&mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .with_context(|| format!("converting {what}"))?;
    bar.finish_and_clear();
    println!("{} samples -> {}", rep.written, rep.out.display());
    if !rep.skipped.is_empty() {
        println!("skipped {} bad entries:", rep.skipped.len());
        for (p, why) in &rep.skipped {
            println!("  {}: {why}", p.display());
        }
    }
    Ok(())
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Convert(ConvertCommand::Esc50 {
            raw,
            out,
            sample_rate,
            seconds,
            log_mel,
            skip_bad,
        }) => {
            let cfg = mm_data::convert::esc50::Esc50Config {
                sample_rate,
                seconds,
                log_mel,
                skip_bad,
            };
            convert_with(&out, "ESC-50", |p| {
                mm_data::convert::esc50::convert(&raw, &out, &cfg, p)
            })
        }
        DataCommand::Convert(ConvertCommand::Flickr8k(a)) => {
            let cfg = a.config();
            convert_with(&a.out, "Flickr8k", |p| {
                mm_data::convert::flickr8k::convert(&a.raw, &a.out, &cfg, p)
            })
        }
        DataCommand::Convert(ConvertCommand::Coco(a)) => {
            let cfg = a.config();
            convert_with(&a.out, "COCO", |p| {
                mm_data::convert::flickr8k::convert_coco(&a.raw, &a.out, &cfg, p)
            })
        }
        DataCommand::Convert(ConvertCommand::Vqa(a)) => {
            let cfg = a.config();
            convert_with(&a.out, "VQA v2", |p| {
                mm_data::convert::vqa::convert(&a.raw, &a.out, &cfg, p)
            })
        }
        DataCommand::Convert(ConvertCommand::AvFolders {
            raw,
            out,
            image_size,
            sample_rate,
            seconds,
            seed,
            log_mel,
            skip_bad,
        }) => {
            let cfg = mm_data::convert::av_folders::AvFoldersConfig {
                image_size,
                sample_rate,
                seconds,
                seed,
                log_mel,
                skip_bad,
            };
            convert_with(&out, "audio-visual folders", |p| {
                mm_data::convert::av_folders::convert(&raw, &out, &cfg, p)
            })
        }
        DataCommand::Synthav { out, scenes, seed } => synthav(&out, scenes, seed),
        DataCommand::Info { file } => info(&file),
        DataCommand::Show { file, index, out } => show(&file, index, &out),
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
            let n_clips = clips.len();
            for (i, clip) in clips.into_iter().enumerate() {
                let path = out.join(format!("{:02}_{:03}.wav", clip.label, i % per_class));
                let audio = mm_signal::Audio {
                    samples: ndarray::Array2::from_shape_vec(
                        (1, clip.samples.len()),
                        clip.samples,
                    )?,
                    sample_rate: cfg.sample_rate_hz,
                };
                mm_signal::write_wav(&path, &audio, mm_signal::WavEncoding::Pcm16)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            for k in 0..classes {
                println!("class {k:2}: {}", sound_classes::class_name(&cfg, k));
            }
            println!("{n_clips} clips -> {}", out.display());
            Ok(())
        }
    }
}

fn synthav(out: &std::path::Path, scenes: usize, seed: u64) -> Result<()> {
    use mm_data::synthav::{self, SynthAvConfig};
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let cfg = SynthAvConfig {
        scenes,
        seed,
        ..Default::default()
    };
    let bar = indicatif::ProgressBar::new(scenes as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} SynthAV [{bar:30}] {pos}/{len} scenes ({per_sec}, eta {eta})",
        )?
        .progress_chars("=> "),
    );
    let t = std::time::Instant::now();
    let n = synthav::write(out, &cfg, &mut |done, _| bar.set_position(done as u64))
        .with_context(|| format!("writing {}", out.display()))?;
    bar.finish_and_clear();
    let mb = std::fs::metadata(out)
        .map(|m| m.len() as f64 / 1e6)
        .unwrap_or(0.0);
    println!(
        "{n} scenes -> {} ({mb:.0} MB) in {:.1} s",
        out.display(),
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn info(file: &std::path::Path) -> Result<()> {
    let r = mm_data::Reader::open(file).with_context(|| format!("opening {}", file.display()))?;
    let m = r.meta();
    println!("file: {}", file.display());
    println!("source: {} {} ({} samples)", m.source, m.version, r.len());
    println!("fields:");
    for f in &r.schema().fixed {
        println!(
            "  {:<16} {:?} {:?}{}",
            f.name,
            f.dtype,
            f.shape,
            if f.compress { " (deflate)" } else { "" }
        );
    }
    for name in &r.schema().ragged {
        println!("  {name:<16} ragged int32 sequences");
    }
    println!("splits:");
    for s in r.split_names()? {
        println!("  {s:<8} {}", r.split(&s)?.len());
    }
    if let Some(cfg) = m.params.get("config") {
        println!("parameters: {cfg}");
    }
    Ok(())
}

fn show(file: &std::path::Path, index: usize, out: &std::path::Path) -> Result<()> {
    use mm_data::Value;
    let r = mm_data::Reader::open(file).with_context(|| format!("opening {}", file.display()))?;
    let s = r.get(index)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    for field in ["image", "face"] {
        if let Some(Value::U8(img)) = s.fixed.get(field)
            && let &[h, w, 3] = img.shape()
        {
            let raw: Vec<u8> = img.iter().copied().collect();
            let im = image::RgbImage::from_raw(w as u32, h as u32, raw)
                .with_context(|| format!("{field} buffer size"))?;
            // 4x larger so that a person can see it
            let big = image::imageops::resize(
                &im,
                4 * w as u32,
                4 * h as u32,
                image::imageops::FilterType::Nearest,
            );
            let p = out.join(format!("{index}_{field}.png"));
            mm_tasks::plot::save_png_atomic(&big, &p)?;
            written.push(p);
        }
    }
    let speech_rate = r.meta().params["config"]["speech_rate"]
        .as_u64()
        .unwrap_or(8_000) as u32;
    for field in ["voice", "spoken_caption"] {
        if let Some(Value::F32(a)) = s.fixed.get(field) {
            let y: Vec<f32> = a.iter().copied().collect();
            let p = out.join(format!("{index}_{field}.wav"));
            mm_signal::write_wav(
                &p,
                &mm_signal::Audio {
                    samples: ndarray::Array2::from_shape_vec((1, y.len()), y)?,
                    sample_rate: speech_rate,
                },
                mm_signal::WavEncoding::Pcm16,
            )?;
            written.push(p);
        }
    }
    let rate = r.meta().params["config"]["sample_rate"]
        .as_u64()
        .unwrap_or(16_000) as u32;
    if let Some(Value::F32(a)) = s.fixed.get("audio") {
        let y: Vec<f32> = a.iter().copied().collect();
        let n = y.len();
        let p = out.join(format!("{index}_audio.wav"));
        mm_signal::write_wav(
            &p,
            &mm_signal::Audio {
                samples: ndarray::Array2::from_shape_vec((1, n), y.clone())?,
                sample_rate: rate,
            },
            mm_signal::WavEncoding::Pcm16,
        )?;
        written.push(p);
        let mel = mm_signal::MelSpectrogram::new(
            &mm_signal::StftConfig {
                n_fft: 512,
                hop_length: Some(128),
                ..Default::default()
            },
            &mm_signal::MelConfig {
                sample_rate_hz: f64::from(rate),
                n_fft: 512,
                n_mels: 64,
                ..Default::default()
            },
        )?;
        let mut m = mel.process(&y)?;
        mm_signal::power_to_db_inplace(&mut m, &mm_signal::DbConfig::default())?;
        let p = out.join(format!("{index}_spectrogram.png"));
        let spec = mm_tasks::plot::SpectrogramSpec {
            title: format!("sample {index}: log-mel"),
            panels: vec![(String::new(), m.view())],
            seconds_per_frame: 128.0 / f64::from(rate),
            rows: ("mel band".into(), 64.0),
            value_label: "dB".into(),
            height: 260,
        };
        mm_tasks::plot::save_png_atomic(&mm_tasks::plot::spectrogram_chart(&spec)?, &p)?;
        written.push(p);
    }
    // `/meta` `params.decode` maps a ragged field to the `params` list that names its ids
    // (e.g. captions -> vocabulary); other fields print their ids
    let params = &r.meta().params;
    let table = |field: &str| -> Option<Vec<String>> {
        let list = params["decode"][field].as_str()?;
        params[list].as_array().map(|a| {
            a.iter()
                .map(|w| w.as_str().map_or_else(|| w.to_string(), str::to_owned))
                .collect()
        })
    };
    let mut text = String::new();
    for (name, items) in &s.ragged {
        let names = table(name);
        for it in items {
            let line = it
                .iter()
                .map(|&i| {
                    names
                        .as_ref()
                        .and_then(|n| n.get(i as usize).cloned())
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join(" ");
            text.push_str(&format!("{name}: {line}\n"));
        }
    }
    for (name, v) in &s.fixed {
        if let Value::I64(a) = v {
            text.push_str(&format!("{name}: {a}\n"));
        }
    }
    let p = out.join(format!("{index}_text.txt"));
    mm_core::write_atomic(&p, text.as_bytes())?;
    written.push(p);
    print!("{text}");
    for p in written {
        println!("wrote {}", p.display());
    }
    Ok(())
}
