//! The retrieval splits, read from an mm HDF5 data set: images, their captions as token ids,
//! and SynthAV's object table for tag precision.

use mm_data::Reader;
use mm_train::{Error, Result};
use tch::{Device, Tensor};

use super::{RetrievalConfig, task_err};
use crate::stream::FieldStream;

/// One split: images (`uint8 [H, W, 3]` each, read from the data set batch by batch),
/// captions as token ids in memory.
#[derive(Debug)]
pub(super) struct Split {
    pub(super) images: FieldStream,
    pub(super) captions: Vec<Vec<Vec<i64>>>,
    /// SynthAV's object table `[N, 3, 7]`, for tag precision.
    pub(super) objects: Option<Tensor>,
}

pub(super) fn load_split(
    r: &Reader,
    cfg: &RetrievalConfig,
    name: &str,
    limit: Option<usize>,
) -> Result<Split> {
    let mut idx: Vec<usize> = r
        .split(name)
        .map_err(Error::task)?
        .into_iter()
        .map(|i| i as usize)
        .collect();
    if let Some(n) = limit {
        idx.truncate(n);
    }
    if idx.is_empty() {
        return Err(task_err(format!(
            "{}: split `{name}` is empty",
            r.path().display()
        )));
    }
    // SynthAV's object table, when there is one, names each image's objects for tag scores
    let has_objects = r.schema().fixed.iter().any(|f| f.name == "objects");
    let mut fields = vec![cfg.captions_field.as_str()];
    fields.extend(has_objects.then_some("objects"));
    let b = r.read_batch_fields(&idx, &fields).map_err(Error::task)?;
    let images = FieldStream::open(r.path(), &cfg.image_field, idx.clone())?;
    let captions: Vec<Vec<Vec<i64>>> = b
        .ragged
        .get(&cfg.captions_field)
        .ok_or_else(|| task_err(format!("no ragged field `{}`", cfg.captions_field)))?
        .iter()
        .map(|caps| {
            caps.iter()
                .map(|c| c.iter().map(|&t| t as i64).collect())
                .collect()
        })
        .collect();
    if let Some(i) = captions
        .iter()
        .position(|c| c.is_empty() || c.iter().any(Vec::is_empty))
    {
        return Err(task_err(format!(
            "sample {} of `{name}` has an empty caption list or caption",
            idx[i]
        )));
    }
    let objects = has_objects
        .then(|| b.tensor("objects", Device::Cpu))
        .transpose()
        .map_err(Error::task)?;
    Ok(Split {
        images,
        captions,
        objects,
    })
}
