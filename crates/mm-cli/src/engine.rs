//! `mm train|eval|infer <task>` for tasks on the training engine (`mm-train`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use mm_train::config::string_override;
use mm_train::{Input, InputKind, ProgressFn, RunConfig, RunOptions, RunReport, Task, TrainEvent};

/// Arguments of `mm train <task>` for engine tasks.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// A TOML file over the task's defaults (see `configs/<task>/`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The data set (sets task.data).
    #[arg(long)]
    data: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Run directory (config.toml, metrics.jsonl, checkpoints/, PNG curves, summary.json).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in DIR from its latest checkpoint, with its saved configuration.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["config", "data", "set", "out"])]
    resume: Option<PathBuf>,
    /// Override a configuration value: --set train.optimizer.lr=1e-3 (repeatable). The
    /// environment can too: MM_CFG__TRAIN__EPOCHS=5. A value in brackets or braces is a TOML
    /// array or table, one in double quotes a TOML string.
    #[arg(long, value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Hide the progress bar.
    #[arg(long)]
    quiet: bool,
    /// The task's preset that trains in seconds (for demos and smoke tests).
    #[arg(long)]
    quick: bool,
    /// Cross-validation: train once per fold, with task.fold = 1..=N, into OUT/fold1...
    /// OUT/foldN, and report every test metric's mean and spread (cross_validation.json).
    /// Running the same command again continues: finished folds are read back, a fold cut
    /// short is resumed.
    #[arg(long, value_name = "N", conflicts_with = "resume", value_parser = clap::value_parser!(u8).range(2..=20))]
    folds: Option<u8>,
    /// Build the task and measure, without writing a run, the host memory of one evaluation
    /// batch and one training step at the configured sizes (Linux); then exit.
    #[arg(long, conflicts_with_all = ["resume", "folds"])]
    dry_run: bool,
}

/// Arguments of `mm eval <task>`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A run directory (its best checkpoint) or one checkpoint directory.
    #[arg(long)]
    checkpoint: PathBuf,
    /// The split to score.
    #[arg(long, default_value = "test")]
    split: String,
    #[command(flatten)]
    restore: RestoreArgs,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
}

/// What `mm eval` and `mm infer` may change in a trained run's configuration.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The run's data set at another path (sets task.data): a moved or copied file, or
    /// another file of the same data set's kind (the vocabulary and answer classes are
    /// rebuilt from it, so they must come out the same, or the weights do not fit).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Override a task setting of the run: --set task.beam_size=5 (repeatable; task.* only,
    /// and train.eval_batch_size, the samples evaluated at once, which bounds memory).
    #[arg(long, value_name = "KEY=VALUE")]
    set: Vec<String>,
}

impl RestoreArgs {
    fn overrides(self) -> Vec<String> {
        let mut o = self.set;
        o.extend(
            self.data
                .map(|d| string_override("task.data", &d.display().to_string())),
        );
        o
    }
}

/// Arguments of `mm infer <task>`.
#[derive(Debug, Args)]
pub struct InferArgs {
    /// A run directory (its best checkpoint) or one checkpoint directory.
    #[arg(long)]
    checkpoint: PathBuf,
    /// An input (repeatable): an image file, an audio file (.wav .flac .ogg .mp3),
    /// text:WORDS, or SPLIT:INDEX for a sample of the run's data set (test:3); each task says
    /// which kinds it takes.
    #[arg(long)]
    input: Vec<String>,
    /// The image (a file or SPLIT:INDEX), for tasks that take one image and a question (vqa).
    #[arg(long)]
    image: Option<String>,
    /// The question (vqa): a text input.
    #[arg(long)]
    question: Option<String>,
    /// A text input (repeatable): what text-to-image draws.
    #[arg(long)]
    text: Vec<String>,
    /// Images drawn per text, for tasks that generate (text-to-image; sets task.samples).
    #[arg(long)]
    samples: Option<usize>,
    /// Where pictures go.
    #[arg(long, default_value = "runs/infer")]
    out: PathBuf,
    #[command(flatten)]
    restore: RestoreArgs,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
}

/// The training bar: steps, speed, time left and the last loss (hidden until training starts).
fn progress_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps {per_sec} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Draws the trainer's events on `bar`.
fn render(bar: indicatif::ProgressBar) -> ProgressFn {
    ProgressFn::new(move |e| match e {
        TrainEvent::Started { step, total } => {
            bar.set_length(*total as u64);
            bar.set_position(*step as u64);
            bar.reset_eta();
        }
        TrainEvent::Step { step, loss, lr, .. } => {
            bar.set_position(*step as u64);
            bar.set_message(format!("loss {loss:.4} lr {lr:.2e}"));
        }
        TrainEvent::Evaluated { .. } | TrainEvent::Finished { .. } => {}
    })
}

