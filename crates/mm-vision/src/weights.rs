//! Weights as safetensors files with PyTorch state-dict names.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use tch::{Device, Kind, Tensor, nn};

use crate::error::{Error, Result};

/// How [`load_safetensors`] matches file names to the model's.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Prefix of the model's names in the file (e.g. `"backbone."`), stripped before matching.
    pub prefix: String,
    /// Fail on file entries the model does not use (PyTorch's `strict=True`). BatchNorm's
    /// `num_batches_tracked` counters are always ignored: tch keeps none.
    pub strict: bool,
    /// Load only the variables whose names start with this prefix (e.g. `"image.backbone."`
    /// for a backbone inside a larger model), matched without it; the others are untouched.
    pub var_prefix: String,
}

/// What [`load_safetensors`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    /// Variables set from the file.
    pub loaded: usize,
    /// File entries (under the prefix) the model does not use, `num_batches_tracked` excluded.
    pub unused: Vec<String>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

fn kind_of(name: &str, dtype: Dtype) -> Result<Kind> {
    Ok(match dtype {
        Dtype::F32 => Kind::Float,
        Dtype::F64 => Kind::Double,
        Dtype::F16 => Kind::Half,
        Dtype::BF16 => Kind::BFloat16,
        other => {
            return Err(Error::UnsupportedDtype {
                name: name.to_owned(),
                dtype: format!("{other:?}"),
            });
        }
    })
}

/// Sets every variable of `vs` from the safetensors file `path`, converting dtypes to the
/// variable's kind and copying to its device.
///
/// Every variable must be present with the same shape ([`Error::MissingWeights`],
/// [`Error::WeightShape`]); entries the model does not use are reported, or are an error with
/// [`LoadOptions::strict`]. Nothing is modified unless every check passes.
pub fn load_safetensors(
    vs: &mut nn::VarStore,
    path: &Path,
    opts: &LoadOptions,
) -> Result<LoadReport> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| Error::Safetensors {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let vars: HashMap<String, Tensor> = vs
        .variables()
        .into_iter()
        .filter_map(|(n, t)| {
            n.strip_prefix(opts.var_prefix.as_str())
                .map(|k| (k.to_owned(), t))
        })
        .collect();
    if vars.is_empty() {
        return Err(Error::InvalidParameter {
            name: "var_prefix",
            reason: format!("no variable of the model starts with `{}`", opts.var_prefix),
        });
    }
    let mut missing = Vec::new();
    let mut plan = Vec::with_capacity(vars.len());
    for (name, var) in &vars {
        let key = format!("{}{name}", opts.prefix);
        let view = match st.tensor(&key) {
            Ok(v) => v,
            Err(_) => {
                missing.push(name.clone());
                continue;
            }
        };
        let got: Vec<i64> = view.shape().iter().map(|&d| d as i64).collect();
        if got != var.size() {
            return Err(Error::WeightShape {
                name: key,
                expected: var.size(),
                got,
            });
        }
        let kind = kind_of(&key, view.dtype())?;
        plan.push((var, view, got, kind));
    }
    if !missing.is_empty() {
        missing.sort();
        return Err(Error::MissingWeights {
            path: path.to_owned(),
            names: missing,
        });
    }
    let used: BTreeSet<String> = vars.keys().map(|n| format!("{}{n}", opts.prefix)).collect();
    let unused: Vec<String> = st
        .names()
        .into_iter()
        .filter(|n| n.starts_with(&opts.prefix))
        .filter(|n| !used.contains(*n) && !n.ends_with("num_batches_tracked"))
        .map(str::to_owned)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if opts.strict && !unused.is_empty() {
        return Err(Error::UnexpectedWeights {
            path: path.to_owned(),
            names: unused,
        });
    }
    tch::no_grad(|| -> Result<()> {
        for (var, view, shape, kind) in &plan {
            let src = Tensor::f_from_data_size(view.data(), shape, *kind)?
                .f_to_device(var.device())?
                .f_to_kind(var.kind())?;
            var.shallow_clone().f_copy_(&src)?;
        }
        Ok(())
    })?;
    Ok(LoadReport {
        loaded: plan.len(),
        unused,
    })
}

