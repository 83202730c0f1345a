//! `mm train|eval|infer <task>` for tasks on the training engine (`mm-train`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use mm_tasks::retrieval::Retrieval;
use mm_train::config::string_override;
use mm_train::{ProgressFn, RunConfig, RunOptions, Task, TrainEvent};

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
    /// Override a task setting of the run: --set task.beam_size=5 (repeatable; task.* only).
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
    /// An input, as the task reads it (repeatable); retrieval: test:K, an image file, or
    /// text:QUERY.
    #[arg(long)]
    input: Vec<String>,
    /// The image (a file or test:K), for tasks that take one image (vqa).
    #[arg(long)]
    image: Option<String>,
    /// The question (vqa).
    #[arg(long)]
    question: Option<String>,
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

/// Trains `T` and prints its test metrics.
pub fn train<T: Task>(defaults: &RunConfig<T::Config>, args: TrainArgs) -> Result<()> {
    let device = crate::parse_device(&args.device)?;
    let mut overrides = args.set;
    if let Some(d) = &args.data {
        overrides.push(string_override("task.data", &d.display().to_string()));
    }
    let (dir, resume) = match (args.resume, args.out) {
        (Some(d), _) => (d, true),
        (None, Some(d)) => (d, false),
        (None, None) => (PathBuf::from(format!("runs/{}", T::NAME)), false),
    };
    let bar = (!args.quiet).then(progress_bar);
    let opts = RunOptions {
        config: args.config,
        overrides,
        device,
        dir: dir.clone(),
        resume,
        progress: bar.as_ref().map(|b| render(b.clone())),
    };
    let t0 = std::time::Instant::now();
    let report = mm_train::run::train::<T>(defaults, &opts);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = report.with_context(|| format!("training {} into {}", T::NAME, dir.display()))?;
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
    print_metrics("test (best checkpoint)", &report.test);
    println!("run directory: {}", dir.display());
    Ok(())
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

/// Runs a checkpoint of `T` on inputs.
pub fn infer<T: Task>(args: InferArgs) -> Result<()> {
    let device = crate::parse_device(&args.device)?;
    let mut inputs = args.input;
    inputs.extend(args.image.map(|i| format!("image:{i}")));
    inputs.extend(args.question.map(|q| format!("question:{q}")));
    if inputs.is_empty() {
        bail!("give --input (or --image and --question)");
    }
    let overrides = args.restore.overrides();
    let v = mm_train::run::infer::<T>(&args.checkpoint, &inputs, &args.out, &overrides, device)
        .with_context(|| format!("inference with {}", args.checkpoint.display()))?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

/// `mm eval <task>`.
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Image tagging and cross-modal retrieval: Recall@K and ranks both ways.
    Retrieval(EvalArgs),
    /// Visual question answering: official VQA accuracy, per question type, prior baseline.
    Vqa(EvalArgs),
    /// Captioning: BLEU-1..4, ROUGE-L, CIDEr-D, and the nearest-neighbour baseline's.
    Captioning(EvalArgs),
}

/// `mm infer <task>`.
#[derive(Debug, Subcommand)]
pub enum InferCommand {
    /// Captions and tags for images (test:K or files), images for text:QUERY; writes
    /// retrieval.png.
    Retrieval(InferArgs),
    /// The top-5 answers to --question about --image; writes vqa.png.
    Vqa(InferArgs),
    /// A caption per image (test:K or files) and a PNG strip of its attention per word.
    Captioning(InferArgs),
}

/// Runs `mm eval`.
pub fn run_eval(cmd: EvalCommand) -> Result<()> {
    match cmd {
        EvalCommand::Retrieval(a) => eval::<Retrieval>(a),
        EvalCommand::Vqa(a) => eval::<mm_tasks::vqa::Vqa>(a),
        EvalCommand::Captioning(a) => eval::<mm_tasks::captioning::Captioning>(a),
    }
}

/// Runs `mm infer`.
pub fn run_infer(cmd: InferCommand) -> Result<()> {
    match cmd {
        InferCommand::Retrieval(a) => infer::<Retrieval>(a),
        InferCommand::Vqa(a) => infer::<mm_tasks::vqa::Vqa>(a),
        InferCommand::Captioning(a) => infer::<mm_tasks::captioning::Captioning>(a),
    }
}
