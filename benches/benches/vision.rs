//! Backbone forward on CPU at batch 8 (eval mode, no autograd). PyTorch's times for the same
//! models come from `scripts/bench_vision.py`, which runs both side by side.
#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mm_vision::{Arch, BackboneConfig, backbone};
use tch::{Device, Kind, Tensor, nn};

fn forward(c: &mut Criterion) {
    let mut g = c.benchmark_group("backbone_forward_b8");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for (arch, size) in [
        (Arch::SmallCnn, 64),
        (Arch::Resnet18, 224),
        (Arch::Resnet50, 224),
    ] {
        tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let net = backbone(&vs.root(), &BackboneConfig::headless(arch)).unwrap();
        let x = Tensor::randn([8, 3, size, size], (Kind::Float, Device::Cpu));
        g.bench_with_input(BenchmarkId::new(arch.name(), size), &x, |b, x| {
            b.iter(|| tch::no_grad(|| net.pooled(x, false).unwrap()))
        });
    }
    g.finish();
}

criterion_group!(benches, forward);
criterion_main!(benches);
