//! Training configuration, read with the `config` crate from defaults, a TOML file, the
//! environment and command-line overrides, in that order of precedence (last wins).

use std::collections::BTreeMap;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::optim::OptimizerConfig;
use crate::schedule::ScheduleConfig;

/// Environment variables `MM_CFG__SECTION__KEY=value` override `section.key`.
pub const ENV_PREFIX: &str = "MM_CFG";

/// Whether a larger or a smaller metric is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Larger is better (accuracy, recall).
    Max,
    /// Smaller is better (loss, rank).
    Min,
}

impl Mode {
    /// Whether `new` improves on `old`.
    pub fn better(self, new: f64, old: f64) -> bool {
        match self {
            Mode::Max => new > old,
            Mode::Min => new < old,
        }
    }
}

/// A learning-rate multiplier for the parameters whose names start with `prefix` (the first
/// matching entry wins); `lr_mult = 0` freezes them (no gradients, not in the optimizer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrGroup {
    /// Name prefix, e.g. `"image.backbone."`.
    pub prefix: String,
    /// Multiplier of the base learning rate.
    pub lr_mult: f64,
}

/// How the [`crate::Trainer`] runs: the `[train]` table of a run's TOML file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training split.
    pub epochs: usize,
    /// Stop after this many steps (0: no limit beyond `epochs`).
    #[serde(default)]
    pub max_steps: usize,
    /// Training examples per step.
    pub batch_size: usize,
    /// Samples that evaluation, inference and beam search process at once (default:
    /// `batch_size`): the knob that bounds their memory.
    #[serde(default)]
    pub eval_batch_size: Option<usize>,
    /// Leave out each epoch's last batch when it is smaller than `batch_size` (PyTorch's
    /// `DataLoader(drop_last=True)`).
    #[serde(default)]
    pub drop_last: bool,
    /// Evaluate on the validation split every this many steps (0: at the end of each epoch).
    #[serde(default)]
    pub eval_every: usize,
    /// Log the mean training loss every this many steps.
    #[serde(default = "default_log_every")]
    pub log_every: usize,
    /// Seed of initialisation, data order and dropout: equal seeds give equal runs.
    pub seed: u64,
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule.
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// Per-module learning rates.
    #[serde(default)]
    pub lr_groups: Vec<LrGroup>,
    /// Clip the global gradient norm to this value (0: no clipping).
    #[serde(default)]
    pub clip_grad_norm: f64,
    /// The validation metric that selects the best checkpoint and drives early stopping.
    pub monitor: String,
    /// Whether `monitor` is better larger or smaller.
    pub mode: Mode,
    /// Stop after this many evaluations without improvement (0: never).
    #[serde(default)]
    pub patience: usize,
    /// The most recent checkpoints kept (at least 1, the one `--resume` continues from),
    /// besides the best one.
    #[serde(default = "default_keep_last")]
    pub keep_last: usize,
    /// Mixed precision: `"off"`, `"bf16"` or `"fp16"` autocast of the training step, on the
    /// run's device (CUDA or CPU).
    #[serde(default)]
    pub autocast: crate::Autocast,
    /// For a task with several parameter groups ([`crate::Task::param_groups`], e.g. a GAN's
    /// `generator` and `discriminator`): the `[train.optimizers.<group>]` tables. A group
    /// without a table, or a setting a table leaves out, takes the `[train]` level's
    /// (`optimizer`, `schedule`, `clip_grad_norm`, `autocast`). Empty for a task with one
    /// optimizer, which `[train.optimizer]` configures.
    #[serde(default)]
    pub optimizers: BTreeMap<String, GroupConfig>,
}

