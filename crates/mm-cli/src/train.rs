//! `mm train <task> ...`

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use mm_tasks::plot;
use mm_tasks::sound_tagging::{self, Progress, SoundTaggingConfig};

#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// Sound-event tagging from log-mel spectrograms on the built-in synthetic sound classes.
    SoundTagging(SoundTaggingArgs),
    /// The tasks on the engine (`crate::engine`'s one list).
    #[command(flatten)]
    Engine(crate::engine::EngineTrain),
}

#[derive(Debug, Args)]
pub struct SoundTaggingArgs {
    /// Run directory for the config, metrics and pictures.
    #[arg(long, default_value = "runs/sound-tagging")]
    out: PathBuf,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// A smaller problem that trains in seconds.
    #[arg(long)]
    quick: bool,
    /// Override the number of epochs.
    #[arg(long)]
    epochs: Option<usize>,
    /// Override the seed (data and training).
    #[arg(long)]
    seed: Option<u64>,
}

pub fn run(cmd: TrainCommand) -> Result<()> {
    match cmd {
        TrainCommand::SoundTagging(args) => sound_tagging_cmd(args),
        TrainCommand::Engine(c) => crate::engine::run_train(c),
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))
}

fn sound_tagging_cmd(args: SoundTaggingArgs) -> Result<()> {
    let device = crate::parse_device(&args.device)?;
    let mut cfg = if args.quick {
        SoundTaggingConfig::quick()
    } else {
        SoundTaggingConfig::default()
    };
    if let Some(e) = args.epochs {
        cfg.train.epochs = e;
    }
    if let Some(s) = args.seed {
        cfg.data.seed = s;
        cfg.train.seed = s;
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating run directory {}", args.out.display()))?;
    write_atomic(
        &args.out.join("config.json"),
        &serde_json::to_vec_pretty(&cfg)?,
    )?;
    tracing::info!(
        ?device,
        classes = cfg.data.n_classes,
        "training sound tagging"
    );

    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} epoch {prefix} [{bar:30}] {pos}/{len} steps  {msg}  ({per_sec}, eta {eta})",
        )?
        .progress_chars("=> "),
    );
    let start = std::time::Instant::now();
    let report = sound_tagging::train(&cfg, device, &mut |p| match p {
        Progress::Features { clips } => {
            bar.set_message(format!("log-mel features of {clips} clips"))
        }
        Progress::Step {
            epoch,
            step,
            total_steps,
            loss,
        } => {
            bar.set_length(total_steps as u64);
            bar.set_position(step as u64);
            bar.set_prefix(format!("{}", epoch + 1));
            bar.set_message(format!("loss {loss:.3}"));
        }
        Progress::Epoch {
            epoch,
            train_loss,
            test_accuracy,
        } => {
            tracing::info!(epoch = epoch + 1, train_loss, test_accuracy, "epoch done");
        }
    })?;
    bar.finish_and_clear();
    let secs = start.elapsed().as_secs_f64();

    write_atomic(
        &args.out.join("metrics.json"),
        &serde_json::to_vec_pretty(&report)?,
    )?;
    let views: Vec<_> = report.examples.iter().map(|e| e.view()).collect();
    let spec_png = args.out.join("spectrograms.png");
    plot::save_png_atomic(&plot::spectrogram_strip(&views, 3)?, &spec_png)?;
    let mut wrote = vec![args.out.join("metrics.json"), spec_png];
    // a curve needs two epochs
    if report.train_loss.len() >= 2 {
        let loss_png = args.out.join("loss.png");
        plot::save_png_atomic(
            &plot::line_plot(&[&report.train_loss], 480, 240)?,
            &loss_png,
        )?;
        wrote.push(loss_png);
    }

    let (n_train, n_test) = report.split_sizes;
    println!(
        "sound tagging: {} classes, {n_train} training / {n_test} test clips, {} epochs in {secs:.1} s on {device:?}",
        report.class_names.len(),
        report.train_loss.len()
    );
    println!(
        "test accuracy {:.1} %   (chance {:.1} %)",
        100.0 * report.final_accuracy(),
        100.0 * report.chance
    );
    println!("per class (recall on the test split):");
    for (k, row) in report.confusion.iter().enumerate() {
        let total: usize = row.iter().sum();
        println!(
            "  {:>2} {:<32} {:>3}/{:<3}",
            k, report.class_names[k], row[k], total
        );
    }
    let wrote: Vec<String> = wrote.iter().map(|p| p.display().to_string()).collect();
    println!("wrote {}", wrote.join(", "));
    Ok(())
}
