//! Batch feature extraction over many clips with rayon: one plan shared by every worker, one
//! scratch per worker, no allocation per clip.

use ndarray::{Array2, Array3, ArrayView2, ArrayViewMut2, ArrayViewMut3, Axis};
use rayon::prelude::*;

use crate::db::{DbConfig, power_to_db_inplace};
use crate::error::{Error, Result};
use crate::mel::{MelScratch, MelSpectrogram};
use crate::mfcc::Mfcc;
use crate::stft::{SpectrumKind, Stft, StftScratch};

/// A per-clip transform that yields a `[rows, frames]` feature matrix; implemented by every
/// feature of this crate, so that [`batch`] and [`batch_into`] work with any of them.
pub trait FrameFeature: Sync {
    /// Per-worker buffers.
    type Scratch: Send;
    /// Fresh buffers.
    fn make_scratch(&self) -> Self::Scratch;
    /// Rows of the output (bins, mel bands, coefficients).
    fn rows(&self) -> usize;
    /// Frames for a clip of `len` samples.
    fn n_frames(&self, len: usize) -> Result<usize>;
    /// The features of `y` into `out` (`[rows, frames]`).
    fn process_into(
        &self,
        y: &[f32],
        out: ArrayViewMut2<'_, f32>,
        scratch: &mut Self::Scratch,
    ) -> Result<()>;
}

/// A magnitude or power spectrogram as a [`FrameFeature`].
#[derive(Debug, Clone)]
pub struct Spectrogram {
    /// The STFT.
    pub stft: Stft,
    /// Magnitude or power.
    pub kind: SpectrumKind,
}

impl FrameFeature for Spectrogram {
    type Scratch = StftScratch;
    fn make_scratch(&self) -> StftScratch {
        self.stft.make_scratch()
    }
    fn rows(&self) -> usize {
        self.stft.n_bins()
    }
    fn n_frames(&self, len: usize) -> Result<usize> {
        self.stft.n_frames(len)
    }
    fn process_into(
        &self,
        y: &[f32],
        out: ArrayViewMut2<'_, f32>,
        s: &mut StftScratch,
    ) -> Result<()> {
        self.stft.spectrum_into(y, self.kind, out, s)
    }
}

impl FrameFeature for MelSpectrogram {
    type Scratch = MelScratch;
    fn make_scratch(&self) -> MelScratch {
        MelSpectrogram::make_scratch(self)
    }
    fn rows(&self) -> usize {
        self.n_mels()
    }
    fn n_frames(&self, len: usize) -> Result<usize> {
        MelSpectrogram::n_frames(self, len)
    }
    fn process_into(
        &self,
        y: &[f32],
        out: ArrayViewMut2<'_, f32>,
        s: &mut MelScratch,
    ) -> Result<()> {
        MelSpectrogram::process_into(self, y, out, s)
    }
}

/// A log-mel spectrogram: mel power in dB, clamped per clip (librosa's
/// `power_to_db(melspectrogram(y))`).
#[derive(Debug, Clone)]
pub struct LogMelSpectrogram {
    /// The mel spectrogram.
    pub mel: MelSpectrogram,
    /// The dB conversion.
    pub db: DbConfig,
}

impl FrameFeature for LogMelSpectrogram {
    type Scratch = MelScratch;
    fn make_scratch(&self) -> MelScratch {
        self.mel.make_scratch()
    }
    fn rows(&self) -> usize {
        self.mel.n_mels()
    }
    fn n_frames(&self, len: usize) -> Result<usize> {
        self.mel.n_frames(len)
    }
    fn process_into(
        &self,
        y: &[f32],
        mut out: ArrayViewMut2<'_, f32>,
        s: &mut MelScratch,
    ) -> Result<()> {
        self.mel.process_into(y, out.view_mut(), s)?;
        power_to_db_inplace(&mut out, &self.db)
    }
}

/// Buffers for MFCC: the mel stage's, plus the dB mel matrix.
#[derive(Debug)]
pub struct MfccScratch {
    mel: MelScratch,
    db_mel: Array2<f32>,
}

impl FrameFeature for Mfcc {
    type Scratch = MfccScratch;
    fn make_scratch(&self) -> MfccScratch {
        MfccScratch {
            mel: self.mel().make_scratch(),
            db_mel: Array2::zeros((self.mel().n_mels(), 0)),
        }
    }
    fn rows(&self) -> usize {
        self.n_mfcc()
    }
    fn n_frames(&self, len: usize) -> Result<usize> {
        self.mel().n_frames(len)
    }
    fn process_into(
        &self,
        y: &[f32],
        out: ArrayViewMut2<'_, f32>,
        s: &mut MfccScratch,
    ) -> Result<()> {
        let frames = self.mel().n_frames(y.len())?;
        if s.db_mel.ncols() != frames {
            s.db_mel = Array2::zeros((self.mel().n_mels(), frames));
        }
        self.mel()
            .process_into(y, s.db_mel.view_mut(), &mut s.mel)?;
        power_to_db_inplace(&mut s.db_mel, &self.db())?;
        self.from_db_mel_into(s.db_mel.view(), out)
    }
}

