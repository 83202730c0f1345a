//! `mm`: the command-line front end of the mm toolkit.

mod audio;
mod data;
mod engine;
mod features;
mod info;
mod text;
mod train;
mod vision;

use anyhow::{Result, bail};
use clap::{Parser, Subcommand};

/// mm: multi-modal deep learning in Rust (text, images, sound).
#[derive(Debug, Parser)]
#[command(name = "mm", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Versions, libtorch, CUDA devices, threads and compiled features.
    Info {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sound: inspect audio files and compute librosa-compatible features (STFT, mel, dB, MFCC).
    #[command(subcommand)]
    Audio(audio::AudioCommand),
    /// Text: vocabularies, and word2vec (train, evaluate on analogies and similarity, neighbours).
    #[command(subcommand)]
    Text(text::TextCommand),
    /// Data sets: generate SynthAV and the sound classes, convert downloads (COCO, Flickr8k, VQA,
    /// ESC-50, audio-visual folders), summarise a data set and show a sample.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Vision: convert PyTorch weights, extract CNN features.
    #[command(subcommand)]
    Vision(vision::VisionCommand),
    /// Train a task.
    #[command(subcommand)]
    Train(train::TrainCommand),
    /// Score a trained checkpoint on a split.
    #[command(subcommand)]
    Eval(engine::EvalCommand),
    /// Run a trained checkpoint on inputs.
    #[command(subcommand)]
    Infer(engine::InferCommand),
}

/// Parses `auto`, `cpu`, `cuda` or `cuda:N` into a device, failing when CUDA is asked for but
/// absent.
pub(crate) fn parse_device(s: &str) -> Result<tch::Device> {
    let cuda = tch::Cuda::is_available();
    Ok(match s {
        "auto" => tch::Device::cuda_if_available(),
        "cpu" => tch::Device::Cpu,
        _ => {
            let idx = match s.strip_prefix("cuda") {
                Some("") => 0,
                Some(rest) => match rest.strip_prefix(':').and_then(|n| n.parse::<usize>().ok()) {
                    Some(n) => n,
                    None => bail!("unknown device `{s}`: use auto, cpu, cuda or cuda:N"),
                },
                None => bail!("unknown device `{s}`: use auto, cpu, cuda or cuda:N"),
            };
            if !cuda {
                bail!("device `{s}` requested but CUDA is not available (see `mm info`)");
            }
            let n = tch::Cuda::device_count() as usize;
            if idx >= n {
                bail!("device `{s}` requested but only {n} CUDA device(s) exist");
            }
            tch::Device::Cuda(idx)
        }
    })
}

/// What is logged unless `MM_LOG` or `RUST_LOG` says otherwise: mm's own events from `info`,
/// other libraries' from `warn`, and none of symphonia's (its probe logs an error for every
/// file it cannot read, before mm says the same with the path).
const DEFAULT_LOG: &str = "warn,symphonia_core=off,symphonia=off,mm_cli=info,mm_train=info,\
                           mm_tasks=info,mm_data=info,mm_signal=info,mm_text=info,mm_vision=info";

fn main() -> std::process::ExitCode {
    // reuse freed tensor buffers instead of unmapping them (see mm_train::malloc)
    mm_train::malloc::keep_freed_buffers();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MM_LOG")
                .or_else(|_| tracing_subscriber::EnvFilter::try_from_env("RUST_LOG"))
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG)),
        )
        .with_writer(std::io::stderr)
        // colour codes only for a terminal, not in logs and pipes
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info { json } => info::run(json),
        Command::Audio(c) => audio::run(c),
        Command::Text(c) => text::run(c),
        Command::Data(c) => data::run(c),
        Command::Vision(c) => vision::run(c),
        Command::Train(c) => train::run(c),
        Command::Eval(c) => engine::run_eval(c),
        Command::Infer(c) => engine::run_infer(c),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