/// Trains `T` and prints its test metrics; with `--folds N`, once per fold.
pub fn train<T: Task>(defaults: &RunConfig<T::Config>, args: TrainArgs) -> Result<()> {
    let device = crate::parse_device(&args.device)?;
    let mut overrides = Vec::new();
    if args.quick {
        if T::quick_overrides().is_empty() {
            bail!("`{}` has no --quick preset; use --set or --config", T::NAME);
        }
        overrides.extend(T::quick_overrides().iter().map(|s| s.to_string()));
    }
    overrides.extend(args.set);
    if let Some(d) = &args.data {
        overrides.push(string_override("task.data", &d.display().to_string()));
    }
    if args.dry_run {
        let opts = RunOptions {
            config: args.config.clone(),
            overrides,
            device,
            dir: PathBuf::new(),
            resume: false,
            progress: None,
        };
        let d = mm_train::run::dry_run::<T>(defaults, &opts)
            .with_context(|| format!("dry run of {}", T::NAME))?;
        let gb = |b: Option<u64>| {
            b.map_or_else(
                || "not measured (needs Linux)".to_string(),
                |b| format!("{:.2} GB", b as f64 / 1e9),
            )
        };
        println!(
            "{} dry run (batch {}, evaluation batch {}), host memory:",
            T::NAME,
            d.batch,
            d.eval_batch
        );
        println!(
            "  trainable parameters    {:.1} MB (the optimizer adds 1-2x this, Adam 2x)",
            d.parameter_bytes as f64 / 1e6
        );
        println!("  after building          {}", gb(d.built_bytes));
        println!("  evaluation batch peak   {}", gb(d.eval_peak_bytes));
        println!(
            "  training step peak      {} (the run's estimated peak)",
            gb(d.train_peak_bytes)
        );
        return Ok(());
    }
    let (dir, resume) = match (args.resume, args.out) {
        (Some(d), _) => (d, true),
        (None, Some(d)) => (d, false),
        (None, None) => (PathBuf::from(format!("runs/{}", T::NAME)), false),
    };
    let one = |dir: &Path, resume: bool, overrides: Vec<String>| -> Result<RunReport> {
        let bar = (!args.quiet).then(progress_bar);
        let opts = RunOptions {
            config: if resume { None } else { args.config.clone() },
            overrides: if resume { Vec::new() } else { overrides },
            device,
            dir: dir.to_owned(),
            resume,
            progress: bar.as_ref().map(|b| render(b.clone())),
        };
        let t0 = std::time::Instant::now();
        let report = mm_train::run::train::<T>(defaults, &opts);
        if let Some(b) = &bar {
            b.finish_and_clear();
        }
        let report =
            report.with_context(|| format!("training {} into {}", T::NAME, dir.display()))?;
        let s = &report.summary;
        println!(
            "{}: {} steps in {:.1} s ({:.0} samples/s while training){}",
            T::NAME,
            s.steps,
            t0.elapsed().as_secs_f64(),
            s.samples_per_sec,
            if s.stopped_early {
                ", stopped early"
            } else {
                ""
            }
        );
        if let Some((step, v)) = s.best {
            println!("best validation value {v:.3} at step {step}");
        }
        if let Some(b) = report.peak_rss_bytes {
            println!("peak memory (resident) {:.2} GB", b as f64 / 1e9);
        }
        print_metrics("test (best checkpoint)", &report.test);
        for p in &report.pictures {
            println!("wrote {}", p.display());
        }
        println!("run directory: {}", dir.display());
        Ok(report)
    };
    let Some(folds) = args.folds else {
        one(&dir, resume, overrides)?;
        return Ok(());
    };
    // cross-validation: fold k in DIR/foldK with task.fold = k; a fold already finished is
    // read back, one cut short is resumed, so the same command continues an interrupted run
    let mut tests = Vec::new();
    for k in 1..=usize::from(folds) {
        let fold_dir = dir.join(format!("fold{k}"));
        let summary = fold_dir.join("summary.json");
        let test = if summary.is_file() {
            let v: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(&summary)
                    .with_context(|| format!("reading {}", summary.display()))?,
            )
            .with_context(|| format!("{} is not JSON", summary.display()))?;
            println!("fold {k}: finished before, read from {}", summary.display());
            serde_json::from_value::<mm_train::Metrics>(v["test"].clone())
                .with_context(|| format!("{} has no test metrics", summary.display()))?
        } else {
            let started = fold_dir.join("checkpoints").is_dir();
            let mut o = overrides.clone();
            o.push(format!("task.fold={k}"));
            println!(
                "fold {k} of {folds}{}",
                if started { " (resumed)" } else { "" }
            );
            one(&fold_dir, started, o)?.test
        };
        tests.push(test);
    }
    let cv = cross_validation(&tests);
    let path = dir.join("cross_validation.json");
    let text = serde_json::to_string_pretty(&cv)?;
    mm_core::write_atomic(&path, text.as_bytes())?;
    println!(
        "{folds}-fold cross-validation, test metrics (mean +- standard deviation over folds):"
    );
    for (name, m) in cv["mean"].as_object().into_iter().flatten() {
        println!(
            "  {name:<16} {:10.3} +- {:.3}",
            m.as_f64().unwrap_or(f64::NAN),
            cv["std"][name].as_f64().unwrap_or(f64::NAN)
        );
    }
    println!("wrote {}", path.display());
    Ok(())
}