/// The `[train.optimizers.<group>]` table: one parameter group's optimizer, schedule,
/// clipping and mixed precision, and how many times a training step updates it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// The group's optimizer (default: `train.optimizer`).
    #[serde(default)]
    pub optimizer: Option<OptimizerConfig>,
    /// The group's learning-rate schedule (default: `train.schedule`).
    #[serde(default)]
    pub schedule: Option<ScheduleConfig>,
    /// Clip the group's gradient norm to this value, 0 for none (default:
    /// `train.clip_grad_norm`).
    #[serde(default)]
    pub clip_grad_norm: Option<f64>,
    /// Autocast of the group's updates (default: `train.autocast`).
    #[serde(default)]
    pub autocast: Option<crate::Autocast>,
    /// Updates of this group per training step, one after the other on the same batch,
    /// before the next group's (a GAN's discriminator `k` times, then the generator once).
    #[serde(default = "default_repeats")]
    pub repeats: usize,
}

fn default_repeats() -> usize {
    1
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            optimizer: None,
            schedule: None,
            clip_grad_norm: None,
            autocast: None,
            repeats: default_repeats(),
        }
    }
}

/// One parameter group's settings with the `[train]` level's filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedGroup {
    /// The optimizer.
    pub optimizer: OptimizerConfig,
    /// The schedule.
    pub schedule: ScheduleConfig,
    /// Gradient-norm clipping (0: none).
    pub clip_grad_norm: f64,
    /// Mixed precision.
    pub autocast: crate::Autocast,
    /// Updates per training step.
    pub repeats: usize,
}

fn default_log_every() -> usize {
    10
}

fn default_keep_last() -> usize {
    2
}

impl TrainConfig {
    /// The settings of parameter group `name`: its `[train.optimizers.<name>]` table over the
    /// `[train]` level's (all of the `[train]` level's for a group without a table).
    pub fn group(&self, name: &str) -> ResolvedGroup {
        let g = self.optimizers.get(name).cloned().unwrap_or_default();
        ResolvedGroup {
            optimizer: g.optimizer.unwrap_or_else(|| self.optimizer.clone()),
            schedule: g.schedule.unwrap_or_else(|| self.schedule.clone()),
            clip_grad_norm: g.clip_grad_norm.unwrap_or(self.clip_grad_norm),
            autocast: g.autocast.unwrap_or(self.autocast),
            repeats: g.repeats,
        }
    }

    /// The samples evaluation processes at once: `eval_batch_size`, else `batch_size`.
    pub fn eval_batch(&self) -> usize {
        self.eval_batch_size.unwrap_or(self.batch_size)
    }

    /// Checks ranges that serde cannot.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, reason: &str| {
            Err(Error::InvalidParameter {
                name,
                reason: reason.into(),
            })
        };
        if self.batch_size == 0 {
            return bad("train.batch_size", "must be positive");
        }
        if self.eval_batch_size == Some(0) {
            return bad("train.eval_batch_size", "must be positive");
        }
        if self.epochs == 0 && self.max_steps == 0 {
            return bad("train.epochs", "set epochs or max_steps");
        }
        if self.log_every == 0 {
            return bad("train.log_every", "must be positive");
        }
        if self.keep_last == 0 {
            // pruning would delete the latest checkpoint, the one --resume continues from
            return bad(
                "train.keep_last",
                "must be at least 1: --resume continues from the latest checkpoint",
            );
        }
        if self.clip_grad_norm.is_nan() || self.clip_grad_norm < 0.0 {
            return bad("train.clip_grad_norm", "must be >= 0");
        }
        if let Some(g) = self
            .lr_groups
            .iter()
            .find(|g| g.lr_mult.is_nan() || g.lr_mult < 0.0)
        {
            return Err(Error::InvalidParameter {
                name: "train.lr_groups",
                reason: format!("lr_mult of `{}` must be >= 0", g.prefix),
            });
        }
        self.optimizer.validate()?;
        self.schedule.validate()?;
        for (name, g) in &self.optimizers {
            let bad = |reason: String| {
                Err(Error::InvalidParameter {
                    name: "train.optimizers",
                    reason: format!("group `{name}`: {reason}"),
                })
            };
            if g.repeats == 0 {
                return bad("repeats must be at least 1".into());
            }
            if let Some(c) = g.clip_grad_norm
                && (c.is_nan() || c < 0.0)
            {
                return bad("clip_grad_norm must be >= 0".into());
            }
            let r = self.group(name);
            if let Err(e) = r.optimizer.validate().and_then(|()| r.schedule.validate()) {
                return bad(e.to_string());
            }
        }
        Ok(())
    }
}

