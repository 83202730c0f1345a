//! Cross-modal retrieval metrics (recall at K, median and mean rank) over an image-caption
//! similarity matrix, as reported by VSE++ and most image-text retrieval work.
//!
//! The matrix is `[n_images, n_captions]`, row-major, higher = more similar. Which image each
//! caption describes is given by `image_of_caption[j]`; for the common layout of `K` captions per
//! image stored in order (caption `j` describes image `j / K`, as in VSE++'s `i2t`/`t2i`) use
//! [`captions_per_image`].
//!
//! - **Image to text** (annotation): each image queries all captions; its rank is that of its
//!   best-ranked own caption (VSE++ `i2t`).
//! - **Text to image** (search): each caption queries all images; its rank is that of its image
//!   (VSE++ `t2i`).
//!
//! Ranks are 1-based: rank 1 means the right answer came first. A rank is
//! `1 + #{wrong items scoring >= the best right item}`: ties count against the query
//! (pessimistic), so a constant similarity matrix scores no better than chance. VSE++'s
//! `argsort` leaves tie order to the sort; on tie-free scores the two agree exactly.
//! Recalls are percentages in `[0, 100]`, as VSE++ prints them.
//!
//! Plain Rust; [`Similarities::from_tensor`] is the only use of libtorch.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::error::{Error, Result};

/// Recall at 1, 5 and 10 and rank statistics of one retrieval direction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RetrievalMetrics {
    /// Percentage of queries whose rank is 1.
    pub r1: f64,
    /// Percentage of queries whose rank is at most 5.
    pub r5: f64,
    /// Percentage of queries whose rank is at most 10.
    pub r10: f64,
    /// `floor` of the median rank (the median of an even count is the mean of the middle two),
    /// VSE++'s `medr`.
    pub median_rank: f64,
    /// Mean rank, VSE++'s `meanr`.
    pub mean_rank: f64,
}

impl RetrievalMetrics {
    /// Metrics from 1-based ranks, one per query.
    ///
    /// [`Error::InvalidParameter`] for no ranks or a rank of 0.
    pub fn from_ranks(ranks: &[usize]) -> Result<Self> {
        if ranks.is_empty() {
            return Err(Error::invalid("ranks", "need at least one query"));
        }
        if ranks.contains(&0) {
            return Err(Error::invalid("ranks", "ranks are 1-based, got 0"));
        }
        let n = ranks.len() as f64;
        let recall = |k: usize| 100.0 * ranks.iter().filter(|&&r| r <= k).count() as f64 / n;
        let mut sorted = ranks.to_vec();
        sorted.sort_unstable();
        let m = sorted.len();
        let median = if m % 2 == 1 {
            sorted[m / 2] as f64
        } else {
            (sorted[m / 2 - 1] + sorted[m / 2]) as f64 / 2.0
        };
        Ok(Self {
            r1: recall(1),
            r5: recall(5),
            r10: recall(10),
            median_rank: median.floor(),
            mean_rank: ranks.iter().map(|&r| r as f64).sum::<f64>() / n,
        })
    }
}

/// `image_of_caption` for `k` captions per image stored image by image: caption `j` describes
/// image `j / k` (`n_images * k` captions).
pub fn captions_per_image(n_images: usize, k: usize) -> Vec<usize> {
    (0..n_images * k).map(|j| j / k.max(1)).collect()
}

/// An image-caption similarity matrix `[n_images, n_captions]`, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Similarities<'a> {
    scores: Cow<'a, [f32]>,
    n_images: usize,
    n_captions: usize,
}

impl<'a> Similarities<'a> {
    /// Borrows `scores` as an `[n_images, n_captions]` matrix.
    ///
    /// [`Error::InvalidParameter`] if either count is 0, `scores.len() != n_images *
    /// n_captions` or a score is NaN.
    pub fn new(scores: &'a [f32], n_images: usize, n_captions: usize) -> Result<Self> {
        Self::checked(Cow::Borrowed(scores), n_images, n_captions)
    }