/// Features of every clip (row) of `clips` (`[batch, samples]`) into `out`
/// (`[batch, rows, frames]`), in parallel on the current rayon pool.
pub fn batch_into<F: FrameFeature>(
    feature: &F,
    clips: ArrayView2<'_, f32>,
    mut out: ArrayViewMut3<'_, f32>,
) -> Result<()> {
    let frames = feature.n_frames(clips.ncols())?;
    let want = (clips.nrows(), feature.rows(), frames);
    if out.dim() != want {
        return Err(Error::Shape {
            name: "out",
            expected: vec![want.0, want.1, want.2],
            got: out.shape().to_vec(),
        });
    }
    let standard = clips.is_standard_layout();
    let outs: Vec<ArrayViewMut2<'_, f32>> = out.axis_iter_mut(Axis(0)).collect();
    let ins: Vec<_> = clips.axis_iter(Axis(0)).collect();
    outs.into_par_iter()
        .zip(ins.into_par_iter())
        .try_for_each_init(
            || (feature.make_scratch(), Vec::new()),
            |(scratch, buf), (o, clip)| {
                let y: &[f32] = if standard {
                    clip.to_slice().unwrap_or_default()
                } else {
                    buf.clear();
                    buf.extend(clip.iter());
                    buf
                };
                feature.process_into(y, o, scratch)
            },
        )
}

/// Features of every clip of `clips` (`[batch, samples]`), `[batch, rows, frames]`.
pub fn batch<F: FrameFeature>(feature: &F, clips: ArrayView2<'_, f32>) -> Result<Array3<f32>> {
    let frames = feature.n_frames(clips.ncols())?;
    let mut out = Array3::zeros((clips.nrows(), feature.rows(), frames));
    batch_into(feature, clips, out.view_mut())?;
    Ok(out)
}

/// Features of clips of different lengths, in parallel.
pub fn batch_ragged<F: FrameFeature>(feature: &F, clips: &[&[f32]]) -> Result<Vec<Array2<f32>>> {
    clips
        .par_iter()
        .map_init(
            || feature.make_scratch(),
            |scratch, y| {
                let mut out = Array2::zeros((feature.rows(), feature.n_frames(y.len())?));
                feature.process_into(y, out.view_mut(), scratch)?;
                Ok(out)
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MelConfig, MfccConfig, StftConfig};

    fn clips(n: usize, len: usize) -> Array2<f32> {
        Array2::from_shape_fn((n, len), |(c, i)| {
            ((i as f32) * 0.01 * (c + 1) as f32).sin() + 0.01 * ((i * 7 + c * 13) % 17) as f32
        })
    }

    #[test]
    fn batch_equals_one_by_one_for_every_feature() {
        let x = clips(5, 4000);
        let stft = StftConfig {
            n_fft: 512,
            hop_length: Some(160),
            win_length: Some(400),
            ..Default::default()
        };
        let mel = MelConfig {
            sample_rate_hz: 16000.0,
            n_fft: 512,
            n_mels: 40,
            ..Default::default()
        };
        let log_mel = LogMelSpectrogram {
            mel: MelSpectrogram::new(&stft, &mel).unwrap(),
            db: DbConfig::default(),
        };
        let b = batch(&log_mel, x.view()).unwrap();
        for (i, row) in x.rows().into_iter().enumerate() {
            let mut one = log_mel.mel.process(row.as_slice().unwrap()).unwrap();
            power_to_db_inplace(&mut one, &DbConfig::default()).unwrap();
            assert_eq!(b.index_axis(Axis(0), i), one);
        }
        let mfcc = Mfcc::new(&stft, &mel, &MfccConfig::default()).unwrap();
        let bm = batch(&mfcc, x.view()).unwrap();
        assert_eq!(
            bm.index_axis(Axis(0), 3),
            mfcc.process(x.row(3).as_slice().unwrap()).unwrap()
        );
        let spec = Spectrogram {
            stft: Stft::new(&stft).unwrap(),
            kind: SpectrumKind::Magnitude,
        };
        let bs = batch(&spec, x.slice(ndarray::s![.., ..;2]).view()).unwrap();
        let strided: Vec<f32> = x.row(1).iter().step_by(2).copied().collect();
        assert_eq!(
            bs.index_axis(Axis(0), 1),
            spec.stft.magnitude(&strided).unwrap()
        );
        let ragged = batch_ragged(&log_mel, &[&strided[..1000], &strided[..]]).unwrap();
        assert_eq!(ragged[0].ncols(), 1 + 1000 / 160);
    }

    #[test]
    fn bad_output_shape_and_bad_clips_are_errors() {
        let x = clips(2, 1000);
        let m = MelSpectrogram::new(
            &StftConfig {
                n_fft: 256,
                ..Default::default()
            },
            &MelConfig {
                n_fft: 256,
                n_mels: 16,
                sample_rate_hz: 16000.0,
                ..Default::default()
            },
        )
        .unwrap();
        let mut out = Array3::zeros((2, 16, 3));
        assert!(matches!(
            batch_into(&m, x.view(), out.view_mut()),
            Err(Error::Shape { .. })
        ));
        let mut bad = x.clone();
        bad[[1, 10]] = f32::NAN;
        assert!(matches!(
            batch(&m, bad.view()),
            Err(Error::NonFinite { index: 10 })
        ));
    }
}
