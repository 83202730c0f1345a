//! Frozen sub-models: a teacher or an encoder that a task loads from another run's checkpoint
//! or from a safetensors file and never trains. Its variables live in their own var store, so
//! no optimizer sees them and no checkpoint of the task writes them; they require no gradient.
//! The task reports where each came from ([`crate::Task::frozen`]); checkpoints record that
//! with the file's SHA-256, and `--resume` refuses a run whose frozen file has changed since.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Device, Tensor, nn};

use crate::error::{Error, Result};

/// Where a frozen sub-model's weights came from, as a checkpoint records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenSource {
    /// The task's name for it (`teacher`, `image_encoder`).
    pub name: String,
    /// The safetensors file its weights were read from.
    pub path: PathBuf,
    /// That file's SHA-256 when it was read.
    pub sha256: String,
}

/// A frozen sub-model's var store and where it came from.
#[derive(Debug)]
pub struct Frozen {
    vs: nn::VarStore,
    source: FrozenSource,
}

impl Frozen {
    /// Builds a network with `build` in a fresh var store on `device`, then sets every one of
    /// its variables from `path` (a safetensors file, a checkpoint directory or a run
    /// directory); the file may hold more tensors (a whole run's model for its encoder), but
    /// a variable that is missing or has another shape (a file of another architecture) is an
    /// error that names it. No variable requires a gradient afterwards.
    pub fn load<M>(
        name: &str,
        path: &Path,
        device: Device,
        build: impl FnOnce(&nn::Path<'_>) -> Result<M>,
    ) -> Result<(Self, M)> {
        let file = crate::run::weights_file(path)?;
        let mut vs = nn::VarStore::new(device);
        let model = build(&vs.root())?;
        let saved: BTreeMap<String, Tensor> = Tensor::read_safetensors(&file)
            .map_err(|e| Error::Config(format!("{name} from {}: {e}", file.display())))?
            .into_iter()
            .collect();
        crate::checkpoint::set_variables(&vs, &saved, |var, shape| {
            Error::Config(format!(
                "{name} from {}: `{var}` ({shape:?}) is missing or has another shape there: \
                 weights of another architecture?",
                file.display()
            ))
        })?;
        vs.freeze();
        let source = FrozenSource {
            name: name.to_owned(),
            sha256: crate::checkpoint::sha256(&file)?,
            path: file,
        };
        Ok((Self { vs, source }, model))
    }

    /// Where the weights came from.
    pub fn source(&self) -> &FrozenSource {
        &self.source
    }

    /// The frozen variables (not the task's: no optimizer or checkpoint sees these).
    pub fn var_store(&self) -> &nn::VarStore {
        &self.vs
    }
}

/// An error unless each source recorded in a checkpoint still names a file with the same
/// SHA-256 as the one the task has now loaded.
pub(crate) fn check_unchanged(recorded: &[FrozenSource], now: &[FrozenSource]) -> Result<()> {
    for r in recorded {
        match now.iter().find(|n| n.name == r.name) {
            Some(n) if n.sha256 == r.sha256 => {}
            Some(n) => {
                return Err(Error::FrozenChanged {
                    name: r.name.clone(),
                    path: n.path.clone(),
                    recorded: r.sha256.clone(),
                    now: n.sha256.clone(),
                });
            }
            None => {
                return Err(Error::Config(format!(
                    "the run was trained with a frozen `{}` ({}) that the task no longer loads",
                    r.name,
                    r.path.display()
                )));
            }
        }
    }
    Ok(())
}
