//! Sound tagging: classify sound events from log-mel spectrograms with a small CNN, on the
//! engine (`mm train|eval|infer sound-tagging`).
//!
//! The pipeline every audio task builds on: clips (the built-in synthetic sound classes of
//! `mm-data`, or a data set such as ESC-50), log-mel spectrograms (`mm-signal`; dB, top 80 dB),
//! standardised with the training clips' mean and deviation, `mm-vision`'s [`SmallCnn`] on the
//! one-channel spectrogram "image", pooled, and a linear classifier; cross-entropy, Adam.
//!
//! - **Splits**: built-in classes: per class the last `test_fraction` of the clips test, the
//!   rest train. ESC-50: `fold = N` tests on fold N and trains on the other four (the
//!   protocol; `mm train sound-tagging --folds 5` runs all five and reports the mean and
//!   spread), else the file's `train`/`test`. A seeded `val_holdout` of the training clips is
//!   the validation split that selects the checkpoint; the test split never does.
//! - **Metrics**: `accuracy`, beside `prior_accuracy` (always the most frequent training
//!   class) and `chance` (one over the classes present).
//! - **Inference**: audio files (resampled to the data's rate, cut or padded to its clip
//!   length, as the ESC-50 converter does) or `SPLIT:K` samples: the top five classes with
//!   probabilities, and a spectrogram PNG per input.
//!
//! [`SmallCnn`]: mm_vision::SmallCnn

mod config;
mod data;
mod model;
mod pictures;

use std::path::{Path, PathBuf};

use mm_train::{Error, Input, InputKind, Metrics, Result, StepContext, Task};
use ndarray::Array2;
use tch::{Device, Kind, Tensor, nn};

pub use config::{FeatureConfig, QUICK, SoundTaggingConfig, defaults};

use data::Loaded;
use model::Classifier;

/// The sound-tagging task.
#[derive(Debug)]
pub struct SoundTagging {
    vs: nn::VarStore,
    model: Classifier,
    data: Loaded,
    mel: mm_signal::MelSpectrogram,
    /// The most frequent training label (the prior's answer).
    prior: i64,
    /// One over the classes present in training.
    chance: f64,
    eval_batch: usize,
    /// Seconds between spectrogram frames (hop / sample rate), for the pictures' time axis.
    frame_s: f64,
    device: Device,
}

fn bad(reason: impl Into<String>) -> Error {
    Error::InvalidParameter {
        name: "task",
        reason: reason.into(),
    }
}

impl SoundTagging {
    fn split(&self, name: &str) -> Result<&data::Split> {
        crate::common::split(&self.data.splits, name)
    }

    /// Class probabilities of spectrograms, in chunks of the evaluation batch.
    ///
    /// # Shapes
    /// `specs.len() = B` -> `[B, classes]` on the CPU.
    pub fn probabilities(&self, specs: &[&Array2<f32>]) -> Result<Tensor> {
        let mut out = Vec::new();
        for chunk in specs.chunks(self.eval_batch.max(1)) {
            let x = data::stack(chunk, self.data.mean, self.data.std, self.device)?;
            out.push(
                self.model
                    .logits(&x, false)?
                    .f_softmax(-1, Kind::Float)?
                    .f_to_device(Device::Cpu)?,
            );
        }
        Ok(Tensor::f_cat(&out, 0)?)
    }

    /// The class names, by label.
    pub fn class_names(&self) -> &[String] {
        &self.data.class_names
    }

    /// The log-mel spectrogram of an input: an audio file or `SPLIT:K`.
    fn input_spectrogram(&self, input: &Input) -> Result<Array2<f32>> {
        match input {
            Input::Audio(path) => {
                let y =
                    mm_data::convert::load_clip(path, self.data.sample_rate, self.data.clip_len)
                        .map_err(|why| bad(format!("{}: {why}", path.display())))?;
                let mut s = data::log_mel(&self.mel, &[y.as_slice()])?;
                s.pop().ok_or_else(|| bad("no spectrogram"))
            }
            Input::Sample { split, index } => {
                let s = self.split(split)?;
                s.features.get(*index).cloned().ok_or_else(|| {
                    bad(format!(
                        "{split}:{index}: the split has {} clips",
                        s.features.len()
                    ))
                })
            }
            other => Err(bad(format!("`{other}` is not a sound"))),
        }
    }
}

impl Task for SoundTagging {
    const NAME: &'static str = "sound-tagging";
    type Config = SoundTaggingConfig;

