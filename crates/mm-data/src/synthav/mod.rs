//! SynthAV: a procedural audio-visual-text world, generated deterministically from a seed.
//!
//! Each scene is a 64x64 RGB image of 1-3 objects (shape, colour, size, position) on one of
//! four textured backgrounds (the scene type). Captions come from a grammar with several
//! phrasings; questions of five types (colour, shape, count, existence, relation) have one-word
//! answers. Each shape has its own sound (timbre), pitched by the object's size and colour,
//! with per-instance variation; each scene type has its own ambience; the clip mixes the sounding
//! objects and the ambience. Ground truth kept: which objects sound (a localization mask), each
//! source separately (separation), object and scene classes (SoundNet's two teacher heads).
//!
//! Scenes are independent: scene `i` depends only on `(seed, i)`, so any range can be generated
//! in parallel and the data set is the same whatever the thread count.

mod audio;
mod scene;
pub mod speech;
mod text;

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{Array, Array2, Array3, IxDyn};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use scene::{COLOURS, Object, SCENE_TYPES, SHAPES, SIZES, Scene};
pub use text::{QuestionType, Vocabulary};

use crate::error::{Error, Result};
use crate::store::{Dtype, FieldSpec, Meta, Sample, Schema, Value, Writer};

/// Image side in pixels.
pub const IMAGE: usize = 64;
/// Most objects in a scene.
pub const MAX_OBJECTS: usize = 3;

/// Generator settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthAvConfig {
    /// Number of scenes.
    pub scenes: usize,
    /// Seed.
    pub seed: u64,
    /// Audio sample rate.
    pub sample_rate: u32,
    /// Clip length in seconds.
    pub duration_s: f32,
    /// Captions per scene.
    pub captions: usize,
    /// Questions per scene.
    pub questions: usize,
    /// Sample rate of the speech fields (`voice`, `spoken_caption`).
    pub speech_rate: u32,
    /// Length of `spoken_caption` in seconds (`voice` is 1 s).
    pub speech_s: f32,
    /// Fractions of scenes in the val and test splits (the rest is train).
    pub val_fraction: f64,
    /// See `val_fraction`.
    pub test_fraction: f64,
}

impl Default for SynthAvConfig {
    fn default() -> Self {
        Self {
            scenes: 1000,
            seed: 0,
            sample_rate: 16_000,
            duration_s: 1.0,
            captions: 3,
            questions: 4,
            speech_rate: 8_000,
            speech_s: 3.0,
            val_fraction: 0.1,
            test_fraction: 0.1,
        }
    }
}

impl SynthAvConfig {
    fn validate(&self) -> Result<()> {
        let bad = |name, reason: &str| {
            Err(Error::InvalidParameter {
                name,
                reason: reason.into(),
            })
        };
        if self.scenes == 0 {
            return bad("scenes", "must be positive");
        }
        if !(8000..=48000).contains(&self.sample_rate) {
            return bad("sample_rate", "must be in 8000..=48000");
        }
        if !(self.duration_s >= 0.1 && self.duration_s <= 10.0) {
            return bad("duration_s", "must be in [0.1, 10]");
        }
        if !((8000..=48000).contains(&self.speech_rate) && (0.5..=30.0).contains(&self.speech_s)) {
            return bad(
                "speech_rate/speech_s",
                "need 8000..=48000 Hz and 0.5..=30 s",
            );
        }
        if self.captions == 0 || self.questions == 0 {
            return bad("captions/questions", "need at least one of each per scene");
        }
        if !(self.val_fraction >= 0.0 && self.test_fraction >= 0.0)
            || self.val_fraction + self.test_fraction >= 1.0
        {
            return bad("val_fraction/test_fraction", "must be >= 0 and sum below 1");
        }
        Ok(())
    }

    fn samples(&self) -> usize {
        (self.sample_rate as f32 * self.duration_s).round() as usize
    }

    fn speech_samples(&self) -> (usize, usize) {
        let r = self.speech_rate as f32;
        (r as usize, (r * self.speech_s).round() as usize)
    }
}

