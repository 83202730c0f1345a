//! Cross-crate pipelines: synthetic data -> features -> models.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mm_data::{SoundClassesConfig, sound_classes};
use mm_fusion::{MapNorm, audio_visual_attention};
use mm_signal::{MelConfig, MelSpectrogram, StftConfig};
use mm_vision::{Backbone, SmallCnn, SmallCnnConfig};
use tch::{Device, Kind, Tensor, nn};

#[test]
fn the_loudest_mel_band_rises_with_the_pitch_level() {
    let cfg = SoundClassesConfig {
        n_classes: 8,
        clips_per_class: 1,
        noise_std: 0.0,
        duration_s: 0.3,
        ..Default::default()
    };
    let clips = sound_classes::generate(&cfg).unwrap();
    let mel = MelSpectrogram::new(
        &StftConfig {
            n_fft: 1024,
            hop_length: Some(256),
            ..Default::default()
        },
        &MelConfig {
            sample_rate_hz: 16_000.0,
            n_fft: 1024,
            n_mels: 64,
            ..Default::default()
        },
    )
    .unwrap();
    let peaks: Vec<usize> = clips
        .iter()
        .map(|c| {
            let s = mel.process(&c.samples).unwrap();
            let energy: Vec<f32> = s.rows().into_iter().map(|r| r.sum()).collect();
            (0..energy.len())
                .max_by(|&a, &b| energy[a].total_cmp(&energy[b]))
                .unwrap()
        })
        .collect();
    // classes 2j and 2j+1 share pitch level j; each level's fundamental sits higher
    assert!((0..6).all(|k| peaks[k] < peaks[k + 2]), "{peaks:?}");
}

#[test]
fn spectrogram_cnn_map_attends_where_the_audio_vector_points() {
    // A spectrogram-shaped input through the CNN gives a feature map. Take as the audio vector
    // the feature of the location with the largest norm: by Cauchy-Schwarz no other location
    // scores higher, so the attention map must peak there.
    tch::manual_seed(1);
    let vs = nn::VarStore::new(Device::Cpu);
    let cnn = SmallCnn::new(
        &vs.root(),
        &SmallCnnConfig {
            in_channels: 1,
            widths: vec![4, 8],
        },
    )
    .unwrap();
    let x = Tensor::randn([2, 1, 32, 24], (Kind::Float, Device::Cpu));
    let map = cnn.feature_map(&x, &cnn.last_stage(), false).unwrap();
    assert_eq!(map.size(), vec![2, 8, 8, 6]);
    let flat = map.view([2, 8, 48]);
    let norms = flat.square().sum_dim_intlist(1, false, Kind::Float); // [2, 48]
    let strongest = norms.argmax(-1, false);
    let audio = flat
        .gather(
            2,
            &strongest.view([2, 1, 1]).expand([2, 8, 1], false),
            false,
        )
        .squeeze_dim(-1);
    let att = audio_visual_attention(&audio, &map, MapNorm::Softmax).unwrap();
    let peak = att.weights.view([2, 48]).argmax(-1, false);
    for i in 0..2 {
        assert_eq!(
            peak.int64_value(&[i]),
            strongest.int64_value(&[i]),
            "sample {i}"
        );
    }
    let sums = att
        .weights
        .sum_dim_intlist(&[1i64, 2][..], false, Kind::Float);
    assert!((sums - 1.0).abs().max().double_value(&[]) < 1e-5);
}