    fn build(cfg: &SoundTaggingConfig, device: Device) -> Result<Self> {
        cfg.validate()?;
        let data = data::load(cfg)?;
        let mel = data::extractor(&cfg.features, data.sample_rate)?;
        let vs = nn::VarStore::new(device);
        let model = Classifier::new(&vs.root(), &cfg.model, data.class_names.len() as i64)?;
        let train = crate::common::split(&data.splits, "train")?;
        let mut counts = vec![0usize; data.class_names.len()];
        for &y in &train.labels {
            counts[y as usize] += 1;
        }
        let prior = (0..counts.len())
            .max_by_key(|&k| (counts[k], std::cmp::Reverse(k)))
            .unwrap_or(0) as i64;
        let chance = 1.0 / counts.iter().filter(|&&c| c > 0).count().max(1) as f64;
        let frame_s = cfg.features.hop_length as f64 / f64::from(data.sample_rate);
        Ok(Self {
            vs,
            model,
            data,
            mel,
            prior,
            chance,
            eval_batch: 64,
            frame_s,
            device,
        })
    }

    fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }

    fn var_store_mut(&mut self) -> &mut nn::VarStore {
        &mut self.vs
    }

    fn train_size(&self) -> usize {
        self.data.splits.get("train").map_or(0, |s| s.labels.len())
    }

    fn train_step(&mut self, batch: &[usize], _ctx: &StepContext) -> Result<Tensor> {
        let train = self.split("train")?;
        let specs: Vec<&Array2<f32>> = batch.iter().map(|&i| &train.features[i]).collect();
        let labels: Vec<i64> = batch.iter().map(|&i| train.labels[i]).collect();
        let x = data::stack(&specs, self.data.mean, self.data.std, self.device)?;
        let y = Tensor::from_slice(&labels).f_to_device(self.device)?;
        Ok(self
            .model
            .logits(&x, true)?
            .f_cross_entropy_loss::<Tensor>(&y, None, tch::Reduction::Mean, -100, 0.0)?)
    }

    fn metric_names(&self, _split: &str) -> Result<Option<Vec<String>>> {
        Ok(Some(
            ["accuracy", "chance", "prior_accuracy"]
                .map(String::from)
                .to_vec(),
        ))
    }

    fn evaluate(&mut self, split: &str) -> Result<Metrics> {
        let s = self.split(split)?;
        let specs: Vec<&Array2<f32>> = s.features.iter().collect();
        let pred = Vec::<i64>::try_from(&self.probabilities(&specs)?.f_argmax(-1, false)?)?;
        let n = s.labels.len().max(1) as f64;
        let correct = pred.iter().zip(&s.labels).filter(|(p, y)| p == y).count();
        let prior = s.labels.iter().filter(|&&y| y == self.prior).count();
        Ok(Metrics::from([
            ("accuracy".to_string(), correct as f64 / n),
            ("chance".to_string(), self.chance),
            ("prior_accuracy".to_string(), prior as f64 / n),
        ]))
    }

    fn set_eval_batch_size(&mut self, n: usize) {
        self.eval_batch = n;
    }

    fn quick_overrides() -> &'static [&'static str] {
        QUICK
    }

    fn pictures(&mut self, dir: &Path) -> Result<Vec<PathBuf>> {
        // the first test clip of each class (up to MAX_CLASSES classes)
        let test = self.split("test")?;
        let mut shown = Vec::new();
        for k in 0..self.data.class_names.len() as i64 {
            if let Some(i) = test.labels.iter().position(|&y| y == k) {
                shown.push((
                    self.data.class_names[k as usize].as_str(),
                    &test.features[i],
                ));
            }
            if shown.len() == pictures::MAX_CLASSES {
                break;
            }
        }
        if shown.is_empty() {
            return Ok(Vec::new());
        }
        let path = dir.join("spectrograms.png");
        pictures::strip(&shown, self.frame_s, &path)?;
        Ok(vec![path])
    }

    fn input_kinds() -> &'static [InputKind] {
        &[InputKind::Audio, InputKind::Sample]
    }

    fn infer(&mut self, inputs: &[Input], out_dir: &Path) -> Result<serde_json::Value> {
        let mut report = Vec::new();
        for (k, input) in inputs.iter().enumerate() {
            let spec = self.input_spectrogram(input)?;
            let expected = self.split("train")?.features.first().map(|f| f.dim());
            if expected.is_some_and(|d| d != spec.dim()) {
                return Err(bad(format!(
                    "`{input}`: a spectrogram of {:?} (mels, frames), the model's clips give {expected:?}",
                    spec.dim()
                )));
            }
            let p = self.probabilities(&[&spec])?;
            let (v, i) = p.f_topk(5.min(self.data.class_names.len() as i64), -1, true, true)?;
            let v = Vec::<f32>::try_from(&v.f_reshape([-1])?)?;
            let i = Vec::<i64>::try_from(&i.f_reshape([-1])?)?;
            let png = out_dir.join(format!("sound_{k}.png"));
            pictures::strip(&[(&input.to_string(), &spec)], self.frame_s, &png)?;
            report.push(serde_json::json!({
                "input": input.to_string(),
                "top5": i.iter().zip(&v).map(|(&c, &p)| serde_json::json!({
                    "class": self.data.class_names[c as usize],
                    "label": c,
                    "probability": p,
                })).collect::<Vec<_>>(),
                "spectrogram": png,
            }));
        }
        Ok(serde_json::Value::Array(report))
    }
}
