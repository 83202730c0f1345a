//! CUDA checks, compiled only with feature `cuda` (the GPU bundle) and run on a CUDA machine.
#![cfg(feature = "cuda")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mm_fusion::{MapNorm, audio_visual_attention};
use mm_tasks::sound_tagging::{self, SoundTagging};
use mm_vision::{Backbone, SmallCnn, SmallCnnConfig};
use tch::{Device, Kind, Tensor, nn};

#[test]
fn cuda_and_cudnn_are_available() {
    assert!(tch::Cuda::is_available(), "CUDA not available");
    assert!(tch::Cuda::device_count() >= 1);
    assert!(tch::Cuda::cudnn_is_available(), "cuDNN not available");
}

#[test]
fn small_cnn_gives_the_same_numbers_on_cpu_and_cuda() {
    tch::manual_seed(0);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let cnn = SmallCnn::new(&vs.root(), &SmallCnnConfig::default()).unwrap();
    let x = Tensor::randn([4, 3, 64, 64], (Kind::Float, Device::Cpu));
    let cpu = cnn.pooled(&x, false).unwrap();
    vs.set_device(Device::Cuda(0));
    let gpu = cnn
        .pooled(&x.to(Device::Cuda(0)), false)
        .unwrap()
        .to(Device::Cpu);
    let err = (&cpu - &gpu).abs().max().double_value(&[]);
    let scale = cpu.abs().max().double_value(&[]);
    assert!(err <= 1e-4 * scale.max(1.0), "max abs error {err}");
}

#[test]
fn attention_gives_the_same_numbers_on_cpu_and_cuda() {
    let audio = Tensor::randn([3, 16], (Kind::Float, Device::Cpu));
    let visual = Tensor::randn([3, 16, 7, 7], (Kind::Float, Device::Cpu));
    let cpu = audio_visual_attention(&audio, &visual, MapNorm::Softmax).unwrap();
    let d = Device::Cuda(0);
    let gpu = audio_visual_attention(&audio.to(d), &visual.to(d), MapNorm::Softmax).unwrap();
    let err = (&cpu.weights - gpu.weights.to(Device::Cpu))
        .abs()
        .max()
        .double_value(&[]);
    assert!(err < 1e-5, "max abs error {err}");
}

#[test]
fn signal_features_on_cuda_match_the_cpu_path() {
    use mm_signal::tensor::TensorFeatures;
    use mm_signal::{DbConfig, LogMelSpectrogram, MelConfig, MelSpectrogram, StftConfig};
    let (clips, len) = (8usize, 16_000usize);
    let x = ndarray::Array2::from_shape_fn((clips, len), |(c, i)| {
        (i as f32 * 0.013 * (c + 1) as f32).sin() * 0.5 + 0.01 * ((i * 31 + c) % 7) as f32
    });
    let stft = StftConfig {
        n_fft: 512,
        win_length: Some(400),
        hop_length: Some(160),
        ..Default::default()
    };
    let mel = MelConfig {
        sample_rate_hz: 16000.0,
        n_fft: 512,
        n_mels: 80,
        fmax_hz: Some(8000.0),
        ..Default::default()
    };
    let cpu = mm_signal::batch(
        &LogMelSpectrogram {
            mel: MelSpectrogram::new(&stft, &mel).unwrap(),
            db: DbConfig::default(),
        },
        x.view(),
    )
    .unwrap();
    let flat: Vec<f32> = x.iter().copied().collect();
    let xt = Tensor::from_slice(&flat).view([clips as i64, len as i64]);
    let tf = TensorFeatures::new(&stft, Device::Cuda(0))
        .unwrap()
        .with_mel(&mel)
        .unwrap();
    let gpu = tf.log_mel(&xt, &DbConfig::default()).unwrap();
    assert_eq!(gpu.device(), Device::Cuda(0));
    let gpu: Vec<f32> = Vec::try_from(gpu.to(Device::Cpu).flatten(0, -1)).unwrap();
    let err = gpu
        .iter()
        .zip(cpu.iter())
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(err < 1e-3, "max log-mel difference {err} dB");
}

