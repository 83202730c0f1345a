//! `mm vision ...`: weight conversion and feature extraction.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use mm_data::{Dtype, FieldSpec, Meta, Reader, Sample, Schema, Value, Writer};
use mm_vision::image::{Transform, load_rgb, to_tensor};
use mm_vision::{
    Arch, BackboneConfig, IMAGENET_MEAN, IMAGENET_STD, LoadOptions, backbone, load_safetensors,
    normalize_batch,
};
use tch::{Device, Kind, Tensor, nn};

/// The converter the `convert` command runs with PyTorch's Python.
const PTH_TO_SAFETENSORS: &str = include_str!("pth_to_safetensors.py");

#[derive(Debug, Subcommand)]
pub enum VisionCommand {
    /// Convert a PyTorch state dict (.pth/.pt) to safetensors, optionally checking that it
    /// loads into a backbone. Runs PyTorch's Python (`--python`, `MM_REF_PYTHON`, or the venv
    /// of `cargo xtask setup`), since PyTorch's pickle format needs it.
    Convert {
        /// The `.pth`/`.pt` file (or a `.safetensors` file to check only).
        #[arg(long)]
        input: PathBuf,
        /// The safetensors file to write.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Check that every weight of this backbone is present with the right shape.
        #[arg(long)]
        backbone: Option<Arch>,
        /// Python with torch and safetensors.
        #[arg(long)]
        python: Option<PathBuf>,
    },
    /// Extract feature maps (or pooled vectors) of a backbone for an image, a directory of
    /// images or an mm HDF5 data set, into an mm HDF5 file (field `features`, splits kept).
    Features {
        /// A PNG/JPEG image, a directory of them, or an mm `.h5` file with an image field.
        #[arg(long)]
        images: PathBuf,
        /// The backbone.
        #[arg(long, default_value = "resnet50")]
        backbone: Arch,
        /// safetensors weights with torchvision names (omitted: random initialisation, for
        /// testing pipelines only).
        #[arg(long)]
        weights: Option<PathBuf>,
        /// The stage whose map to store (`layer4`, `block5`, ...), or `pooled`.
        #[arg(long, default_value = "layer4")]
        layer: String,
        /// Image side fed to the network (image files: resize to 256/224 of it, centre crop;
        /// HDF5: bilinear resize when it differs). Default: 224 for image files, the stored
        /// size for HDF5.
        #[arg(long)]
        size: Option<u32>,
        /// The image field of an HDF5 input.
        #[arg(long, default_value = "image")]
        field: String,
        /// Images per forward pass.
        #[arg(long, default_value_t = 32)]
        batch_size: usize,
        /// auto, cpu, cuda or cuda:N.
        #[arg(long, default_value = "auto")]
        device: String,
        /// Output file.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: VisionCommand) -> Result<()> {
    match cmd {
        VisionCommand::Convert {
            input,
            out,
            backbone,
            python,
        } => convert(&input, out.as_deref(), backbone, python),
        VisionCommand::Features {
            images,
            backbone,
            weights,
            layer,
            size,
            field,
            batch_size,
            device,
            out,
        } => {
            let device = crate::parse_device(&device)?;
            let job = FeatureJob {
                arch: backbone,
                weights,
                layer,
                size,
                field,
                batch_size: batch_size.max(1),
                device,
            };
            job.run(&images, &out)
        }
    }
}

/// PyTorch's Python: `--python`, `MM_REF_PYTHON`, the setup venv, then `python3`.
fn torch_python(explicit: Option<PathBuf>) -> PathBuf {
    explicit
        .or_else(|| std::env::var_os("MM_REF_PYTHON").map(PathBuf::from))
        .or_else(|| {
            let venv = std::env::var_os("MM_TORCH_VENV")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/opt/venv-torch-2.11.0"));
            Some(venv.join("bin/python")).filter(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("python3"))
}

fn convert(
    input: &Path,
    out: Option<&Path>,
    arch: Option<Arch>,
    python: Option<PathBuf>,
) -> Result<()> {
    if !input.is_file() {
        bail!("{}: no such file", input.display());
    }
    let is_st = input.extension().is_some_and(|e| e == "safetensors");
    let file = if is_st {
        input.to_owned()
    } else {
        let Some(out) = out else {
            bail!("--out is required to convert {}", input.display());
        };
        let py = torch_python(python);
        // deleted when `script` drops, also when python cannot be started
        let mut script = tempfile::Builder::new()
            .prefix("mm-pth-to-safetensors-")
            .suffix(".py")
            .tempfile()
            .context("creating the converter script")?;
        std::io::Write::write_all(script.as_file_mut(), PTH_TO_SAFETENSORS.as_bytes())
            .context("writing the converter script")?;
        let o = Command::new(&py)
            .arg(script.path())
            .arg(input)
            .arg(out)
            .output()
            .with_context(|| format!("running {} (set --python or MM_REF_PYTHON to a Python with torch and safetensors)", py.display()))?;
        drop(script);
        if !o.status.success() {
            bail!(
                "converting {} failed: {}",
                input.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
        println!(
            "wrote {}: {}",
            out.display(),
            String::from_utf8_lossy(&o.stdout).trim()
        );
        out.to_owned()
    };
    if let Some(arch) = arch {
        let names = tch::Tensor::read_safetensors(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let head = names
            .iter()
            .find(|(n, _)| n == "fc.weight" || n == "classifier.6.weight")
            .map(|(_, t)| t.size()[0]);
        let mut vs = nn::VarStore::new(Device::Cpu);
        let cfg = BackboneConfig {
            num_classes: head,
            ..BackboneConfig::headless(arch)
        };
        backbone(&vs.root(), &cfg)?;
        let r = load_safetensors(&mut vs, &file, &LoadOptions::default())
            .with_context(|| format!("{} does not fit {arch}", file.display()))?;
        println!(
            "ok: {} loads into {arch}{}: {} tensors; {} unused{}",
            file.display(),
            head.map(|n| format!(" with {n} classes"))
                .unwrap_or_default(),
            r.loaded,
            r.unused.len(),
            if r.unused.is_empty() {
                String::new()
            } else {
                format!(" (e.g. {})", r.unused[0])
            }
        );
    }
    Ok(())
}

struct FeatureJob {
    arch: Arch,
    weights: Option<PathBuf>,
    layer: String,
    size: Option<u32>,
    field: String,
    batch_size: usize,
    device: Device,
}

/// Where images come from: files (decoded on the fly) or an HDF5 field.
enum Source {
    Files(Vec<PathBuf>),
    H5(Reader),
}

impl FeatureJob {
    fn run(&self, images: &Path, out: &Path) -> Result<()> {
        let mut vs = nn::VarStore::new(self.device);
        let net = backbone(&vs.root(), &BackboneConfig::headless(self.arch))?;
        match &self.weights {
            Some(w) => {
                let r = load_safetensors(&mut vs, w, &LoadOptions::default())
                    .with_context(|| format!("loading {}", w.display()))?;
                tracing::info!(loaded = r.loaded, unused = r.unused.len(), "weights");
            }
            None => tracing::warn!(
                "no --weights: features of a randomly initialised {}",
                self.arch
            ),
        }
        let pooled = self.layer == "pooled";
        if !pooled && !net.stages().contains(&self.layer) {
            bail!(
                "{} has no stage `{}`; choose pooled or one of {:?}",
                self.arch,
                self.layer,
                net.stages()
            );
        }
        let is_image = |p: &Path| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        };
        if !images.exists() {
            bail!("{}: no such file or directory", images.display());
        }
        let source = if images.is_file() && is_image(images) {
            Source::Files(vec![images.to_path_buf()])
        } else if images.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(images)
                .with_context(|| format!("listing {}", images.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_image(p))
                .collect();
            files.sort();
            if files.is_empty() {
                bail!("{}: no .png/.jpg/.jpeg images", images.display());
            }
            Source::Files(files)
        } else {
            let r = Reader::open(images).with_context(|| {
                format!(
                    "opening {} as an mm HDF5 data set (--images takes a .png/.jpg/.jpeg \
                     image, a directory of them, or an mm HDF5 file)",
                    images.display()
                )
            })?;
            let spec = r.schema().fixed.iter().find(|f| f.name == self.field);
            match spec {
                Some(f) if f.dtype == Dtype::U8 && f.shape.len() == 3 && f.shape[2] == 3 => {}
                _ => bail!(
                    "{}: no uint8 [H, W, 3] field `{}` (fields: {:?})",
                    images.display(),
                    self.field,
                    r.schema().fixed.iter().map(|f| &f.name).collect::<Vec<_>>()
                ),
            }
            Source::H5(r)
        };
        let n = match &source {
            Source::Files(f) => f.len(),
            Source::H5(r) => r.len(),
        };
        let bar = ProgressBar::new(n as u64);
        bar.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} images {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let mut writer: Option<Writer> = None;
        let mut shape = Vec::new();
        for start in (0..n).step_by(self.batch_size) {
            let end = (start + self.batch_size).min(n);
            let x = self.batch(&source, start, end)?;
            let feats = tch::no_grad(|| -> Result<Tensor> {
                Ok(if pooled {
                    net.pooled(&x, false)?
                } else {
                    net.feature_map(&x, &self.layer, false)?
                })
            })?
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous();
            let size = feats.size();
            if writer.is_none() {
                shape = size[1..].iter().map(|&d| d as usize).collect();
                let schema = Schema {
                    fixed: vec![FieldSpec {
                        name: "features".into(),
                        dtype: Dtype::F32,
                        shape: shape.clone(),
                        compress: false,
                    }],
                    ragged: vec![],
                };
                let meta = Meta {
                    source: "mm vision features".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    params: serde_json::json!({
                        "input": images.display().to_string(),
                        "backbone": self.arch.name(),
                        "weights": self.weights.as_ref().map(|w| w.display().to_string()),
                        "layer": self.layer,
                        "files": match &source {
                            Source::Files(f) => f.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                            Source::H5(_) => vec![],
                        },
                    }),
                };
                writer = Some(Writer::create(out, &schema, &meta)?);
            }
            let Some(w) = writer.as_mut() else {
                unreachable!()
            };
            let per: usize = shape.iter().product();
            let flat = Vec::<f32>::try_from(feats.view([-1]))?;
            for (k, chunk) in flat.chunks(per).enumerate() {
                let arr = ndarray::ArrayD::from_shape_vec(shape.clone(), chunk.to_vec())?;
                let mut s = Sample::default();
                s.fixed.insert("features".into(), Value::F32(arr));
                w.push(&s)
                    .with_context(|| format!("writing features of image {}", start + k))?;
            }
            bar.inc((end - start) as u64);
        }
        bar.finish_and_clear();
        let splits = match &source {
            Source::H5(r) => r
                .split_names()?
                .into_iter()
                .map(|name| Ok((name.clone(), r.split(&name)?)))
                .collect::<Result<BTreeMap<_, _>>>()?,
            Source::Files(_) => BTreeMap::new(),
        };
        let Some(w) = writer else { bail!("no images") };
        let path = w.finish(&splits)?;
        println!(
            "wrote {}: {n} x {:?} features of {} {}",
            path.display(),
            shape,
            self.arch,
            self.layer
        );
        Ok(())
    }

    /// Images `start..end` as a normalised `[B, 3, S, S]` batch on the device.
    fn batch(&self, source: &Source, start: usize, end: usize) -> Result<Tensor> {
        let u8s = match source {
            Source::Files(files) => {
                let t = Transform::eval(self.size.unwrap_or(224));
                let mut rng = rand::rng();
                let imgs = files[start..end]
                    .iter()
                    .map(|p| Ok(t.apply(&load_rgb(p)?, &mut rng)?))
                    .collect::<Result<Vec<_>>>()?;
                to_tensor(&imgs)?
            }
            Source::H5(r) => r
                .read_range_fields(start, end, &[self.field.as_str()])?
                .tensor(&self.field, Device::Cpu)?,
        };
        let x = normalize_batch(&u8s, &IMAGENET_MEAN, &IMAGENET_STD, self.device)?;
        Ok(match (source, self.size) {
            (Source::H5(_), Some(s)) if x.size()[2] != s as i64 || x.size()[3] != s as i64 => {
                x.f_upsample_bilinear2d([s as i64, s as i64], false, None, None)?
            }
            _ => x,
        })
    }
}