/// Per fold, and the mean and sample standard deviation (n - 1) of every test metric.
fn cross_validation(tests: &[mm_train::Metrics]) -> serde_json::Value {
    let mut mean = serde_json::Map::new();
    let mut std = serde_json::Map::new();
    if let Some(first) = tests.first() {
        for name in first.keys() {
            let v: Vec<f64> = tests.iter().filter_map(|t| t.get(name).copied()).collect();
            let n = v.len() as f64;
            let m = v.iter().sum::<f64>() / n;
            let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
            mean.insert(name.clone(), serde_json::json!(m));
            std.insert(name.clone(), serde_json::json!(var.sqrt()));
        }
    }
    serde_json::json!({
        "folds": tests.iter().enumerate().map(|(k, t)| serde_json::json!({"fold": k + 1, "test": t})).collect::<Vec<_>>(),
        "mean": mean,
        "std": std,
    })
}

fn print_metrics(title: &str, m: &mm_train::Metrics) {
    println!("{title}:");
    for (k, v) in m {
        println!("  {k:<16} {v:10.3}");
    }
}

/// Scores a checkpoint of `T`.
pub fn eval<T: Task>(args: EvalArgs) -> Result<()> {
    let device = crate::parse_device(&args.device)?;
    let overrides = args.restore.overrides();
    let m = mm_train::run::evaluate::<T>(&args.checkpoint, &args.split, &overrides, device)
        .with_context(|| format!("evaluating {}", args.checkpoint.display()))?;
    print_metrics(&format!("{} on {}", T::NAME, args.split), &m);
    Ok(())
}

/// The inputs of `mm infer`, parsed once: `--input` values by their spelling, `--image` as an
/// image (a file or `SPLIT:INDEX`), `--question` as text.
fn inputs(args: &InferArgs) -> Result<Vec<Input>> {
    let mut out: Vec<Input> = args
        .input
        .iter()
        .map(|s| Input::parse(s))
        .collect::<mm_train::Result<_>>()?;
    if let Some(i) = &args.image {
        let i = Input::parse(i)?;
        if !matches!(i.kind(), InputKind::Image | InputKind::Sample) {
            bail!("--image `{i}`: give an image file or SPLIT:INDEX");
        }
        out.push(i);
    }
    out.extend(args.question.clone().map(Input::Text));
    out.extend(args.text.iter().cloned().map(Input::Text));
    Ok(out)
}