/// One generated scene with every modality and its ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneSample {
    /// The layout.
    pub scene: Scene,
    /// `[64, 64, 3]` RGB.
    pub image: Array3<u8>,
    /// The mixture, `[samples]`.
    pub audio: Vec<f32>,
    /// Each object's sound, `[MAX_OBJECTS, samples]` (zeros for absent or silent objects).
    pub sources: Array2<f32>,
    /// The scene's ambience, `[samples]`.
    pub ambience: Vec<f32>,
    /// Pixels of the sounding objects, `[64, 64]` (0 or 1).
    pub sounding_mask: Array2<u8>,
    /// Captions (words).
    pub captions: Vec<Vec<String>>,
    /// Questions (words), their types and one-word answers.
    pub questions: Vec<(Vec<String>, QuestionType, String)>,
    /// The scene's narrator: face and voice attributes.
    pub speaker: speech::Speaker,
    /// The narrator's face, `[64, 64, 3]`.
    pub face: Array3<u8>,
    /// 1 s of the narrator speaking random units (for Speech2Face).
    pub voice: Vec<f32>,
    /// The first caption's sub-word units (all of them).
    pub spoken_units: Vec<usize>,
    /// The first caption spoken by the narrator, cut to `speech_s`.
    pub spoken_caption: Vec<f32>,
}

/// Generates scene `index` of the data set `cfg` describes.
pub fn generate_scene(cfg: &SynthAvConfig, index: usize) -> Result<SceneSample> {
    cfg.validate()?;
    let mut rng =
        ChaCha8Rng::seed_from_u64(cfg.seed.wrapping_mul(0xA076_1D64_78BD_642F) ^ index as u64);
    let scene = Scene::random(&mut rng);
    let image = scene.render(&mut rng);
    let (sources, ambience) = audio::render(&scene, cfg.sample_rate, cfg.samples(), &mut rng);
    let mut audio = ambience.clone();
    for row in sources.rows() {
        for (a, s) in audio.iter_mut().zip(row) {
            *a += s;
        }
    }
    let sounding_mask = scene.sounding_mask();
    // prefer distinct phrasings: a few redraws before accepting a repeat
    let mut captions: Vec<Vec<String>> = Vec::with_capacity(cfg.captions);
    while captions.len() < cfg.captions {
        let mut c = text::caption(&scene, &mut rng);
        for _ in 0..8 {
            if !captions.contains(&c) {
                break;
            }
            c = text::caption(&scene, &mut rng);
        }
        captions.push(c);
    }
    let mut questions: Vec<(Vec<String>, QuestionType, String)> = Vec::with_capacity(cfg.questions);
    while questions.len() < cfg.questions {
        let mut q = text::question(&scene, &mut rng);
        for _ in 0..8 {
            if !questions.iter().any(|p| p.0 == q.0) {
                break;
            }
            q = text::question(&scene, &mut rng);
        }
        questions.push(q);
    }
    let speaker = speech::Speaker::random(&mut rng);
    let face = speaker.face(&mut rng);
    let (voice_n, caption_n) = cfg.speech_samples();
    let babble: Vec<usize> = (0..8).map(|_| rng.random_range(0..speech::UNITS)).collect();
    let voice = speech::speak(&babble, &speaker, cfg.speech_rate, voice_n, &mut rng);
    let spoken_units: Vec<usize> = captions[0]
        .iter()
        .flat_map(|w| speech::word_units(w))
        .collect();
    let spoken_caption = speech::speak(
        &spoken_units,
        &speaker,
        cfg.speech_rate,
        caption_n,
        &mut rng,
    );
    Ok(SceneSample {
        speaker,
        face,
        voice,
        spoken_units,
        spoken_caption,
        scene,
        image,
        audio,
        sources,
        ambience,
        sounding_mask,
        captions,
        questions,
    })
}

