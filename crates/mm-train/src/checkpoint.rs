//! Checkpoints: a directory `step-NNNNNNNN/` with the model's variables, the optimizer's state
//! and the training state, each file recorded with its SHA-256 in `manifest.json`. A checkpoint
//! is written into a hidden temporary directory and renamed into place, so a killed process
//! leaves either the whole checkpoint or none; a damaged file fails its checksum on load.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tch::{Tensor, nn};

use crate::error::{Error, Result};
use crate::optim::Optimizer;

/// Where training stands: everything besides tensors that a resumed run needs to continue
/// exactly as an uninterrupted one (data order and dropout derive from `seed` and `step`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimizer steps taken.
    pub step: usize,
    /// The epoch of the next step.
    pub epoch: usize,
    /// The run's seed.
    pub seed: u64,
    /// The best validation value of the monitored metric so far.
    pub best: Option<f64>,
    /// The step that reached it.
    pub best_step: Option<usize>,
    /// Evaluations since the last improvement (early stopping).
    pub evals_without_improvement: usize,
    /// Sum and count of training losses since the last log line.
    pub loss_window: (f64, usize),
    /// For a task with several parameter groups: the sum of each group's losses since the
    /// last log line (in the groups' order; the count is `loss_window`'s).
    #[serde(default)]
    pub group_loss_window: Vec<f64>,
    /// The learning rate of the last step (the schedule's position is `step`).
    pub lr: f64,
    /// The frozen sub-models the task had loaded, with their files' SHA-256.
    #[serde(default)]
    pub frozen: Vec<crate::frozen::FrozenSource>,
}

