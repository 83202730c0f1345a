//! Image preprocessing: `u8` HWC pixels to normalised NCHW float tensors.

use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// ImageNet channel means (RGB), as torchvision's pretrained models expect.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet channel standard deviations (RGB).
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// Converts a batch of `u8` images to `f32`, scales to `[0, 1]` and normalises per channel
/// (`(x - mean) / std`), as `torchvision.transforms.{ToTensor, Normalize}` do.
///
/// # Shapes
/// `images: [N, H, W, C]` (`Kind::Uint8`) -> `[N, C, H, W]` (`Kind::Float`) on `device`.
pub fn normalize_batch(
    images: &Tensor,
    mean: &[f32],
    std: &[f32],
    device: Device,
) -> Result<Tensor> {
    let size = images.size();
    if size.len() != 4 || images.kind() != Kind::Uint8 {
        return Err(Error::Shape {
            op: "normalize_batch",
            expected: "uint8 [N, H, W, C]".into(),
            got: size,
        });
    }
    let c = size[3] as usize;
    if mean.len() != c || std.len() != c || std.iter().any(|&s| s <= 0.0) {
        return Err(Error::InvalidParameter {
            name: "mean/std",
            reason: format!("need {c} means and {c} positive standard deviations"),
        });
    }
    let mean = Tensor::from_slice(mean).view([1, -1, 1, 1]).to(device);
    let std = Tensor::from_slice(std).view([1, -1, 1, 1]).to(device);
    let x = images.to(device).permute([0, 3, 1, 2]).to_kind(Kind::Float) / 255.0;
    Ok((x - mean) / std)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_each_channel() {
        // one 1x2 image: pixel 0 = (0, 128, 255), pixel 1 = (255, 255, 255)
        let px: [u8; 6] = [0, 128, 255, 255, 255, 255];
        let img = Tensor::from_slice(&px).view([1, 1, 2, 3]);
        let out = normalize_batch(&img, &IMAGENET_MEAN, &IMAGENET_STD, Device::Cpu).unwrap();
        assert_eq!(out.size(), vec![1, 3, 1, 2]);
        let v = |c: i64, x: i64| out.double_value(&[0, c, 0, x]);
        assert!((v(0, 0) - (0.0 - 0.485) / 0.229).abs() < 1e-5);
        assert!((v(1, 0) - (128.0 / 255.0 - 0.456) / 0.224).abs() < 1e-5);
        assert!((v(2, 1) - (1.0 - 0.406) / 0.225).abs() < 1e-5);
        let float = Tensor::zeros([1, 2, 2, 3], (Kind::Float, Device::Cpu));
        assert!(normalize_batch(&float, &IMAGENET_MEAN, &IMAGENET_STD, Device::Cpu).is_err());
        assert!(normalize_batch(&img, &[0.5], &[0.5], Device::Cpu).is_err());
    }
}