#[test]
fn sound_tagging_trains_on_cuda() {
    let dir = tempfile::tempdir().unwrap();
    let opts = mm_train::RunOptions {
        config: None,
        overrides: sound_tagging::QUICK.iter().map(|s| s.to_string()).collect(),
        device: Device::Cuda(0),
        dir: dir.path().join("run"),
        resume: false,
        progress: None,
    };
    let r = mm_train::run::train::<SoundTagging>(&sound_tagging::defaults(), &opts).unwrap();
    // the quick preset reaches 1.0 on the CPU; the prior is 1/6
    assert!(
        r.test["accuracy"] >= r.test["prior_accuracy"] + 0.5,
        "{:?}",
        r.test
    );
}

#[test]
fn word2vec_trains_on_cuda() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("c.txt");
    let text: String = (0..3000)
        .map(|i| {
            let t = i % 3;
            (0..10)
                .map(|k| format!("t{t}w{} ", (i * 7 + k * 3) % 8))
                .collect::<String>()
                + "\n"
        })
        .collect();
    std::fs::write(&p, text).unwrap();
    let cfg = mm_text::word2vec::Word2VecConfig {
        size: 16,
        sample: 0.0,
        min_count: 1,
        iter: 2,
        ..Default::default()
    };
    let emb =
        mm_text::word2vec::tensor::train_tensor(&p, &cfg, Device::Cuda(0), 4096, &mut |_, _| {})
            .unwrap();
    let near = emb.most_similar("t1w1", 3).unwrap();
    assert!(
        near.iter().filter(|(w, _)| w.starts_with("t1")).count() >= 2,
        "{near:?}"
    );
}