/// Reads a configuration of type `T`: `defaults`, then the TOML `file`, then environment
/// variables `MM_CFG__A__B=v` (for `a.b`), then `overrides` (`"a.b=v"`, as `--set` gives
/// them; a value starting with `[` or `{` is read as a TOML array or inline table, e.g.
/// `"task.widths=[32, 64]"`, and one starting with a quote as a TOML string, which is how
/// [`string_override`] passes any text through). Keys that `T` does not know are errors (`T`
/// should use `deny_unknown_fields`).
pub fn load<T: Serialize + DeserializeOwned>(
    defaults: &T,
    file: Option<&Path>,
    overrides: &[String],
) -> Result<T> {
    let cfg = |e: config::ConfigError| Error::Config(e.to_string());
    let mut b =
        config::Config::builder().add_source(config::Config::try_from(defaults).map_err(cfg)?);
    if let Some(f) = file {
        if !f.is_file() {
            return Err(Error::Config(format!("{}: no such file", f.display())));
        }
        b = b.add_source(config::File::from(f).format(config::FileFormat::Toml));
    }
    b = b.add_source(
        config::Environment::with_prefix(ENV_PREFIX)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true),
    );
    b = apply_overrides(b, overrides)?;
    b.build()
        .and_then(|c| c.try_deserialize::<T>())
        .map_err(|e| Error::Config(e.to_string()))
}

/// `base` with `overrides` applied (`"a.b=v"`, read as [`load`] reads them), and nothing else:
/// no file, no environment. Keys that `T` does not know are errors.
pub fn with_overrides<T: Serialize + DeserializeOwned>(
    base: &T,
    overrides: &[String],
) -> Result<T> {
    let b = config::Config::builder()
        .add_source(config::Config::try_from(base).map_err(|e| Error::Config(e.to_string()))?);
    apply_overrides(b, overrides)?
        .build()
        .and_then(|c| c.try_deserialize::<T>())
        .map_err(|e| Error::Config(e.to_string()))
}

/// The override `key=value` that sets `key` to the string `value` whatever it holds (a path
/// that starts with `[` would otherwise be read as an array): `value` as a quoted TOML string.
pub fn string_override(key: &str, value: &str) -> String {
    format!("{key}={}", toml::Value::String(value.to_string()))
}

fn apply_overrides(
    mut b: config::ConfigBuilder<config::builder::DefaultState>,
    overrides: &[String],
) -> Result<config::ConfigBuilder<config::builder::DefaultState>> {
    let cfg = |e: config::ConfigError| Error::Config(e.to_string());
    for o in overrides {
        let Some((key, value)) = o.split_once('=') else {
            return Err(Error::Config(format!("override `{o}` is not KEY=VALUE")));
        };
        let (key, value) = (key.trim(), value.trim());
        if value.starts_with(['[', '{', '"', '\'']) {
            // an array or inline table (`--set 'task.widths=[32, 64]'`), or a quoted string
            // (`--set 'task.data="[a].h5"'`, as `string_override` writes): a TOML line with
            // the dotted key, so that it arrives typed rather than as one string
            let line = format!("{key} = {value}");
            toml::from_str::<toml::Table>(&line).map_err(|e| {
                Error::Config(format!(
                    "override `{o}`: not a TOML array, table or quoted string ({e})"
                ))
            })?;
            b = b.add_source(config::File::from_str(&line, config::FileFormat::Toml));
        } else {
            b = b.set_override(key, value).map_err(cfg)?;
        }
    }
    Ok(b)
}

