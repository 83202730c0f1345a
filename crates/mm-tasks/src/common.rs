//! Pieces the image tasks share.

use std::collections::BTreeMap;

use mm_train::{Error, Input, Result};
use tch::Tensor;

/// An error naming the first of `sizes` (a parameter's name and value) that is not positive.
pub(crate) fn positive(sizes: &[(&'static str, i64)]) -> Result<()> {
    match sizes.iter().find(|(_, v)| *v <= 0) {
        Some(&(name, v)) => Err(Error::InvalidParameter {
            name,
            reason: format!("must be positive, got {v}"),
        }),
        None => Ok(()),
    }
}

/// The split `name` of a task's data, or an error that lists the splits there are.
pub(crate) fn split<'a, S>(splits: &'a BTreeMap<String, S>, name: &str) -> Result<&'a S> {
    splits.get(name).ok_or_else(|| Error::InvalidParameter {
        name: "split",
        reason: format!(
            "no split `{name}`; the data set has {:?}",
            splits.keys().collect::<Vec<_>>()
        ),
    })
}

/// `uint8 [1, H, W, 3]` for an image input: sample `K` of a split (`test:K`, from
/// `split_images`), or an image file resized and centre-cropped to the side of the data set's
/// `test` images, through the same transform as the data sets' images.
pub(crate) fn input_image<'a>(
    split_images: impl Fn(&str) -> Result<&'a crate::stream::FieldStream>,
    input: &Input,
) -> Result<Tensor> {
    let bad = |reason: String| Error::InvalidParameter {
        name: "input",
        reason,
    };
    match input {
        Input::Sample { split, index } => {
            let images = split_images(split)?;
            let n = images.len();
            if *index >= n {
                return Err(bad(format!("`{input}`: the {split} split has {n} images")));
            }
            images.read(&[*index])
        }
        Input::Image(path) => {
            let side = split_images("test")?.shape()[0] as u32;
            let img = mm_vision::image::load_square(path, side).map_err(Error::task)?;
            mm_vision::image::to_tensor(&[img]).map_err(Error::task)
        }
        other => Err(bad(format!("`{other}` is not an image"))),
    }
}

/// The sample indices of split `name` of `r`; an empty split is an error.
pub(crate) fn split_rows(r: &mm_data::Reader, name: &str) -> Result<Vec<usize>> {
    let rows: Vec<usize> = r
        .split(name)
        .map_err(Error::task)?
        .into_iter()
        .map(|i| i as usize)
        .collect();
    if rows.is_empty() {
        return Err(Error::InvalidParameter {
            name: "data",
            reason: format!("{}: split `{name}` is empty", r.path().display()),
        });
    }
    Ok(rows)
}

/// Each sample's token lists in ragged field `field` of `b` (captions), without the ids in
/// `drop` (a data set's own `<start>` and `<end>`); a sample without a list, or with an empty
/// one, is an error naming split `split`.
pub(crate) fn token_lists(
    b: &mm_data::Batch,
    field: &str,
    drop: &[i64],
    split: &str,
) -> Result<Vec<Vec<Vec<i64>>>> {
    let bad = |reason: String| Error::InvalidParameter {
        name: "data",
        reason,
    };
    let lists: Vec<Vec<Vec<i64>>> = b
        .ragged
        .get(field)
        .ok_or_else(|| bad(format!("no ragged field `{field}`")))?
        .iter()
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    c.iter()
                        .map(|&t| i64::from(t))
                        .filter(|t| !drop.contains(t))
                        .collect()
                })
                .collect()
        })
        .collect();
    if lists
        .iter()
        .any(|c: &Vec<Vec<i64>>| c.is_empty() || c.iter().any(Vec::is_empty))
    {
        return Err(bad(format!(
            "split `{split}` has a sample without `{field}`, or an empty one"
        )));
    }
    Ok(lists)
}

/// The word list that decodes ragged field `field`: the `meta.params` list named by
/// `params.decode.<field>` (or `default` when the file names none).
pub(crate) fn word_list(
    params: &serde_json::Value,
    field: &str,
    default: &str,
) -> Result<Vec<String>> {
    let key = params["decode"][field].as_str().unwrap_or(default);
    params[key]
        .as_array()
        .ok_or_else(|| Error::InvalidParameter {
            name: "data",
            reason: format!("meta.params has no list `{key}` to decode `{field}`"),
        })
        .map(|a| {
            a.iter()
                .map(|w| w.as_str().unwrap_or_default().to_string())
                .collect()
        })
}

