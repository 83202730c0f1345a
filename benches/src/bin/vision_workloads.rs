//! Times backbone forwards (eval mode, no autograd) for `scripts/bench_vision.py` and prints
//! one JSON line:
//!
//! ```text
//! vision-workloads --arch resnet50 [--batch 8] [--size 224] [--threads N] [--repeat R]
//!                  [--device cpu|cuda] [--train] [--autocast off|bf16|fp16]
//! ```
//!
//! The input is `randn([batch, 3, size, size])` with seed 0; weights are torchvision's random
//! initialisation (timings do not depend on weight values). `--train` times forward + backward
//! of a cross-entropy loss on the logits instead (training mode, batch statistics); `--autocast`
//! runs the step under libtorch's autocast in that dtype (`mm_train::autocast`). Times are
//! milliseconds per batch: the median and the best of `R` runs after a 0.5 s warm-up.

use std::time::Instant;

use anyhow::{Context, Result, bail};
use mm_vision::{Arch, BackboneConfig, backbone};
use serde_json::json;
use tch::{Device, Kind, Tensor, nn};

fn main() -> Result<()> {
    let (mut arch, mut batch, mut size, mut threads, mut repeat) =
        (Arch::Resnet50, 8i64, 224i64, 0usize, 10usize);
    let (mut device, mut train) = (Device::Cpu, false);
    let mut autocast = mm_train::Autocast::Off;
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--arch" => arch = val()?.parse()?,
            "--batch" => batch = val()?.parse()?,
            "--size" => size = val()?.parse()?,
            "--threads" => threads = val()?.parse()?,
            "--repeat" => repeat = val()?.parse()?,
            "--device" => {
                device = match val()?.as_str() {
                    "cpu" => Device::Cpu,
                    "cuda" => Device::Cuda(0),
                    other => bail!("unknown device {other}"),
                }
            }
            "--train" => train = true,
            "--autocast" => {
                autocast = serde_json::from_value(serde_json::Value::String(val()?))
                    .context("--autocast: off, bf16 or fp16")?
            }
            other => bail!("unknown flag {other}"),
        }
    }
    if threads > 0 {
        tch::set_num_threads(threads as i32);
    }
    tch::manual_seed(0);
    let vs = nn::VarStore::new(device);
    let cfg = BackboneConfig {
        num_classes: (arch != Arch::SmallCnn).then_some(1000),
        ..BackboneConfig::headless(arch)
    };
    let net = backbone(&vs.root(), &cfg)?;
    let x = Tensor::randn([batch, 3, size, size], (Kind::Float, device));
    let labels = Tensor::zeros([batch], (Kind::Int64, device));
    let step_inner = || -> Result<()> {
        if train {
            vs.trainable_variables().iter().for_each(|v| {
                let mut g = v.grad();
                if g.defined() {
                    let _ = g.zero_();
                }
            });
            let out = if arch == Arch::SmallCnn {
                net.pooled(&x, true)?
            } else {
                net.logits(&x, true)?
            };
            out.cross_entropy_for_logits(&labels).backward();
        } else {
            let out = tch::no_grad(|| {
                if arch == Arch::SmallCnn {
                    net.pooled(&x, false)
                } else {
                    net.logits(&x, false)
                }
            })?;
            let _ = std::hint::black_box(out);
        }
        Ok(())
    };
    let step = || -> Result<()> {
        mm_train::autocast::with_autocast(device, autocast, step_inner)?;
        if device.is_cuda() {
            tch::Cuda::synchronize(0);
        }
        Ok(())
    };
    let warm = Instant::now();
    while warm.elapsed().as_secs_f64() < 0.5 {
        step()?;
    }
    let mut times = (0..repeat.max(1))
        .map(|_| {
            let t = Instant::now();
            step().map(|_| t.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<Vec<_>>>()?;
    times.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({
            "impl": "mm",
            "arch": arch.name(),
            "batch": batch,
            "size": size,
            "threads": tch::get_num_threads(),
            "device": format!("{device:?}"),
            "train": train,
            "autocast": autocast,
            "median_ms": times[times.len() / 2],
            "best_ms": times[0],
        })
    );
    Ok(())
}