/// The HDF5 schema of a SynthAV file for clips of `samples` samples and speech fields of
/// `voice` and `spoken` samples.
pub fn schema(samples: usize, voice: usize, spoken: usize) -> Schema {
    let f = |name: &str, dtype, shape: Vec<usize>, compress| FieldSpec {
        name: name.into(),
        dtype,
        shape,
        compress,
    };
    Schema {
        fixed: vec![
            f("image", Dtype::U8, vec![IMAGE, IMAGE, 3], true),
            f("audio", Dtype::F32, vec![samples], false),
            f("sources", Dtype::F32, vec![MAX_OBJECTS, samples], false),
            f("ambience", Dtype::F32, vec![samples], false),
            f("sounding_mask", Dtype::U8, vec![IMAGE, IMAGE], true),
            // per object: present, shape, colour, size, x, y, sounding
            f("objects", Dtype::I64, vec![MAX_OBJECTS, 7], false),
            f("scene_type", Dtype::I64, vec![], false),
            f("n_objects", Dtype::I64, vec![], false),
            f("face", Dtype::U8, vec![IMAGE, IMAGE, 3], true),
            // face_shape, size, skin, rate
            f("speaker", Dtype::I64, vec![4], false),
            f("voice", Dtype::F32, vec![voice], false),
            f("spoken_caption", Dtype::F32, vec![spoken], false),
        ],
        ragged: vec![
            "spoken_units".into(),
            "captions".into(),
            "questions".into(),
            "question_types".into(),
            "answers".into(),
        ],
    }
}

fn to_sample(s: &SceneSample, vocab: &Vocabulary) -> Sample {
    let mut out = Sample::default();
    let n = s.audio.len();
    let mut objects = Array2::<i64>::zeros((MAX_OBJECTS, 7));
    for (k, o) in s.scene.objects.iter().enumerate() {
        objects.row_mut(k).assign(&ndarray::arr1(&[
            1,
            o.shape as i64,
            o.colour as i64,
            o.size as i64,
            o.x as i64,
            o.y as i64,
            i64::from(o.sounding),
        ]));
    }
    let dyn_f32 = |v: &[f32], shape: &[usize]| {
        Value::F32(Array::from_shape_vec(IxDyn(shape), v.to_vec()).unwrap_or_default())
    };
    out.fixed
        .insert("image".into(), Value::U8(s.image.clone().into_dyn()));
    out.fixed.insert("audio".into(), dyn_f32(&s.audio, &[n]));
    out.fixed
        .insert("sources".into(), Value::F32(s.sources.clone().into_dyn()));
    out.fixed
        .insert("ambience".into(), dyn_f32(&s.ambience, &[n]));
    out.fixed.insert(
        "sounding_mask".into(),
        Value::U8(s.sounding_mask.clone().into_dyn()),
    );
    out.fixed
        .insert("objects".into(), Value::I64(objects.into_dyn()));
    out.fixed.insert(
        "scene_type".into(),
        Value::I64(ndarray::arr0(s.scene.scene_type as i64).into_dyn()),
    );
    out.fixed.insert(
        "n_objects".into(),
        Value::I64(ndarray::arr0(s.scene.objects.len() as i64).into_dyn()),
    );
    out.fixed
        .insert("face".into(), Value::U8(s.face.clone().into_dyn()));
    out.fixed.insert(
        "speaker".into(),
        Value::I64(ndarray::arr1(&s.speaker.attributes()).into_dyn()),
    );
    out.fixed
        .insert("voice".into(), dyn_f32(&s.voice, &[s.voice.len()]));
    out.fixed.insert(
        "spoken_caption".into(),
        dyn_f32(&s.spoken_caption, &[s.spoken_caption.len()]),
    );
    out.ragged.insert(
        "spoken_units".into(),
        vec![s.spoken_units.iter().map(|&u| u as i32).collect()],
    );
    let enc = |words: &[String]| words.iter().map(|w| vocab.id(w)).collect::<Vec<i32>>();
    out.ragged.insert(
        "captions".into(),
        s.captions.iter().map(|c| enc(c)).collect(),
    );
    out.ragged.insert(
        "questions".into(),
        s.questions.iter().map(|q| enc(&q.0)).collect(),
    );
    out.ragged.insert(
        "question_types".into(),
        s.questions.iter().map(|q| vec![q.1 as i32]).collect(),
    );
    out.ragged.insert(
        "answers".into(),
        s.questions.iter().map(|q| vec![vocab.id(&q.2)]).collect(),
    );
    out
}