/// Runs a checkpoint of `T` on inputs.
pub fn infer<T: Task>(args: InferArgs) -> Result<()> {
    let device = crate::parse_device(&args.device)?;
    let inputs = inputs(&args)?;
    let mut overrides = args.restore.overrides();
    overrides.extend(args.samples.map(|k| format!("task.samples={k}")));
    let v = mm_train::run::infer::<T>(&args.checkpoint, &inputs, &args.out, &overrides, device)
        .with_context(|| format!("inference with {}", args.checkpoint.display()))?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// Every task on the engine, once: its subcommand, its type, its defaults, and what `mm
/// train`, `mm eval` and `mm infer` say of it. Adding a task is its `Task` impl and one entry
/// here; the three commands, their help and their dispatch come from this list.
macro_rules! engine_tasks {
    ($( $variant:ident => $task:ty, $defaults:path,
        train: $train_doc:literal, eval: $eval_doc:literal, infer: $infer_doc:literal; )*) => {
        /// `mm train <task>` for tasks on the engine.
        #[derive(Debug, Subcommand)]
        pub enum EngineTrain {
            $( #[doc = $train_doc] $variant(TrainArgs), )*
        }

        /// `mm eval <task>`.
        #[derive(Debug, Subcommand)]
        pub enum EvalCommand {
            $( #[doc = $eval_doc] $variant(EvalArgs), )*
        }

        /// `mm infer <task>`.
        #[derive(Debug, Subcommand)]
        pub enum InferCommand {
            $( #[doc = $infer_doc] $variant(InferArgs), )*
        }

        /// Runs `mm train` for an engine task.
        pub fn run_train(cmd: EngineTrain) -> Result<()> {
            match cmd {
                $( EngineTrain::$variant(a) => train::<$task>(&$defaults(), a), )*
            }
        }

        /// Runs `mm eval`.
        pub fn run_eval(cmd: EvalCommand) -> Result<()> {
            match cmd {
                $( EvalCommand::$variant(a) => eval::<$task>(a), )*
            }
        }

        /// Runs `mm infer`.
        pub fn run_infer(cmd: InferCommand) -> Result<()> {
            match cmd {
                $( InferCommand::$variant(a) => infer::<$task>(a), )*
            }
        }

        /// The engine tasks' names, as `mm train` spells them.
        #[cfg(test)]
        pub(crate) const ENGINE_TASKS: &[&str] = &[$( <$task as Task>::NAME, )*];
    };
}

engine_tasks! {
    Retrieval => mm_tasks::retrieval::Retrieval, mm_tasks::retrieval::defaults,
        train: "Image tagging and cross-modal retrieval (joint embedding, VSE++) on the engine.",
        eval: "Image tagging and cross-modal retrieval: Recall@K and ranks both ways.",
        infer: "Captions and tags for images (files or SPLIT:K), images for text:QUERY; writes retrieval.png.";
    Vqa => mm_tasks::vqa::Vqa, mm_tasks::vqa::defaults,
        train: "Visual question answering (image x question streams, fused, top-K answers).",
        eval: "Visual question answering: official VQA accuracy, per question type, prior baseline.",
        infer: "The top-5 answers to --question about --image; writes vqa.png.";
    Captioning => mm_tasks::captioning::Captioning, mm_tasks::captioning::defaults,
        train: "Image captioning: Show, Attend and Tell (soft attention, beam search).",
        eval: "Captioning: BLEU-1..4, ROUGE-L, CIDEr-D, and the nearest-neighbour baseline's.",
        infer: "A caption per image (files or SPLIT:K) and a PNG strip of its attention per word.";
    SoundTagging => mm_tasks::sound_tagging::SoundTagging, mm_tasks::sound_tagging::defaults,
        train: "Sound-event tagging from log-mel spectrograms (built-in sound classes, or ESC-50 with --folds 5).",
        eval: "Sound tagging: accuracy, beside the prior's and chance.",
        infer: "The top-5 classes of audio files (--input clip.wav) or SPLIT:K, and a spectrogram PNG each.";
    TextToImage => mm_tasks::text_to_image::TextToImage, mm_tasks::text_to_image::defaults,
        train: "Text-to-image: a text-conditioned GAN (GAN-INT-CLS), discriminator and generator optimizers.",
        eval: "Text-to-image: attribute accuracy of generated images (real and prior beside), Frechet distance, diversity.",
        infer: "Images for each --text (--samples per text); writes text_to_image.png.";
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Train {
        #[command(subcommand)]
        c: EngineTrain,
    }

    #[derive(Debug, Parser)]
    struct Eval {
        #[command(subcommand)]
        c: EvalCommand,
    }

    #[derive(Debug, Parser)]
    struct Infer {
        #[command(subcommand)]
        c: InferCommand,
    }

    #[test]
    fn every_engine_task_is_a_train_eval_and_infer_subcommand_under_its_name() {
        assert_eq!(
            ENGINE_TASKS,
            [
                "retrieval",
                "vqa",
                "captioning",
                "sound-tagging",
                "text-to-image"
            ]
        );
        for name in ENGINE_TASKS {
            assert!(Train::try_parse_from(["mm", name]).is_ok(), "{name}");
            assert!(
                Eval::try_parse_from(["mm", name, "--checkpoint", "r"]).is_ok(),
                "{name}"
            );
            assert!(
                Infer::try_parse_from(["mm", name, "--checkpoint", "r"]).is_ok(),
                "{name}"
            );
        }
        assert!(Train::try_parse_from(["mm", "nosuchtask"]).is_err());
    }

    #[test]
    fn inference_inputs_are_parsed_once_into_their_kinds() {
        let Infer {
            c: InferCommand::Vqa(a),
        } = Infer::try_parse_from([
            "mm",
            "vqa",
            "--checkpoint",
            "r",
            "--input",
            "test:2",
            "--input",
            "text:a red square",
            "--image",
            "photo.jpg",
            "--question",
            "what colour?",
        ])
        .unwrap()
        else {
            panic!("not vqa")
        };
        let kinds: Vec<InputKind> = inputs(&a).unwrap().iter().map(Input::kind).collect();
        assert_eq!(
            kinds,
            [
                InputKind::Sample,
                InputKind::Text,
                InputKind::Image,
                InputKind::Text
            ]
        );
        let Infer {
            c: InferCommand::Vqa(a),
        } = Infer::try_parse_from(["mm", "vqa", "--checkpoint", "r", "--image", "text:no"])
            .unwrap()
        else {
            panic!("not vqa")
        };
        let e = inputs(&a).unwrap_err().to_string();
        assert!(e.contains("--image `text:no`"), "{e}");
    }
}