impl TrainState {
    /// The state before the first step.
    pub fn new(seed: u64) -> Self {
        Self {
            step: 0,
            epoch: 0,
            seed,
            best: None,
            best_step: None,
            evals_without_improvement: 0,
            loss_window: (0.0, 0),
            group_loss_window: Vec::new(),
            lr: 0.0,
            frozen: Vec::new(),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    files: BTreeMap<String, String>,
    state: TrainState,
}

/// The model weights file in a checkpoint directory (safetensors, the model's variable names).
pub const MODEL: &str = "model.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const MANIFEST: &str = "manifest.json";

fn ck_err(path: &Path, reason: impl Into<String>) -> Error {
    Error::Checkpoint {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

pub(crate) fn sha256(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(Error::io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(Error::io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

fn write_tensors(path: &Path, tensors: &BTreeMap<String, Tensor>) -> Result<()> {
    let named: Vec<(&str, Tensor)> = tensors
        .iter()
        .map(|(k, v)| Ok((k.as_str(), v.f_to_device(tch::Device::Cpu)?.f_contiguous()?)))
        .collect::<Result<_>>()?;
    Tensor::write_safetensors(&named, path)?;
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(Error::io(path))
}

/// The directory name of the checkpoint at `step`.
pub fn name(step: usize) -> String {
    format!("step-{step:08}")
}

/// Writes a checkpoint of `vs`, the optimizers `opts` (one file for all: their state names
/// differ, see [`Optimizer::for_group`]) and `state` under `root`; returns its directory.
pub fn save(
    root: &Path,
    vs: &nn::VarStore,
    opts: &[&Optimizer],
    state: &TrainState,
) -> Result<PathBuf> {
    std::fs::create_dir_all(root).map_err(Error::io(root))?;
    let dir = root.join(name(state.step));
    let tmp = root.join(format!(".{}.tmp", name(state.step)));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(Error::io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(Error::io(&tmp))?;
    // a failed write (a full disk) leaves no half-written folder behind
    let written = (|| -> Result<()> {
        let model: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
        write_tensors(&tmp.join(MODEL), &model)?;
        let mut opt_state = BTreeMap::new();
        for opt in opts {
            opt_state.append(&mut opt.state());
        }
        write_tensors(&tmp.join(OPTIMIZER), &opt_state)?;
        let mut files = BTreeMap::new();
        for f in [MODEL, OPTIMIZER] {
            files.insert(f.to_string(), sha256(&tmp.join(f))?);
        }
        let manifest = Manifest {
            files,
            state: state.clone(),
        };
        let text =
            serde_json::to_string_pretty(&manifest).map_err(|e| ck_err(&tmp, e.to_string()))?;
        std::fs::write(tmp.join(MANIFEST), text).map_err(Error::io(tmp.join(MANIFEST)))?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(Error::io(&dir))?;
    }
    std::fs::rename(&tmp, &dir).map_err(Error::io(&dir))?;
    Ok(dir)
}

/// Verifies a checkpoint's files against their checksums and returns its training state.
pub fn verify(dir: &Path) -> Result<TrainState> {
    let text = std::fs::read_to_string(dir.join(MANIFEST))
        .map_err(|e| ck_err(dir, format!("no readable {MANIFEST}: {e}")))?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| ck_err(dir, format!("{MANIFEST} is corrupt: {e}")))?;
    for f in [MODEL, OPTIMIZER] {
        let want = m
            .files
            .get(f)
            .ok_or_else(|| ck_err(dir, format!("{MANIFEST} lists no {f}")))?;
        let got = sha256(&dir.join(f)).map_err(|e| ck_err(dir, e.to_string()))?;
        if &got != want {
            return Err(ck_err(
                dir,
                format!("{f} fails its SHA-256 check: the file is corrupt"),
            ));
        }
    }
    Ok(m.state)
}

/// Sets the variables of `vs` from a checkpoint's model file (every variable must be there
/// with its shape).
pub fn load_model(dir: &Path, vs: &mut nn::VarStore) -> Result<()> {
    let path = dir.join(MODEL);
    let saved: BTreeMap<String, Tensor> = Tensor::read_safetensors(&path)
        .map_err(|e| ck_err(dir, e.to_string()))?
        .into_iter()
        .collect();
    set_variables(vs, &saved, |name, _| {
        ck_err(
            dir,
            format!(
                "`{name}` is missing or has another shape: was the checkpoint written by another model?"
            ),
        )
    })
}

/// Copies `saved` into every variable of `vs`, in name order (so that the first mismatch is
/// the same on every run); a variable that `saved` lacks, or holds with another shape, is the
/// error `mismatch(name, shape)`. Tensors of `saved` that `vs` does not have are ignored.
pub(crate) fn set_variables(
    vs: &nn::VarStore,
    saved: &BTreeMap<String, Tensor>,
    mismatch: impl Fn(&str, &[i64]) -> Error,
) -> Result<()> {
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    tch::no_grad(|| -> Result<()> {
        for (name, mut var) in vars {
            let src = saved
                .get(&name)
                .filter(|t| t.size() == var.size())
                .ok_or_else(|| mismatch(&name, &var.size()))?;
            var.f_copy_(&src.f_to_device(var.device())?.f_to_kind(var.kind())?)?;
        }
        Ok(())
    })
}

/// Verifies a checkpoint and restores the model, the optimizers `opts` (none for a model
/// alone) and the state.
pub fn load(dir: &Path, vs: &mut nn::VarStore, opts: &mut [&mut Optimizer]) -> Result<TrainState> {
    let state = verify(dir)?;
    load_verified(dir, vs, opts)?;
    Ok(state)
}

/// [`load`] without the checksums, for a checkpoint that [`verify`] has just passed.
pub(crate) fn load_verified(
    dir: &Path,
    vs: &mut nn::VarStore,
    opts: &mut [&mut Optimizer],
) -> Result<()> {
    load_model(dir, vs)?;
    if !opts.is_empty() {
        let path = dir.join(OPTIMIZER);
        let saved: BTreeMap<String, Tensor> = Tensor::read_safetensors(&path)
            .map_err(|e| ck_err(dir, e.to_string()))?
            .into_iter()
            .collect();
        for opt in opts {
            opt.load_state(&saved)
                .map_err(|e| ck_err(dir, e.to_string()))?;
        }
    }
    Ok(())
}

/// The complete checkpoints under `root` (temporary directories ignored), by step.
pub fn list(root: &Path) -> Result<Vec<(usize, PathBuf)>> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(root) else {
        return Ok(out);
    };
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        if let Some(step) = file
            .strip_prefix("step-")
            .and_then(|s| s.parse::<usize>().ok())
            && e.path().join(MANIFEST).is_file()
        {
            out.push((step, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Removes all but the last `keep_last` checkpoints and the one at `keep` (the best).
pub fn prune(root: &Path, keep_last: usize, keep: Option<usize>) -> Result<()> {
    let all = list(root)?;
    let cut = all.len().saturating_sub(keep_last);
    for (step, dir) in &all[..cut] {
        if Some(*step) != keep {
            std::fs::remove_dir_all(dir).map_err(Error::io(dir))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optim::OptimizerConfig;
    use tch::{Device, Kind};

    #[test]
    fn save_load_prune_and_detect_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().randn("w", &[3, 2], 0.0, 1.0);
        let mut opt = Optimizer::new(&vs, &OptimizerConfig::adam(0.1), &[]).unwrap();
        (&w * 2.0).sum(Kind::Float).backward();
        opt.step(0.1).unwrap();
        let mut st = TrainState::new(7);
        st.step = 5;
        st.best = Some(0.5);
        let ck = save(dir.path(), &vs, &[&opt], &st).unwrap();
        assert_eq!(ck.file_name().unwrap(), "step-00000005");

        let mut vs2 = nn::VarStore::new(Device::Cpu);
        let w2 = vs2.root().zeros("w", &[3, 2]);
        let mut opt2 = Optimizer::new(&vs2, &OptimizerConfig::adam(0.1), &[]).unwrap();
        let back = load(&ck, &mut vs2, &mut [&mut opt2]).unwrap();
        assert_eq!(back, st);
        assert!(w2.equal(&w));
        assert_eq!(opt2.steps(), 1);
        let (s1, s2) = (opt.state(), opt2.state());
        assert!(s1["w#1"].equal(&s2["w#1"]));

        // a flipped byte is detected
        let model = ck.join(MODEL);
        let mut bytes = std::fs::read(&model).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&model, bytes).unwrap();
        let e = load(&ck, &mut vs2, &mut []).unwrap_err().to_string();
        assert!(e.contains("SHA-256"), "{e}");
        // a model of another shape is refused
        let mut vs3 = nn::VarStore::new(Device::Cpu);
        let _w3 = vs3.root().zeros("w", &[2, 2]);
        st.step = 6;
        let ck6 = save(dir.path(), &vs, &[&opt], &st).unwrap();
        assert!(
            load(&ck6, &mut vs3, &mut [])
                .unwrap_err()
                .to_string()
                .contains("another shape")
        );
        // half-written checkpoints are not listed; pruning keeps the last N and the best
        std::fs::create_dir_all(dir.path().join(".step-00000009.tmp")).unwrap();
        for s in [7, 8] {
            st.step = s;
            save(dir.path(), &vs, &[&opt], &st).unwrap();
        }
        let steps = |d: &Path| {
            list(d)
                .unwrap()
                .into_iter()
                .map(|(s, _)| s)
                .collect::<Vec<_>>()
        };
        assert_eq!(steps(dir.path()), [5, 6, 7, 8]);
        prune(dir.path(), 2, Some(5)).unwrap();
        assert_eq!(steps(dir.path()), [5, 7, 8]);
        assert!(matches!(
            verify(&dir.path().join("nothing")),
            Err(Error::Checkpoint { .. })
        ));
    }
}