/// Generates the whole data set into `path` (atomically), calling `progress(done, total)` as
/// scenes are written. Returns the number of scenes.
pub fn write(
    path: &Path,
    cfg: &SynthAvConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<usize> {
    cfg.validate()?;
    let vocab = Vocabulary::new();
    let meta = Meta {
        source: "synthav".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        params: serde_json::json!({
            "config": cfg,
            "vocabulary": vocab.words(),
            "shapes": SHAPES, "colours": COLOURS, "sizes": SIZES, "scene_types": SCENE_TYPES,
            "question_types": QuestionType::NAMES,
            "decode": {"captions": "vocabulary", "questions": "vocabulary",
                       "answers": "vocabulary", "question_types": "question_types"},
            "objects_columns": ["present", "shape", "colour", "size", "x", "y", "sounding"],
            "speaker_columns": ["face_shape", "size", "skin", "rate"],
            "speech_units": speech::UNITS,
        }),
    };
    let (voice_n, caption_n) = cfg.speech_samples();
    let mut w = Writer::create(path, &schema(cfg.samples(), voice_n, caption_n), &meta)?;
    const CHUNK: usize = 64;
    for start in (0..cfg.scenes).step_by(CHUNK) {
        let end = (start + CHUNK).min(cfg.scenes);
        let scenes: Vec<SceneSample> = (start..end)
            .into_par_iter()
            .map(|i| generate_scene(cfg, i))
            .collect::<Result<_>>()?;
        for s in &scenes {
            w.push(&to_sample(s, &vocab))?;
        }
        progress(end, cfg.scenes);
    }
    let n_test = (cfg.scenes as f64 * cfg.test_fraction).round() as u64;
    let n_val = (cfg.scenes as f64 * cfg.val_fraction).round() as u64;
    let n = cfg.scenes as u64;
    let mut splits = BTreeMap::new();
    splits.insert("train".to_owned(), (0..n - n_val - n_test).collect());
    splits.insert("val".to_owned(), (n - n_val - n_test..n - n_test).collect());
    splits.insert("test".to_owned(), (n - n_test..n).collect());
    w.finish(&splits)?;
    Ok(cfg.scenes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Reader;

    fn cfg() -> SynthAvConfig {
        SynthAvConfig {
            scenes: 40,
            seed: 3,
            duration_s: 0.25,
            ..Default::default()
        }
    }

    #[test]
    fn scenes_are_deterministic_and_seed_dependent() {
        let a = generate_scene(&cfg(), 5).unwrap();
        assert_eq!(a, generate_scene(&cfg(), 5).unwrap());
        let b = generate_scene(&SynthAvConfig { seed: 4, ..cfg() }, 5).unwrap();
        assert_ne!(a.image, b.image);
    }

    #[test]
    fn ground_truth_is_consistent_with_every_modality() {
        for i in 0..30 {
            let s = generate_scene(&cfg(), i).unwrap();
            let objs = &s.scene.objects;
            assert!((1..=MAX_OBJECTS).contains(&objs.len()));
            assert!(objs.iter().any(|o| o.sounding));
            // the mixture is the sum of the sources and the ambience
            for t in (0..s.audio.len()).step_by(97) {
                let sum: f32 = s.sources.column(t).sum() + s.ambience[t];
                assert!((s.audio[t] - sum).abs() < 1e-6);
            }
            for (k, o) in objs.iter().enumerate() {
                let energy: f32 = s.sources.row(k).iter().map(|v| v * v).sum();
                assert_eq!(energy > 0.0, o.sounding, "scene {i} object {k}");
                // the centre pixel has the object's colour (within the shading)
                let px = s.image.slice(ndarray::s![o.y, o.x, ..]).to_vec();
                let want = super::scene::COLOURS[o.colour];
                let rgb = [
                    [220, 40, 40],
                    [40, 170, 60],
                    [50, 80, 225],
                    [235, 205, 40],
                    [150, 60, 190],
                ][o.colour];
                assert!(
                    px.iter()
                        .zip(rgb)
                        .all(|(a, b)| (i32::from(*a) - b).abs() <= 10),
                    "{want}: {px:?}"
                );
                assert_eq!(s.sounding_mask[[o.y, o.x]], u8::from(o.sounding));
            }
            let mask_px: usize = s.sounding_mask.iter().map(|&v| usize::from(v)).sum();
            assert!(mask_px > 0);
            // every word is in the vocabulary, and answers are right
            let v = Vocabulary::new();
            for c in &s.captions {
                assert!(c.iter().all(|w| v.id(w) != 1), "{c:?}");
            }
            for (q, ty, a) in &s.questions {
                assert!(q.iter().all(|w| v.id(w) != 1), "{q:?}");
                match ty {
                    QuestionType::Count => {
                        assert_eq!(a, ["one", "two", "three"][objs.len() - 1]);
                    }
                    QuestionType::Exist => {
                        let (c, sh) = (&q[3], &q[4]);
                        let present = objs.iter().any(|o| {
                            super::scene::COLOURS[o.colour] == c
                                && super::scene::SHAPES[o.shape] == sh
                        });
                        assert_eq!(a, if present { "yes" } else { "no" }, "{q:?}");
                    }
                    QuestionType::Colour => {
                        let o = objs
                            .iter()
                            .find(|o| super::scene::SHAPES[o.shape] == q[4])
                            .unwrap();
                        assert_eq!(a, super::scene::COLOURS[o.colour]);
                    }
                    QuestionType::Shape => {
                        let o = objs
                            .iter()
                            .find(|o| super::scene::COLOURS[o.colour] == q[4])
                            .unwrap();
                        assert_eq!(a, super::scene::SHAPES[o.shape]);
                    }
                    QuestionType::Relation => assert!(a == "yes" || a == "no"),
                }
            }
        }
    }

    #[test]
    fn written_file_holds_the_generated_scenes_and_splits() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("synthav.h5");
        let mut calls = 0;
        let n = write(&p, &cfg(), &mut |done, total| {
            calls += 1;
            assert!(done <= total);
        })
        .unwrap();
        assert_eq!(n, 40);
        assert!(calls >= 1);
        let r = Reader::open(&p).unwrap();
        assert_eq!(r.len(), 40);
        assert_eq!(r.meta().source, "synthav");
        assert_eq!(r.split("train").unwrap().len(), 32);
        assert_eq!(r.split("val").unwrap().len(), 4);
        assert_eq!(r.split("test").unwrap(), (36..40).collect::<Vec<u64>>());
        let s = r.get(7).unwrap();
        let g = generate_scene(&cfg(), 7).unwrap();
        assert_eq!(s.fixed["image"], Value::U8(g.image.clone().into_dyn()));
        let v = Vocabulary::new();
        let cap: Vec<String> = s.ragged["captions"][0]
            .iter()
            .map(|&i| v.words()[i as usize].clone())
            .collect();
        assert_eq!(cap, g.captions[0]);
        assert_eq!(s.ragged["answers"].len(), cfg().questions);
        // speech: 1 s of voice and 3 s of spoken caption at 8 kHz, units of caption 0
        match (
            &s.fixed["voice"],
            &s.fixed["spoken_caption"],
            &s.fixed["speaker"],
        ) {
            (Value::F32(v), Value::F32(c), Value::I64(sp)) => {
                assert_eq!((v.len(), c.len()), (8000, 24000));
                assert!(c.iter().any(|x| x.abs() > 0.05));
                assert_eq!(
                    sp.iter().copied().collect::<Vec<_>>(),
                    g.speaker.attributes()
                );
            }
            _ => panic!("speech fields"),
        }
        let units: Vec<i32> = g.captions[0]
            .iter()
            .flat_map(|w| speech::word_units(w))
            .map(|u| u as i32)
            .collect();
        assert_eq!(s.ragged["spoken_units"], vec![units]);
        let vocab = r.meta().params["vocabulary"].as_array().unwrap().len();
        assert_eq!(vocab, v.words().len());
        assert!(write(&p, &SynthAvConfig { scenes: 0, ..cfg() }, &mut |_, _| {}).is_err());
    }
}