/// Every torchvision architecture gives the CPU's numbers on CUDA (cuDNN may use TF32 for
/// convolutions, hence a relative tolerance of 1e-2 of the output's scale), and weights saved
/// on the CPU load straight into a CUDA var store.
#[test]
fn backbones_give_the_same_numbers_on_cpu_and_cuda() {
    use mm_vision::{
        Arch, BackboneConfig, LoadOptions, backbone, load_safetensors, save_safetensors,
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for arch in [Arch::Resnet18, Arch::Resnet50, Arch::Vgg16Bn] {
        tch::manual_seed(0);
        let cfg = BackboneConfig {
            num_classes: Some(10),
            ..BackboneConfig::headless(arch)
        };
        let vs = nn::VarStore::new(Device::Cpu);
        let net = backbone(&vs.root(), &cfg).unwrap();
        let x = Tensor::randn([2, 3, 64, 64], (Kind::Float, Device::Cpu));
        let cpu = tch::no_grad(|| net.logits(&x, false).unwrap());
        let path = dir.join(format!("{arch}.safetensors"));
        save_safetensors(&vs, &path, None).unwrap();
        let mut gvs = nn::VarStore::new(Device::Cuda(0));
        let gnet = backbone(&gvs.root(), &cfg).unwrap();
        load_safetensors(
            &mut gvs,
            &path,
            &LoadOptions {
                strict: true,
                ..Default::default()
            },
        )
        .unwrap();
        let gpu =
            tch::no_grad(|| gnet.logits(&x.to(Device::Cuda(0)), false).unwrap()).to(Device::Cpu);
        let err = (&cpu - &gpu).abs().max().double_value(&[]);
        let scale = cpu.abs().max().double_value(&[]);
        assert!(
            err <= 1e-2 * scale.max(1e-3),
            "{arch}: max abs error {err} (scale {scale})"
        );
        // a CPU tensor into a CUDA network is a typed error, not an abort
        assert!(gnet.pooled(&x, false).is_err());
    }
}

/// The metric-learning losses and soft attention give the CPU's values (and gradients) on CUDA.
#[test]
fn fusion_losses_and_attention_match_cpu_on_cuda() {
    use mm_fusion::{
        Negatives, SoftAttention, SoftAttentionConfig, info_nce_loss, l2_normalize, triplet_loss,
    };
    let d = Device::Cuda(0);
    tch::manual_seed(3);
    let im = l2_normalize(&Tensor::randn([16, 32], (Kind::Float, Device::Cpu))).unwrap();
    let s = l2_normalize(&Tensor::randn([16, 32], (Kind::Float, Device::Cpu))).unwrap();
    let scale = Tensor::from(2.0f32);
    let pairs = [
        (
            triplet_loss(&im, &s, 0.2, Negatives::Hardest).unwrap(),
            triplet_loss(&im.to(d), &s.to(d), 0.2, Negatives::Hardest).unwrap(),
        ),
        (
            triplet_loss(&im, &s, 0.2, Negatives::Sum).unwrap(),
            triplet_loss(&im.to(d), &s.to(d), 0.2, Negatives::Sum).unwrap(),
        ),
        (
            info_nce_loss(&im, &s, &scale).unwrap(),
            info_nce_loss(&im.to(d), &s.to(d), &scale.to(d)).unwrap(),
        ),
    ];
    for (cpu, gpu) in pairs {
        let (c, g) = (cpu.double_value(&[]), gpu.to(Device::Cpu).double_value(&[]));
        assert!((c - g).abs() <= 1e-4 * c.abs().max(1.0), "{c} vs {g}");
    }
    let mut vs = nn::VarStore::new(Device::Cpu);
    let cfg = SoftAttentionConfig {
        feature_dim: 32,
        hidden_dim: 24,
        attention_dim: 16,
        gate: true,
    };
    let att = SoftAttention::new(&vs.root(), &cfg).unwrap();
    let feats = Tensor::randn([4, 49, 32], (Kind::Float, Device::Cpu));
    let hidden = Tensor::randn([4, 24], (Kind::Float, Device::Cpu));
    let cpu = att.forward(&feats, &hidden, None).unwrap();
    vs.set_device(d);
    let gpu = att.forward(&feats.to(d), &hidden.to(d), None).unwrap();
    let err = (&cpu.context - gpu.context.to(Device::Cpu))
        .abs()
        .max()
        .double_value(&[]);
    assert!(err < 1e-4, "soft attention context differs by {err}");
    let sums = gpu
        .weights
        .sum_dim_intlist(-1, false, Kind::Float)
        .to(Device::Cpu);
    assert!((sums - 1.0).abs().max().double_value(&[]) < 1e-5);
}

/// The optimizer's grouped updates (gradients bound to flat buffers that backward accumulates
/// into) give the CPU's numbers on CUDA, for every rule, with clipping, over a few steps of a
/// small two-layer model.
#[test]
fn optimizer_updates_match_cpu_on_cuda() {
    use mm_train::{Optimizer, OptimizerConfig, OptimizerKind};
    let run = |device: Device, kind: OptimizerKind| -> Vec<Tensor> {
        tch::manual_seed(5);
        // initialised on the CPU (the same numbers for both runs), then moved
        let mut vs = nn::VarStore::new(Device::Cpu);
        let l1 = nn::linear(vs.root() / "l1", 8, 16, Default::default());
        let l2 = nn::linear(vs.root() / "l2", 16, 3, Default::default());
        vs.set_device(device);
        let cfg = OptimizerConfig {
            kind,
            weight_decay: 0.01,
            momentum: if kind == OptimizerKind::Sgd { 0.9 } else { 0.0 },
            ..OptimizerConfig::adam(0.05)
        };
        let mut opt = Optimizer::new(&vs, &cfg, &[]).unwrap();
        let x = Tensor::randn([32, 8], (Kind::Float, Device::Cpu)).to(device);
        let y = Tensor::randn([32, 3], (Kind::Float, Device::Cpu)).to(device);
        for _ in 0..5 {
            opt.zero_grad().unwrap();
            let out = x.apply(&l1).relu().apply(&l2);
            (out - &y).square().mean(Kind::Float).backward();
            let _ = opt.clip_grad_norm(0.5).unwrap();
            opt.step(0.05).unwrap();
        }
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        vars.into_iter().map(|(_, t)| t.to(Device::Cpu)).collect()
    };
    for kind in [
        OptimizerKind::Adam,
        OptimizerKind::Adamw,
        OptimizerKind::Sgd,
        OptimizerKind::Rmsprop,
    ] {
        let (cpu, gpu) = (run(Device::Cpu, kind), run(Device::Cuda(0), kind));
        for (c, g) in cpu.iter().zip(&gpu) {
            let err = (c - g).abs().max().double_value(&[]);
            assert!(err < 1e-4, "{kind:?}: max error {err}");
        }
    }
}

/// A frozen sub-model loaded onto the card: its weights arrive on CUDA from a file, need no
/// gradient, and give the CPU's numbers.
#[test]
fn a_frozen_teacher_loads_onto_cuda() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("teacher.safetensors");
    let w = Tensor::randn([3, 4], (Kind::Float, Device::Cpu));
    let b = Tensor::randn([3], (Kind::Float, Device::Cpu));
    Tensor::write_safetensors(&[("net.weight", &w), ("net.bias", &b)], &file).unwrap();
    let load = |device| {
        mm_train::Frozen::load("teacher", &file, device, |p| {
            Ok(nn::linear(p / "net", 4, 3, Default::default()))
        })
        .unwrap()
    };
    let (frozen, net) = load(Device::Cuda(0));
    for (_, t) in frozen.var_store().variables() {
        assert_eq!(t.device(), Device::Cuda(0));
        assert!(!t.requires_grad());
    }
    let x = Tensor::randn([5, 4], (Kind::Float, Device::Cpu));
    let gpu = x.to(Device::Cuda(0)).apply(&net).to(Device::Cpu);
    let (_, cpu_net) = load(Device::Cpu);
    let err = (x.apply(&cpu_net) - gpu).abs().max().double_value(&[]);
    assert!(err < 1e-5, "max abs error {err}");
}