/// `value` as TOML text (the resolved configuration a run writes).
pub fn to_toml<T: Serialize>(value: &T) -> Result<String> {
    toml::to_string_pretty(value).map_err(|e| Error::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::OptimizerKind;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Run {
        train: TrainConfig,
        task: Task,
    }

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Task {
        dim: i64,
        name: String,
        widths: Vec<i64>,
    }

    fn defaults() -> Run {
        Run {
            train: TrainConfig {
                epochs: 3,
                max_steps: 0,
                batch_size: 8,
                eval_batch_size: None,
                drop_last: false,
                eval_every: 0,
                log_every: 10,
                seed: 0,
                optimizer: OptimizerConfig::adam(1e-3),
                schedule: ScheduleConfig::default(),
                lr_groups: vec![],
                clip_grad_norm: 0.0,
                monitor: "acc".into(),
                mode: Mode::Max,
                patience: 0,
                keep_last: 2,
                autocast: crate::Autocast::Off,
                optimizers: BTreeMap::new(),
            },
            task: Task {
                dim: 4,
                name: "x".into(),
                widths: vec![8],
            },
        }
    }

    #[test]
    fn file_then_overrides_win_and_unknown_keys_fail() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("run.toml");
        std::fs::write(
            &f,
            "[train]\nepochs = 5\n[train.optimizer]\nkind = \"sgd\"\nlr = 0.1\nmomentum = 0.9\n[task]\ndim = 16\n",
        )
        .unwrap();
        let r: Run = load(
            &defaults(),
            Some(&f),
            &["train.optimizer.lr=0.05".into(), "task.name=y".into()],
        )
        .unwrap();
        assert_eq!(r.train.epochs, 5);
        assert_eq!(r.train.optimizer.kind, OptimizerKind::Sgd);
        assert_eq!(r.train.optimizer.lr, 0.05);
        assert_eq!(r.train.optimizer.momentum, 0.9);
        assert_eq!(r.task.dim, 16);
        assert_eq!(r.task.name, "y");
        assert_eq!(r.train.batch_size, 8, "defaults fill the rest");
        // the resolved config round-trips through TOML
        let text = to_toml(&r).unwrap();
        let back: Run = toml::from_str(&text).unwrap();
        assert_eq!(back, r);

        std::fs::write(&f, "[train]\nepoch = 5\n").unwrap();
        let e = load(&defaults(), Some(&f), &[]).unwrap_err().to_string();
        assert!(e.contains("epoch"), "{e}");
        let e = load(&defaults(), None, &["task.colour=red".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour"), "{e}");
        assert!(load(&defaults(), None, &["task.dim".into()]).is_err());
        assert!(load(&defaults(), Some(&dir.path().join("absent.toml")), &[]).is_err());
        let e = load(&defaults(), None, &["train.batch_size=many".into()]).unwrap_err();
        assert!(matches!(e, Error::Config(_)));
    }

    #[test]
    fn overrides_take_toml_arrays_and_tables() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("run.toml");
        std::fs::write(&f, "[task]\ndim = 16\nwidths = [1, 2]\n").unwrap();
        let r: Run = load(
            &defaults(),
            Some(&f),
            &[
                "task.widths = [32, 64, 128]".into(),
                r#"train.lr_groups=[{prefix = "image.", lr_mult = 0.1}]"#.into(),
            ],
        )
        .unwrap();
        assert_eq!(r.task.widths, [32, 64, 128]);
        assert_eq!(r.task.dim, 16);
        assert_eq!(
            r.train.lr_groups,
            [LrGroup {
                prefix: "image.".into(),
                lr_mult: 0.1
            }]
        );
        // a malformed array names its override; a wrongly typed one is an error too
        let e = load(&defaults(), None, &["task.name=[not an array".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("task.name=[not an array"), "{e}");
        let e = load(&defaults(), None, &["task.widths=[\"a\"]".into()]).unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{e}");
    }

    #[test]
    fn string_overrides_pass_any_text_through() {
        // a path that looks like an array, quotes, backslashes, an `=`, outer spaces
        for text in [
            "[run 1]/synthav.h5",
            r#"a "b" \c = d.h5"#,
            " x ",
            "{y}",
            "'z'",
        ] {
            let r: Run = with_overrides(&defaults(), &[string_override("task.name", text)])
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(r.task.name, text);
        }
        // unquoted, the first would be read as a (malformed) array
        let e = with_overrides::<Run>(&defaults(), &["task.name=[run 1]/synthav.h5".into()]);
        assert!(e.is_err());
        // quoted by hand on the command line (--set 'task.name="a b"'): the quotes go
        let r: Run = with_overrides(&defaults(), &[r#"task.name="a b""#.into()]).unwrap();
        assert_eq!(r.task.name, "a b");
        let e = with_overrides::<Run>(&defaults(), &[r#"task.name="open"#.into()]).unwrap_err();
        assert!(e.to_string().contains("quoted string"), "{e}");
    }

    /// `[train.optimizers.<group>]` tables from a file and `--set`, each setting a table
    /// leaves out taken from the `[train]` level, and the whole round-trips through TOML.
    #[test]
    fn group_tables_fall_back_to_the_train_level() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("run.toml");
        std::fs::write(
            &f,
            "[train]\nclip_grad_norm = 2.0\n\
             [train.optimizers.discriminator]\nrepeats = 3\n\
             [train.optimizers.generator]\noptimizer = { kind = \"sgd\", lr = 0.1 }\n",
        )
        .unwrap();
        let r: Run = load(
            &defaults(),
            Some(&f),
            &["train.optimizers.generator.clip_grad_norm=0.5".into()],
        )
        .unwrap();
        r.train.validate().unwrap();
        let d = r.train.group("discriminator");
        assert_eq!(d.repeats, 3);
        assert_eq!(d.optimizer, r.train.optimizer);
        assert_eq!(d.clip_grad_norm, 2.0);
        let g = r.train.group("generator");
        assert_eq!(
            (g.optimizer.kind, g.optimizer.lr),
            (OptimizerKind::Sgd, 0.1)
        );
        assert_eq!((g.clip_grad_norm, g.repeats), (0.5, 1));
        assert_eq!(g.schedule, r.train.schedule);
        let back: Run = toml::from_str(&to_toml(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        // a group's bad optimizer is refused with its name
        let r: Run = load(
            &defaults(),
            None,
            &["train.optimizers.generator={ optimizer = { kind = \"adam\", lr = -1.0 } }".into()],
        )
        .unwrap();
        let e = r.train.validate().unwrap_err().to_string();
        assert!(e.contains("group `generator`") && e.contains("lr"), "{e}");
        // unknown keys in a group table are errors
        std::fs::write(&f, "[train.optimizers.generator]\nrepeat = 2\n").unwrap();
        let e = load(&defaults(), Some(&f), &[]).unwrap_err().to_string();
        assert!(e.contains("repeat"), "{e}");
    }

    #[test]
    fn validation_rejects_bad_ranges() {
        let mut r = defaults();
        r.train.validate().unwrap();
        r.train.batch_size = 0;
        assert!(r.train.validate().is_err());
        r.train.batch_size = 2;
        r.train.lr_groups = vec![LrGroup {
            prefix: "a.".into(),
            lr_mult: -1.0,
        }];
        assert!(r.train.validate().is_err());
        r.train.lr_groups.clear();
        r.train.optimizer.lr = -1.0;
        assert!(r.train.validate().is_err());
        r.train.optimizer.lr = 1e-3;
        r.train.validate().unwrap();
        r.train.keep_last = 0;
        let e = r.train.validate().unwrap_err().to_string();
        assert!(e.contains("keep_last"), "{e}");
    }
}