    /// Copies a 2-D tensor `[n_images, n_captions]` (any floating kind and device) to the CPU as
    /// `f32`, e.g. `images.matmul(&captions.tr())` for L2-normalised embeddings.
    pub fn from_tensor(scores: &Tensor) -> Result<Similarities<'static>> {
        let s = scores.size();
        if s.len() != 2 {
            return Err(Error::shape(
                "Similarities::from_tensor",
                "[n_images, n_captions]",
                &[scores],
            ));
        }
        let flat = scores
            .f_detach()?
            .f_to_device(Device::Cpu)?
            .f_to_kind(Kind::Float)?
            .f_contiguous()?
            .f_reshape([-1])?;
        let data = Vec::<f32>::try_from(&flat)?;
        Similarities::checked(Cow::Owned(data), s[0] as usize, s[1] as usize)
    }

    fn checked(scores: Cow<'a, [f32]>, n_images: usize, n_captions: usize) -> Result<Self> {
        if n_images == 0 || n_captions == 0 {
            return Err(Error::invalid(
                "scores",
                format!("need at least one image and one caption, got {n_images} x {n_captions}"),
            ));
        }
        if n_images.checked_mul(n_captions) != Some(scores.len()) {
            return Err(Error::invalid(
                "scores",
                format!(
                    "{} scores for {n_images} images x {n_captions} captions",
                    scores.len()
                ),
            ));
        }
        if scores.iter().any(|s| s.is_nan()) {
            return Err(Error::invalid("scores", "contains NaN"));
        }
        Ok(Self {
            scores,
            n_images,
            n_captions,
        })
    }

    /// Number of images (rows).
    pub fn n_images(&self) -> usize {
        self.n_images
    }

    /// Number of captions (columns).
    pub fn n_captions(&self) -> usize {
        self.n_captions
    }

    /// The similarity of image `i` and caption `j`, if both exist.
    pub fn score(&self, i: usize, j: usize) -> Option<f32> {
        (i < self.n_images && j < self.n_captions).then(|| self.scores[i * self.n_captions + j])
    }

    fn row(&self, i: usize) -> &[f32] {
        &self.scores[i * self.n_captions..(i + 1) * self.n_captions]
    }

    /// [`Error::InvalidParameter`] unless `image_of_caption` has one valid image per caption.
    fn check_mapping(&self, image_of_caption: &[usize]) -> Result<()> {
        if image_of_caption.len() != self.n_captions {
            return Err(Error::invalid(
                "image_of_caption",
                format!(
                    "has {} entries for {} captions",
                    image_of_caption.len(),
                    self.n_captions
                ),
            ));
        }
        if let Some((j, &i)) = image_of_caption
            .iter()
            .enumerate()
            .find(|&(_, &i)| i >= self.n_images)
        {
            return Err(Error::invalid(
                "image_of_caption",
                format!("caption {j} names image {i} of {}", self.n_images),
            ));
        }
        Ok(())
    }

    /// The 1-based rank of each image's best-ranked own caption among all captions, one per
    /// image.
    ///
    /// [`Error::InvalidParameter`] for a bad mapping or an image without captions.
    pub fn image_to_text_ranks(&self, image_of_caption: &[usize]) -> Result<Vec<usize>> {
        self.check_mapping(image_of_caption)?;
        (0..self.n_images)
            .map(|i| {
                let row = self.row(i);
                let best = row
                    .iter()
                    .zip(image_of_caption)
                    .filter(|&(_, &img)| img == i)
                    .map(|(&s, _)| s)
                    .reduce(f32::max)
                    .ok_or_else(|| {
                        Error::invalid("image_of_caption", format!("image {i} has no caption"))
                    })?;
                let above = row
                    .iter()
                    .zip(image_of_caption)
                    .filter(|&(&s, &img)| img != i && s >= best)
                    .count();
                Ok(1 + above)
            })
            .collect()
    }

    /// The 1-based rank of each caption's image among all images, one per caption.
    ///
    /// [`Error::InvalidParameter`] for a bad mapping.
    pub fn text_to_image_ranks(&self, image_of_caption: &[usize]) -> Result<Vec<usize>> {
        self.check_mapping(image_of_caption)?;
        let nc = self.n_captions;
        Ok(image_of_caption
            .iter()
            .enumerate()
            .map(|(j, &img)| {
                let positive = self.scores[img * nc + j];
                let above = (0..self.n_images)
                    .filter(|&i| i != img && self.scores[i * nc + j] >= positive)
                    .count();
                1 + above
            })
            .collect())
    }

    /// Image-to-text (annotation) metrics; see [`Self::image_to_text_ranks`].
    pub fn image_to_text(&self, image_of_caption: &[usize]) -> Result<RetrievalMetrics> {
        RetrievalMetrics::from_ranks(&self.image_to_text_ranks(image_of_caption)?)
    }

    /// Text-to-image (search) metrics; see [`Self::text_to_image_ranks`].
    pub fn text_to_image(&self, image_of_caption: &[usize]) -> Result<RetrievalMetrics> {
        RetrievalMetrics::from_ranks(&self.text_to_image_ranks(image_of_caption)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_by_hand_with_two_captions_per_image() {
        // 3 images, 6 captions (2 each)
        #[rustfmt::skip]
        let scores = [
            0.9, 0.1, 0.8, 0.2, 0.0, 0.0, // image 0: own captions 0, 1; best 0.9 -> rank 1
            0.5, 0.6, 0.7, 0.1, 0.0, 0.0, // image 1: own 2, 3; best 0.7 -> rank 1
            0.9, 0.8, 0.7, 0.0, 0.6, 0.5, // image 2: own 4, 5; best 0.6 -> 3 above -> rank 4
        ];
        let sims = Similarities::new(&scores, 3, 6).unwrap();
        let map = captions_per_image(3, 2);
        assert_eq!(map, [0, 0, 1, 1, 2, 2]);
        assert_eq!(sims.image_to_text_ranks(&map).unwrap(), [1, 1, 4]);
        // caption columns: c0 (0.9, 0.5, 0.9) ties with image 2 -> rank 2 (pessimistic);
        // c2 (0.8, 0.7, 0.7): image 0 above, image 2 tied -> rank 3
        assert_eq!(sims.text_to_image_ranks(&map).unwrap(), [2, 3, 3, 2, 1, 1]);
        let m = sims.image_to_text(&map).unwrap();
        assert!((m.r1 - 200.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            (m.r5, m.r10, m.median_rank, m.mean_rank),
            (100.0, 100.0, 1.0, 2.0)
        );
        assert_eq!(sims.score(2, 4), Some(0.6));
        assert_eq!(sims.score(3, 0), None);
    }

    #[test]
    fn metrics_from_ranks_follow_vsepp() {
        let m = RetrievalMetrics::from_ranks(&[1, 2, 6, 11]).unwrap();
        assert_eq!((m.r1, m.r5, m.r10), (25.0, 50.0, 75.0));
        assert_eq!(m.median_rank, 4.0); // floor((2 + 6) / 2)
        assert_eq!(m.mean_rank, 5.0);
        let m = RetrievalMetrics::from_ranks(&[1, 2]).unwrap();
        assert_eq!(m.median_rank, 1.0); // floor(1.5)
    }

    #[test]
    fn constant_scores_rank_last() {
        let scores = [0.5f32; 12];
        let sims = Similarities::new(&scores, 3, 4).unwrap();
        let map = [0, 1, 2, 2];
        assert_eq!(sims.image_to_text_ranks(&map).unwrap(), [4, 4, 3]);
        assert_eq!(sims.text_to_image_ranks(&map).unwrap(), [3, 3, 3, 3]);
    }

    #[test]
    fn from_tensor_copies_any_kind() {
        let t = Tensor::from_slice(&[1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0]).view([2, 3]);
        let sims = Similarities::from_tensor(&t).unwrap();
        assert_eq!((sims.n_images(), sims.n_captions()), (2, 3));
        assert_eq!(sims.score(1, 0), Some(4.0));
        assert!(matches!(
            Similarities::from_tensor(&t.view([6])),
            Err(Error::Shape { .. })
        ));
        let t = Tensor::from_slice(&[1.0f32, f32::NAN]).view([1, 2]);
        assert!(matches!(
            Similarities::from_tensor(&t),
            Err(Error::InvalidParameter { .. })
        ));
    }

    #[test]
    fn empty_and_inconsistent_inputs_are_errors() {
        let invalid =
            |r: Result<Similarities<'_>>| matches!(r, Err(Error::InvalidParameter { .. }));
        assert!(invalid(Similarities::new(&[], 0, 0)));
        assert!(invalid(Similarities::new(&[1.0, 2.0, 3.0], 2, 2)));
        assert!(invalid(Similarities::new(&[1.0], 1, 0)));
        let scores = [0.1f32, 0.2, 0.3, 0.4];
        let sims = Similarities::new(&scores, 2, 2).unwrap();
        for map in [&[0usize][..], &[0, 2], &[0, 0, 1]] {
            assert!(matches!(
                sims.image_to_text(map),
                Err(Error::InvalidParameter { .. })
            ));
            assert!(matches!(
                sims.text_to_image(map),
                Err(Error::InvalidParameter { .. })
            ));
        }
        // image 1 has no caption: an error for image-to-text only
        assert!(matches!(
            sims.image_to_text(&[0, 0]),
            Err(Error::InvalidParameter {
                name: "image_of_caption",
                ..
            })
        ));
        assert_eq!(sims.text_to_image_ranks(&[0, 0]).unwrap(), [2, 2]);
        assert!(RetrievalMetrics::from_ranks(&[]).is_err());
        assert!(RetrievalMetrics::from_ranks(&[1, 0]).is_err());
    }
}