/// Two optimizer groups on the card: text-to-image's discriminator and generator steps run
/// on CUDA, every loss finite, both groups logged, and a resumed run on the card continues
/// from the checkpoint.
#[test]
fn text_to_image_trains_both_optimizer_groups_on_cuda() {
    use mm_tasks::text_to_image::{self, TextToImage};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("sv.h5");
    let sv = mm_data::synthav::SynthAvConfig {
        scenes: 150,
        seed: 2,
        ..Default::default()
    };
    mm_data::synthav::write(&data, &sv, &mut |_, _| {}).unwrap();
    let mut d = text_to_image::defaults();
    d.task.data = data;
    d.task.evaluator_steps = 50;
    d.task.eval_texts = 32;
    d.train.batch_size = 32;
    d.train.max_steps = 8;
    d.train.eval_every = 4;
    let opts = mm_train::RunOptions {
        config: None,
        overrides: vec![],
        device: Device::Cuda(0),
        dir: dir.path().join("run"),
        resume: false,
        progress: None,
    };
    let r = mm_train::run::train::<TextToImage>(&d, &opts).unwrap();
    assert_eq!(r.summary.steps, 8);
    assert!(r.test.values().all(|v| v.is_finite()), "{:?}", r.test);
    let log = std::fs::read_to_string(dir.path().join("run/metrics.jsonl")).unwrap();
    assert!(log.contains("loss_discriminator") && log.contains("loss_generator"));
    eprintln!(
        "text-to-image on CUDA: {:.0} samples/s (D and G steps, batch 32, 64 channels)",
        r.summary.samples_per_sec
    );
}
