//! Pieces the image tasks share.

use std::path::Path;

use mm_train::{Error, Result};
use tch::Tensor;

/// One image as `uint8 [1, H, W, 3]`, named by `input`: `test:K` picks image `K` of
/// `test_images` (`uint8 [N, H, W, 3]`); anything else is an image file, resized and
/// centre-cropped to the data set's side.
pub(crate) fn input_image(test_images: &Tensor, input: &str) -> Result<Tensor> {
    let bad = |reason: String| Error::InvalidParameter {
        name: "input",
        reason,
    };
    if let Some(k) = input.strip_prefix("test:") {
        let k: i64 = k
            .parse()
            .map_err(|_| bad(format!("`{input}`: expected test:INDEX")))?;
        let n = test_images.size()[0];
        if !(0..n).contains(&k) {
            return Err(bad(format!("`{input}`: the test split has {n} images")));
        }
        return Ok(test_images.narrow(0, k, 1));
    }
    let side = test_images.size()[1] as u32;
    let img = mm_vision::image::load_rgb(Path::new(input)).map_err(Error::task)?;
    let t = mm_vision::image::Transform {
        resize: Some(side),
        crop: Some(side),
        random_crop: false,
        hflip: false,
    };
    let img = t.apply(&img, &mut rand::rng()).map_err(Error::task)?;
    mm_vision::image::to_tensor(&[img]).map_err(Error::task)
}
