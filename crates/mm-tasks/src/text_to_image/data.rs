//! The text-to-image data: captions and attribute labels held in memory (small), images read
//! from the HDF5 file batch by batch (only the `image` field), so the task's memory does not
//! grow with the data set.

use std::collections::{BTreeMap, HashMap};

use mm_data::Reader;
use mm_train::{Error, Result};
use tch::{Device, Kind, Tensor};

use super::{TextToImageConfig, bad};
use crate::stream::FieldStream;

/// The image side the generator draws and the discriminator reads.
pub(super) const IMAGE_SIZE: i64 = 64;

/// What an image shows, as the attribute classifier predicts it: which colours and which
/// shapes are present (multi-hot) and the scene type.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Attributes {
    pub(super) colours: Vec<f32>,
    pub(super) shapes: Vec<f32>,
    pub(super) scene: i64,
}

/// One split: its images (read from the file batch by batch), each sample's captions (token
/// ids) and attributes.
#[derive(Debug)]
pub(super) struct Split {
    pub(super) images: FieldStream,
    pub(super) captions: Vec<Vec<Vec<i64>>>,
    pub(super) attributes: Vec<Attributes>,
}

/// The data set: its vocabulary, attribute names and splits.
#[derive(Debug)]
pub(super) struct Data {
    pub(super) words: Vec<String>,
    pub(super) vocab: HashMap<String, i64>,
    pub(super) n_colours: i64,
    pub(super) n_shapes: i64,
    pub(super) n_scenes: i64,
    pub(super) splits: BTreeMap<String, Split>,
}

fn names(params: &serde_json::Value, key: &str) -> Result<i64> {
    params[key]
        .as_array()
        .map(|a| a.len() as i64)
        .filter(|&n| n > 0)
        .ok_or_else(|| {
            bad(format!(
                "meta.params has no list `{key}` (is this SynthAV?)"
            ))
        })
}

/// Reads `cfg.data`: 64x64 images, captions, `objects` (present, shape, colour, ...) and
/// `scene_type`; every split must have samples, each with a caption.
pub(super) fn load(cfg: &TextToImageConfig) -> Result<Data> {
    let r = Reader::open(&cfg.data).map_err(Error::task)?;
    let schema = r.schema();
    let image = schema
        .fixed
        .iter()
        .find(|f| f.name == "image")
        .ok_or_else(|| bad(format!("{} has no `image` field", cfg.data.display())))?;
    if image.shape != [IMAGE_SIZE as usize, IMAGE_SIZE as usize, 3] {
        return Err(bad(format!(
            "the generator draws {IMAGE_SIZE}x{IMAGE_SIZE} RGB images; {} holds {:?}",
            cfg.data.display(),
            image.shape
        )));
    }
    let params = &r.meta().params;
    let words = crate::common::word_list(params, "captions", "vocabulary")?;
    let vocab = words
        .iter()
        .enumerate()
        .map(|(i, w)| (w.clone(), i as i64))
        .collect();
    let (n_colours, n_shapes, n_scenes) = (
        names(params, "colours")?,
        names(params, "shapes")?,
        names(params, "scene_types")?,
    );
    let mut splits = BTreeMap::new();
    for s in ["train", "val", "test"] {
        let rows = crate::common::split_rows(&r, s)?;
        let b = r
            .read_batch_fields(&rows, &["captions", "objects", "scene_type"])
            .map_err(Error::task)?;
        let captions = crate::common::token_lists(&b, "captions", &[], s)?;
        let objects = b.tensor("objects", Device::Cpu).map_err(Error::task)?;
        let scenes = b.tensor("scene_type", Device::Cpu).map_err(Error::task)?;
        let (n, k, c) = objects.size3()?;
        if c < 3 {
            return Err(bad(format!(
                "`objects` has {c} columns; SynthAV's are present, shape, colour, ..."
            )));
        }
        let obj = Vec::<i64>::try_from(&objects.f_to_kind(Kind::Int64)?.f_reshape([-1])?)?;
        let scene = Vec::<i64>::try_from(&scenes.f_to_kind(Kind::Int64)?.f_reshape([-1])?)?;
        let mut attributes = Vec::with_capacity(n as usize);
        for i in 0..n as usize {
            let mut a = Attributes {
                colours: vec![0.0; n_colours as usize],
                shapes: vec![0.0; n_shapes as usize],
                scene: scene[i],
            };
            for o in 0..k as usize {
                let row = &obj[(i * k as usize + o) * c as usize..][..3];
                if row[0] != 0 {
                    let (shape, colour) = (row[1], row[2]);
                    if !(0..n_shapes).contains(&shape) || !(0..n_colours).contains(&colour) {
                        return Err(bad(format!("sample {}: object {o} out of range", rows[i])));
                    }
                    a.shapes[shape as usize] = 1.0;
                    a.colours[colour as usize] = 1.0;
                }
            }
            if !(0..n_scenes).contains(&a.scene) {
                return Err(bad(format!("sample {}: scene type out of range", rows[i])));
            }
            attributes.push(a);
        }
        splits.insert(
            s.to_string(),
            Split {
                images: FieldStream::open(r.path(), "image", rows)?,
                captions,
                attributes,
            },
        );
    }
    Ok(Data {
        words,
        vocab,
        n_colours,
        n_shapes,
        n_scenes,
        splits,
    })
}

impl Data {
    /// The split `name`.
    pub(super) fn split(&self, name: &str) -> Result<&Split> {
        crate::common::split(&self.splits, name)
    }

    /// Images `k` (positions in split `split`) as `uint8 [B, 64, 64, 3]`, read from the file.
    pub(super) fn images(&self, split: &str, k: &[usize]) -> Result<Tensor> {
        self.split(split)?.images.read(k)
    }

    /// The attribute targets of samples `k` of `split`: colours `[B, C]`, shapes `[B, S]`
    /// (multi-hot, float) and scenes `[B]` (int64).
    pub(super) fn targets(&self, split: &str, k: &[usize]) -> Result<(Tensor, Tensor, Tensor)> {
        let s = self.split(split)?;
        let a: Vec<&Attributes> = k.iter().map(|&i| &s.attributes[i]).collect();
        let flat = |f: &dyn Fn(&Attributes) -> &[f32], n: i64| -> Result<Tensor> {
            let v: Vec<f32> = a.iter().flat_map(|x| f(x).iter().copied()).collect();
            Ok(Tensor::from_slice(&v).f_view([k.len() as i64, n])?)
        };
        Ok((
            flat(&|x| &x.colours, self.n_colours)?,
            flat(&|x| &x.shapes, self.n_shapes)?,
            Tensor::from_slice(&a.iter().map(|x| x.scene).collect::<Vec<_>>()),
        ))
    }
}
