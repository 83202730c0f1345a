//! One optimizer update on CPU (zero_grad, gradient-norm clipping, Adam step) over the
//! parameters of a small CNN (few small tensors: per-kernel overhead dominates) and of
//! ResNet-18 (62 tensors, 11.7 M values: memory traffic dominates), with glibc set up as the
//! `mm` command sets it.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mm_train::{Optimizer, OptimizerConfig};
use mm_vision::{Arch, BackboneConfig, backbone};
use tch::{Device, Kind, nn};

fn update(c: &mut Criterion) {
    // as the `mm` command runs (glibc keeps freed buffers instead of unmapping them)
    mm_train::malloc::keep_freed_buffers();
    let mut g = c.benchmark_group("optimizer_update");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    for arch in [Arch::SmallCnn, Arch::Resnet18] {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let _net = backbone(&vs.root(), &BackboneConfig::headless(arch)).unwrap();
        // gradients for every variable
        let loss = vs
            .trainable_variables()
            .iter()
            .map(|v| v.square().sum(Kind::Float))
            .reduce(|a, b| a + b)
            .unwrap();
        loss.backward();
        let mut opt = Optimizer::new(&vs, &OptimizerConfig::adam(1e-3), &[]).unwrap();
        let n = vs.trainable_variables().len();
        g.bench_function(BenchmarkId::new(arch.name(), n), |b| {
            b.iter(|| {
                let _ = opt.clip_grad_norm(1.0).unwrap();
                opt.step(1e-3).unwrap();
                // clears the gradients as a training step would (kept defined)
                let _ = opt.zero_grad();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, update);
criterion_main!(benches);