/// Writes every variable of `vs` to `path` as safetensors (`F32`/`F64`/`F16`/`BF16` as
/// stored), atomically: a temporary file in the same directory, then a rename. `metadata` goes
/// into the header's `__metadata__`.
pub fn save_safetensors(
    vs: &nn::VarStore,
    path: &Path,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let vars: BTreeMap<String, Tensor> = vs.variables().into_iter().collect();
    save_tensors(&vars, path, metadata)
}

/// Writes named tensors to `path` as safetensors, atomically (see [`save_safetensors`]).
pub fn save_tensors(
    tensors: &BTreeMap<String, Tensor>,
    path: &Path,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let mut buffers = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let dtype = match t.kind() {
            Kind::Float => Dtype::F32,
            Kind::Double => Dtype::F64,
            Kind::Half => Dtype::F16,
            Kind::BFloat16 => Dtype::BF16,
            other => {
                return Err(Error::UnsupportedDtype {
                    name: name.clone(),
                    dtype: format!("{other:?}"),
                });
            }
        };
        let t = t.f_to_device(Device::Cpu)?.f_contiguous()?;
        let numel = t.numel();
        let mut data = vec![0u8; numel * t.kind().elt_size_in_bytes()];
        t.f_copy_data_u8(&mut data, numel)?;
        let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
        buffers.push((name.clone(), dtype, shape, data));
    }
    let views = buffers
        .iter()
        .map(|(n, d, s, b)| {
            TensorView::new(*d, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| Error::Safetensors {
                    path: path.to_owned(),
                    reason: e.to_string(),
                })
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = safetensors::serialize(views, metadata).map_err(|e| Error::Safetensors {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` through a temporary sibling and a rename ([`mm_core::write_atomic`]:
/// a failed write leaves neither a temporary nor a partial file).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    mm_core::write_atomic(path, bytes).map_err(|e| io_err(&e.path)(e.source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Arch, BackboneConfig, backbone};

    #[test]
    fn round_trip_restores_outputs_and_checks_names_and_shapes() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = backbone(&vs.root(), &BackboneConfig::headless(Arch::Resnet18)).unwrap();
        let x = Tensor::randn([1, 3, 32, 32], (Kind::Float, Device::Cpu));
        let want = net.pooled(&x, false).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r18.safetensors");
        save_safetensors(&vs, &path, None).unwrap();

        tch::manual_seed(2);
        let mut vs2 = nn::VarStore::new(Device::Cpu);
        let net2 = backbone(&vs2.root(), &BackboneConfig::headless(Arch::Resnet18)).unwrap();
        assert!(
            !net2
                .pooled(&x, false)
                .unwrap()
                .allclose(&want, 1e-5, 1e-6, false)
        );
        let report = load_safetensors(&mut vs2, &path, &LoadOptions::default()).unwrap();
        assert_eq!(report.loaded, vs.variables().len());
        assert!(report.unused.is_empty());
        assert!(
            net2.pooled(&x, false)
                .unwrap()
                .allclose(&want, 0.0, 0.0, false)
        );

        // a model with a classifier misses `fc.*`
        let mut vs3 = nn::VarStore::new(Device::Cpu);
        let cfg = BackboneConfig {
            num_classes: Some(10),
            ..BackboneConfig::headless(Arch::Resnet18)
        };
        backbone(&vs3.root(), &cfg).unwrap();
        match load_safetensors(&mut vs3, &path, &LoadOptions::default()) {
            Err(Error::MissingWeights { names, .. }) => assert_eq!(names, ["fc.bias", "fc.weight"]),
            other => panic!("{other:?}"),
        }
        // a ResNet-34 finds its extra blocks missing; a wrong width is a shape error
        let mut vs4 = nn::VarStore::new(Device::Cpu);
        backbone(&vs4.root(), &BackboneConfig::headless(Arch::Resnet34)).unwrap();
        assert!(matches!(
            load_safetensors(&mut vs4, &path, &LoadOptions::default()),
            Err(Error::MissingWeights { .. })
        ));
        let mut vs5 = nn::VarStore::new(Device::Cpu);
        let _w5 = (vs5.root() / "conv1").zeros("weight", &[32, 3, 7, 7]);
        assert!(matches!(
            load_safetensors(&mut vs5, &path, &LoadOptions::default()),
            Err(Error::WeightShape { .. })
        ));
        // strict loading of a subset fails; non-strict reports what went unused
        let mut vs6 = nn::VarStore::new(Device::Cpu);
        let w = (vs6.root() / "conv1").zeros("weight", &[64, 3, 7, 7]);
        let strict = LoadOptions {
            strict: true,
            ..Default::default()
        };
        assert!(matches!(
            load_safetensors(&mut vs6, &path, &strict),
            Err(Error::UnexpectedWeights { .. })
        ));
        assert_eq!(
            w.abs().sum(Kind::Float).double_value(&[]),
            0.0,
            "untouched on error"
        );
        let r = load_safetensors(&mut vs6, &path, &LoadOptions::default()).unwrap();
        assert_eq!(r.loaded, 1);
        assert!(r.unused.contains(&"layer4.1.bn2.running_var".to_string()));
        assert!(w.abs().sum(Kind::Float).double_value(&[]) > 0.0);
    }

    #[test]
    fn prefixes_dtypes_and_bad_files() {
        let mut named = BTreeMap::new();
        named.insert(
            "model.w".to_string(),
            Tensor::from_slice(&[1.5f64, -2.0]).to_kind(Kind::BFloat16),
        );
        named.insert("model.n".to_string(), Tensor::from_slice(&[3i64]));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mixed.safetensors");
        assert!(matches!(
            save_tensors(&named, &path, None),
            Err(Error::UnsupportedDtype { .. })
        ));
        named.remove("model.n");
        save_tensors(&named, &path, None).unwrap();
        let mut vs = nn::VarStore::new(Device::Cpu);
        let w = vs.root().zeros("w", &[2]);
        let opts = LoadOptions {
            prefix: "model.".into(),
            strict: true,
            ..Default::default()
        };
        load_safetensors(&mut vs, &path, &opts).unwrap();
        assert_eq!(Vec::<f32>::try_from(&w).unwrap(), [1.5, -2.0]);

        // a backbone inside a larger model: only `image.` variables load, by their inner names
        let mut big = nn::VarStore::new(Device::Cpu);
        let inner = (big.root() / "image").zeros("w", &[2]);
        let other = (big.root() / "head").zeros("w", &[3]);
        let nested = LoadOptions {
            prefix: "model.".into(),
            strict: true,
            var_prefix: "image.".into(),
        };
        load_safetensors(&mut big, &path, &nested).unwrap();
        assert_eq!(Vec::<f32>::try_from(&inner).unwrap(), [1.5, -2.0]);
        assert_eq!(Vec::<f32>::try_from(&other).unwrap(), [0.0; 3]);
        let nowhere = LoadOptions {
            var_prefix: "text.".into(),
            ..nested
        };
        assert!(load_safetensors(&mut big, &path, &nowhere).is_err());

        let junk = dir.path().join("junk.safetensors");
        std::fs::write(&junk, b"not a safetensors file").unwrap();
        assert!(matches!(
            load_safetensors(&mut vs, &junk, &opts),
            Err(Error::Safetensors { .. })
        ));
        assert!(matches!(
            load_safetensors(&mut vs, &dir.path().join("absent.safetensors"), &opts),
            Err(Error::Io { .. })
        ));
    }
}