/// One sequence per example of `batch`, drawn uniformly from `lists[i]` with libtorch's
/// generator (which the engine reseeds before every step, so resumed runs draw the same).
pub(crate) fn draw_one<'a>(lists: &'a [Vec<Vec<i64>>], batch: &[usize]) -> Result<Vec<&'a [i64]>> {
    let draws = Vec::<f64>::try_from(&Tensor::rand(
        [batch.len() as i64],
        (tch::Kind::Double, tch::Device::Cpu),
    ))?;
    Ok(batch
        .iter()
        .zip(draws)
        .map(|(&i, u)| {
            let l = &lists[i];
            l[((u * l.len() as f64) as usize).min(l.len() - 1)].as_slice()
        })
        .collect())
}

/// The image (`uint8 [H, W, 3]`) enlarged `scale` times and shaded by an attention map
/// (`alpha`, row-major `[mh, mw]`): each pixel keeps `0.25 + 0.75 * alpha / max(alpha)` of its
/// brightness, so the attended places stay bright.
pub(crate) fn attention_panel(
    image: &Tensor,
    alpha: &[f32],
    (mh, mw): (u32, u32),
    scale: u32,
) -> Result<image::RgbImage> {
    let size = image.size();
    if alpha.len() != (mh * mw) as usize || size.len() != 3 || size[2] != 3 {
        return Err(Error::InvalidParameter {
            name: "attention",
            reason: format!(
                "a {mh}x{mw} map needs {} weights and an [H, W, 3] image, got {} and {:?}",
                mh * mw,
                alpha.len(),
                image.size()
            ),
        });
    }
    let (ih, iw) = (size[0] as u32, size[1] as u32);
    let px = Vec::<u8>::try_from(&image.reshape([-1]))?;
    let amax = alpha.iter().copied().fold(f32::MIN, f32::max).max(1e-12);
    let (tw, th) = (iw * scale, ih * scale);
    Ok(image::RgbImage::from_fn(tw, th, |x, y| {
        let o = (((y / scale) * iw + x / scale) * 3) as usize;
        let a = alpha[((y * mh / th) * mw + x * mw / tw) as usize] / amax;
        let shade = |c: u8| ((c as f32) * (0.25 + 0.75 * a)) as u8;
        image::Rgb([shade(px[o]), shade(px[o + 1]), shade(px[o + 2])])
    }))
}

/// The rows `0..n` that `f(start, end)` computes chunk by chunk (`chunk` rows at a time), in
/// one tensor allocated after the first chunk. Collecting the chunks in a `Vec` and
/// concatenating them would leave each chunk's small result above its large temporaries on the
/// heap (glibc keeps freed buffers, `mm_train::malloc`), so that every chunk's read buffers
/// land in the hole and its activations above: memory grew with the split (captioning's
/// evaluation on 20,000 SynthAV scenes: 0.9 GB to 2.1-2.6 GB peak).
pub(crate) fn chunked_rows(
    n: usize,
    chunk: usize,
    mut f: impl FnMut(usize, usize) -> Result<Tensor>,
) -> Result<Tensor> {
    let chunk = chunk.max(1);
    let mut out: Option<Tensor> = None;
    for s in (0..n).step_by(chunk) {
        let e = (s + chunk).min(n);
        let part = f(s, e)?;
        let dst = match &mut out {
            Some(t) => t,
            None => {
                let mut shape = part.size();
                shape[0] = n as i64;
                out.insert(Tensor::f_empty(&shape, (part.kind(), part.device()))?)
            }
        };
        dst.f_narrow(0, s as i64, (e - s) as i64)?.f_copy_(&part)?;
    }
    out.ok_or_else(|| Error::InvalidParameter {
        name: "split",
        reason: "no rows".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_rows_equal_the_concatenated_chunks() {
        let x = Tensor::arange(14, (tch::Kind::Float, tch::Device::Cpu)).view([7, 2]);
        for chunk in [1, 2, 3, 7, 10] {
            let y = chunked_rows(7, chunk, |s, e| {
                Ok(x.narrow(0, s as i64, (e - s) as i64) * 2)
            })
            .unwrap();
            assert!(y.equal(&(&x * 2)), "chunk {chunk}");
        }
        assert!(chunked_rows(0, 4, |_, _| Ok(x.copy())).is_err());
    }
}
