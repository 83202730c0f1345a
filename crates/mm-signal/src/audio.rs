//! Reading and writing audio: WAV through `hound` (8/16/24/32-bit integer and 32-bit float, any
//! channel count), channel mixdown, and resampling through `rubato`.

use std::io::{Read, Seek};
use std::path::Path;

use audioadapter_buffers::direct::SequentialSlice;
use ndarray::{Array2, Axis};
use rubato::{Fft, FixedSync, Resampler};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, invalid};

/// Decoded audio: `samples` is `[channels, frames]`, scaled to `[-1, 1)` as soundfile (and so
/// librosa) scales integers (`x / 2^(bits - 1)`).
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// `[channels, frames]`.
    pub samples: Array2<f32>,
    /// Frames per second.
    pub sample_rate: u32,
}

impl Audio {
    /// Number of channels.
    pub fn channels(&self) -> usize {
        self.samples.nrows()
    }

    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.ncols()
    }

    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.frames() as f64 / f64::from(self.sample_rate)
    }

    /// The mean of the channels (librosa's `to_mono`).
    pub fn to_mono(&self) -> Vec<f32> {
        match self.samples.mean_axis(Axis(0)) {
            Some(m) => m.to_vec(),
            None => Vec::new(),
        }
    }

    /// Resamples every channel to `rate` (no-op when equal).
    pub fn resampled(&self, rate: u32) -> Result<Audio> {
        if rate == self.sample_rate {
            return Ok(self.clone());
        }
        let mut rows = Vec::with_capacity(self.channels());
        for ch in self.samples.rows() {
            rows.push(resample(&ch.to_vec(), self.sample_rate, rate)?);
        }
        let frames = rows.first().map_or(0, Vec::len);
        let flat: Vec<f32> = rows.into_iter().flatten().collect();
        Ok(Audio {
            samples: Array2::from_shape_vec((self.channels(), frames), flat)
                .map_err(|e| invalid("samples", e.to_string()))?,
            sample_rate: rate,
        })
    }
}

/// The sample encoding of a WAV file to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum WavEncoding {
    /// 16-bit integer PCM.
    #[default]
    Pcm16,
    /// 24-bit integer PCM.
    Pcm24,
    /// 32-bit float.
    Float32,
}

/// Whether `head` (a file's first bytes) starts a RIFF WAVE file.
fn is_riff_wave(head: &[u8]) -> bool {
    head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE"
}

/// Whether a file goes to hound: a `.wav`/`.wave` name, or a RIFF WAVE header whatever the name
/// (symphonia 0.5's RIFF reader overflows a shift on some WAVE_FORMAT_EXTENSIBLE headers,
/// fuzz/audio_decode: a panic in debug builds).
fn is_wav(ext: Option<&str>, head: &[u8]) -> bool {
    matches!(ext, Some("wav" | "wave")) || is_riff_wave(head)
}

/// WAV from `reader` through hound, its decode errors naming `name`.
fn read_wav_named<R: Read + Seek>(reader: R, name: &Path) -> Result<Audio> {
    read_wav_from(reader).map_err(|e| match e {
        Error::Decode { reason, .. } => Error::Decode {
            path: name.to_owned(),
            reason,
        },
        other => other,
    })
}

/// What a build without feature `formats` says to a file that is not WAV.
#[cfg(not(feature = "formats"))]
fn not_wav(name: &Path) -> Error {
    Error::UnsupportedFormat {
        what: format!("{} (only WAV without feature `formats`)", name.display()),
    }
}

/// Reads an audio file: WAV with hound (also under another extension: a RIFF WAVE header
/// decides); FLAC, Ogg Vorbis and MP3 with symphonia (feature `formats`, on by default). The
/// format is taken from the contents, the extension is a hint.
pub fn read_audio(path: &Path) -> Result<Audio> {
    if path.is_dir() {
        return Err(Error::Io {
            path: path.to_owned(),
            source: std::io::Error::new(
                std::io::ErrorKind::IsADirectory,
                "Is a directory, not an audio file",
            ),
        });
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let mut head = [0u8; 12];
    let read_head = std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok();
    if is_wav(ext.as_deref(), if read_head { &head } else { &[] }) {
        return read_wav(path);
    }
    #[cfg(feature = "formats")]
    return read_symphonia(path, ext.as_deref());
    #[cfg(not(feature = "formats"))]
    Err(not_wav(path))
}

/// Decodes an audio file held in memory, as [`read_audio`] reads one from disk: `ext` (`"wav"`,
/// `"flac"`, `"ogg"`, `"mp3"`, ...) picks WAV or symphonia and hints the format; `name` only
/// names the source in errors.
pub fn decode_audio(bytes: Vec<u8>, ext: Option<&str>, name: &Path) -> Result<Audio> {
    decode_audio_capped(bytes, ext, name, usize::MAX)
}

/// [`decode_audio`] that stops with [`Error::Decode`] once more than `max_frames` frames per
/// channel have been decoded: compressed formats can hold hours of audio in kilobytes (a FLAC
/// frame of constant samples takes a few bytes for 65,535 of them), so a server decoding
/// uploads, or a fuzzer, bounds the memory a file can claim. WAV needs no cap: its size
/// follows its bytes.
pub fn decode_audio_capped(
    bytes: Vec<u8>,
    ext: Option<&str>,
    name: &Path,
    max_frames: usize,
) -> Result<Audio> {
    let ext = ext.map(str::to_ascii_lowercase);
    if is_wav(ext.as_deref(), &bytes) {
        return read_wav_named(std::io::Cursor::new(bytes), name);
    }
    #[cfg(feature = "formats")]
    return decode_symphonia(
        Box::new(std::io::Cursor::new(bytes)),
        name,
        ext.as_deref(),
        max_frames,
    );
    #[cfg(not(feature = "formats"))]
    {
        let _ = max_frames;
        Err(not_wav(name))
    }
}

#[cfg(feature = "formats")]
fn read_symphonia(path: &Path, ext: Option<&str>) -> Result<Audio> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    decode_symphonia(Box::new(file), path, ext, usize::MAX)
}

/// Finds what symphonia 0.5's probe would open and checks it first; `Some(reason)` to refuse.
/// The probe scans the first MiB byte by byte for a registered marker (`fLaC`, `OggS`, `RIFF`,
/// an MPEG layer III sync word; an `ID3` tag is read and the scan goes on after it) and opens
/// the first it meets. Two of its readers trust the file (fuzz/audio_decode): the FLAC reader
/// allocates what a picture or comment block declares before reading it (3.3 KB files asked
/// for 2.2-3.2 GB, an abort where memory is not overcommitted), and the RIFF reader overflows a
/// shift on some extensible headers. So a FLAC stream's picture and comment blocks are checked
/// against their lengths, and a RIFF header past the start is refused (at the start, WAV goes
/// to hound). Leaves the source at its start.
#[cfg(feature = "formats")]
fn symphonia_precheck<S: std::io::Read + std::io::Seek + ?Sized>(
    src: &mut S,
) -> std::io::Result<Option<String>> {
    use std::io::SeekFrom;
    const PROBE_LIMIT: u64 = (1 << 20) + 16;
    let mut prefix = Vec::new();
    std::io::Read::take(&mut *src, PROBE_LIMIT).read_to_end(&mut prefix)?;
    let mut problem = None;
    let mut at = 0usize;
    while at < prefix.len() {
        let rest = &prefix[at..];
        let mpeg3 = rest.len() >= 2
            && rest[0] == 0xff
            && matches!(rest[1], 0xfa | 0xfb | 0xf2 | 0xf3 | 0xe2 | 0xe3);
        if rest.starts_with(b"fLaC") {
            src.seek(SeekFrom::Start(at as u64 + 4))?;
            problem = flac_blocks_problem(src)?;
            break;
        } else if rest.starts_with(b"RIFF") {
            if at > 0 {
                problem = Some(format!(
                    "a RIFF header at byte {at}, not at the start of the file"
                ));
            }
            break;
        } else if rest.starts_with(b"OggS") || mpeg3 {
            break;
        } else if rest.starts_with(b"ID3") && rest.len() >= 10 {
            // an ID3v2 tag: 10 bytes, a synchsafe size, a 10-byte footer when flagged
            let size = rest[6..10]
                .iter()
                .fold(0usize, |s, &b| (s << 7) | usize::from(b & 0x7f));
            let footer = if rest[5] & 0x10 != 0 { 10 } else { 0 };
            at += 10 + size + footer;
        } else {
            at += 1;
        }
    }
    src.seek(SeekFrom::Start(0))?;
    Ok(problem)
}

/// Walks FLAC metadata blocks from the reader's position (just past `fLaC`).
#[cfg(feature = "formats")]
fn flac_blocks_problem<S: std::io::Read + std::io::Seek + ?Sized>(
    src: &mut S,
) -> std::io::Result<Option<String>> {
    loop {
        let mut h = [0u8; 4];
        if src.read_exact(&mut h).is_err() {
            return Ok(None);
        }
        let (last, kind) = (h[0] & 0x80 != 0, h[0] & 0x7f);
        let len = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        if kind == 4 || kind == 6 {
            let mut block = Vec::new();
            std::io::Read::take(&mut *src, len as u64).read_to_end(&mut block)?;
            let fits = if kind == 6 {
                picture_fits(&block)
            } else {
                comments_fit(&block)
            };
            if !fits {
                let what = if kind == 6 { "picture" } else { "comment" };
                return Ok(Some(format!(
                    "a FLAC {what} block declares more bytes than its {len}"
                )));
            }
        } else {
            src.seek(std::io::SeekFrom::Current(len as i64))?;
        }
        if last {
            return Ok(None);
        }
    }
}

/// A FLAC PICTURE block's three declared lengths (media type, description, data) fit in it.
#[cfg(feature = "formats")]
fn picture_fits(b: &[u8]) -> bool {
    let be = |at: usize| {
        b.get(at..at + 4)
            .map(|x| u32::from_be_bytes([x[0], x[1], x[2], x[3]]) as usize)
    };
    let Some(mime) = be(4) else { return false };
    let Some(desc_at) = 8usize.checked_add(mime) else {
        return false;
    };
    let Some(desc) = be(desc_at) else {
        return false;
    };
    let Some(data_len_at) = (desc_at + 4).checked_add(desc).map(|x| x + 16) else {
        return false;
    };
    let Some(data) = be(data_len_at) else {
        return false;
    };
    (data_len_at + 4)
        .checked_add(data)
        .is_some_and(|end| end <= b.len())
}

/// A VORBIS_COMMENT block's vendor string and comments fit in it (little-endian lengths).
#[cfg(feature = "formats")]
fn comments_fit(b: &[u8]) -> bool {
    let le = |at: usize| {
        b.get(at..at + 4)
            .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]) as usize)
    };
    let Some(vendor) = le(0) else { return false };
    let Some(mut at) = 4usize.checked_add(vendor) else {
        return false;
    };
    let Some(n) = le(at) else { return false };
    at += 4;
    for _ in 0..n {
        let Some(len) = le(at) else { return false };
        match (at + 4).checked_add(len) {
            Some(end) if end <= b.len() => at = end,
            _ => return false,
        }
    }
    true
}

#[cfg(feature = "formats")]
fn decode_symphonia(
    mut source: Box<dyn symphonia::core::io::MediaSource>,
    path: &Path,
    ext: Option<&str>,
    max_frames: usize,
) -> Result<Audio> {
    use symphonia::core::audio::SampleBuffer;
    use symphonia::core::codecs::{CODEC_TYPE_NULL, DecoderOptions};
    use symphonia::core::errors::Error as SymError;
    use symphonia::core::formats::FormatOptions;
    use symphonia::core::io::MediaSourceStream;
    use symphonia::core::meta::MetadataOptions;
    use symphonia::core::probe::Hint;

    let decode = |reason: String| Error::Decode {
        path: path.to_owned(),
        reason,
    };
    let io = |source: std::io::Error| Error::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(reason) = symphonia_precheck(&mut source).map_err(io)? {
        return Err(decode(reason));
    }
    let mss = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(e) = ext {
        hint.with_extension(e);
    }
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| match e {
            SymError::Unsupported(what) => Error::UnsupportedFormat {
                what: format!("{}: {what}", path.display()),
            },
            other => decode(other.to_string()),
        })?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| decode("no audio track".into()))?;
    let track_id = track.id;
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| Error::UnsupportedFormat {
            what: format!("{}: {e}", path.display()),
        })?;
    let mut rate = track.codec_params.sample_rate;
    let mut channels: Vec<Vec<f32>> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(decode(e.to_string())),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let buf = decoder.decode(&packet).map_err(|e| decode(e.to_string()))?;
        let spec = *buf.spec();
        rate = Some(spec.rate);
        let n_ch = spec.channels.count();
        if channels.is_empty() {
            channels = vec![Vec::new(); n_ch];
        } else if channels.len() != n_ch {
            return Err(decode("the channel count changes mid-stream".into()));
        }
        let frames = buf.frames();
        if channels.first().map_or(0, Vec::len).saturating_add(frames) > max_frames {
            return Err(decode(format!(
                "more than {max_frames} frames decoded (the cap on this decode)"
            )));
        }
        let mut sb = SampleBuffer::<f32>::new(buf.capacity() as u64, spec);
        sb.copy_planar_ref(buf);
        for (c, ch) in channels.iter_mut().enumerate() {
            ch.extend_from_slice(&sb.samples()[c * frames..(c + 1) * frames]);
        }
    }
    let sample_rate = rate
        .filter(|&r| r > 0)
        .ok_or_else(|| decode("no sample rate".into()))?;
    let frames = channels.first().map_or(0, Vec::len);
    let n_ch = channels.len().max(1);
    let flat: Vec<f32> = channels.into_iter().flatten().collect();
    Ok(Audio {
        samples: Array2::from_shape_vec((n_ch, frames), flat).map_err(|e| decode(e.to_string()))?,
        sample_rate,
    })
}

/// Reads a WAV file.
pub fn read_wav(path: &Path) -> Result<Audio> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    read_wav_named(std::io::BufReader::new(file), path)
}

/// Reads WAV data from any reader (errors name the path `<reader>`).
pub fn read_wav_from<R: Read + Seek>(reader: R) -> Result<Audio> {
    let decode = |reason: String| Error::Decode {
        path: "<reader>".into(),
        reason,
    };
    let mut r = hound::WavReader::new(reader).map_err(|e| decode(e.to_string()))?;
    let spec = r.spec();
    if spec.channels == 0 || spec.sample_rate == 0 {
        return Err(decode(format!(
            "{} channels at {} Hz",
            spec.channels, spec.sample_rate
        )));
    }
    let channels = usize::from(spec.channels);
    let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => r
            .samples::<f32>()
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| decode(e.to_string()))?,
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f64;
            r.samples::<i32>()
                .map(|s| s.map(|v| (f64::from(v) * scale) as f32))
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| decode(e.to_string()))?
        }
        (fmt, bits) => {
            return Err(Error::UnsupportedFormat {
                what: format!("{bits}-bit {fmt:?} WAV"),
            });
        }
    };
    if !interleaved.len().is_multiple_of(channels) {
        return Err(decode(format!(
            "{} samples do not divide into {channels} channels",
            interleaved.len()
        )));
    }
    let frames = interleaved.len() / channels;
    let samples = Array2::from_shape_fn((channels, frames), |(c, f)| interleaved[f * channels + c]);
    Ok(Audio {
        samples,
        sample_rate: spec.sample_rate,
    })
}

/// Writes `audio` as a WAV file, atomically (temporary file, then rename). Integer encodings
/// clip to `[-1, 1]`.
pub fn write_wav(path: &Path, audio: &Audio, encoding: WavEncoding) -> Result<()> {
    let channels = u16::try_from(audio.channels())
        .ok()
        .filter(|&c| c > 0)
        .ok_or_else(|| {
            invalid(
                "channels",
                format!("{} is not in 1..=65535", audio.channels()),
            )
        })?;
    if audio.sample_rate == 0 {
        return Err(invalid("sample_rate", "must be positive"));
    }
    let (bits, format) = match encoding {
        WavEncoding::Pcm16 => (16, hound::SampleFormat::Int),
        WavEncoding::Pcm24 => (24, hound::SampleFormat::Int),
        WavEncoding::Float32 => (32, hound::SampleFormat::Float),
    };
    let spec = hound::WavSpec {
        channels,
        sample_rate: audio.sample_rate,
        bits_per_sample: bits,
        sample_format: format,
    };
    let tmp = path.with_extension("wav.tmp");
    let io = |source: std::io::Error, p: &Path| Error::Io {
        path: p.to_owned(),
        source,
    };
    let hound_err = |e: hound::Error| match e {
        hound::Error::IoError(source) => io(source, &tmp),
        other => invalid("audio", other.to_string()),
    };
    let written = (|| {
        let mut w = hound::WavWriter::create(&tmp, spec).map_err(hound_err)?;
        write_frames(&mut w, audio, encoding, bits).map_err(hound_err)?;
        w.finalize().map_err(hound_err)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(|e| io(e, path))
}

/// The samples of `audio`, frame by frame, as `encoding` stores them.
fn write_frames<W: std::io::Write + std::io::Seek>(
    w: &mut hound::WavWriter<W>,
    audio: &Audio,
    encoding: WavEncoding,
    bits: u16,
) -> std::result::Result<(), hound::Error> {
    let full = f64::from(1u32 << (bits - 1));
    for f in 0..audio.frames() {
        for c in 0..audio.channels() {
            let x = audio.samples[[c, f]];
            match encoding {
                WavEncoding::Float32 => w.write_sample(x)?,
                _ => {
                    let v = (f64::from(x).clamp(-1.0, 1.0) * full)
                        .round()
                        .min(full - 1.0);
                    w.write_sample(v as i32)?
                }
            }
        }
    }
    Ok(())
}

/// Resamples a mono signal from `from` Hz to `to` Hz with rubato's FFT resampler (synchronous,
/// band-limited; delay compensated, output length `ceil(len * to / from)`).
pub fn resample(y: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    if from == 0 || to == 0 {
        return Err(invalid("sample_rate", "rates must be positive"));
    }
    if from == to || y.is_empty() {
        return Ok(y.to_vec());
    }
    // rubato's FFTs would panic on a NaN
    if let Some(index) = y.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { index });
    }
    let mut r = Fft::<f32>::new(from as usize, to as usize, 1024, 1, FixedSync::Input)
        .map_err(|e| invalid("sample_rate", e.to_string()))?;
    let input = SequentialSlice::new(y, 1, y.len()).map_err(|e| invalid("y", e.to_string()))?;
    let out = r
        .process_all(&input, y.len(), None)
        .map_err(|e| invalid("y", e.to_string()))?;
    Ok(out.take_data())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f32, rate: u32, secs: f32) -> Vec<f32> {
        (0..(rate as f32 * secs) as usize)
            .map(|i| 0.5 * (std::f32::consts::TAU * freq * i as f32 / rate as f32).sin())
            .collect()
    }

    #[test]
    fn wav_round_trips_in_every_encoding_and_channel_count() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        for channels in [1usize, 2, 5] {
            let frames = 1000;
            let samples = Array2::from_shape_fn((channels, frames), |(c, f)| {
                ((f as f32 * 0.01 * (c + 1) as f32).sin() * 0.9).clamp(-1.0, 1.0)
            });
            let audio = Audio {
                samples,
                sample_rate: 22050,
            };
            for (enc, tol) in [
                (WavEncoding::Pcm16, 1.0 / 32768.0),
                (WavEncoding::Pcm24, 1.0 / 8_388_608.0),
                (WavEncoding::Float32, 0.0),
            ] {
                let p = dir.join(format!("{channels}-{enc:?}.wav"));
                write_wav(&p, &audio, enc).unwrap();
                let back = read_wav(&p).unwrap();
                assert_eq!(back.sample_rate, 22050);
                assert_eq!(back.samples.dim(), (channels, frames));
                let err = (&back.samples - &audio.samples)
                    .mapv(f32::abs)
                    .fold(0f32, |a, &b| a.max(b));
                assert!(err <= tol, "{enc:?} {channels}ch err {err}");
            }
        }
    }

    #[test]
    fn eight_bit_and_integer_scaling_follow_soundfile() {
        // hand-made 8-bit WAV: unsigned samples 0, 128, 255 -> -1, 0, 127/128
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8000,
            bits_per_sample: 8,
            sample_format: hound::SampleFormat::Int,
        };
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut w = hound::WavWriter::new(&mut buf, spec).unwrap();
            for v in [-128i8, 0, 127] {
                w.write_sample(v).unwrap();
            }
            w.finalize().unwrap();
        }
        buf.set_position(0);
        let a = read_wav_from(buf).unwrap();
        assert_eq!(a.samples.row(0).to_vec(), vec![-1.0, 0.0, 127.0 / 128.0]);
    }

    #[test]
    fn truncated_corrupt_and_unsupported_files_are_typed_errors() {
        let audio = Audio {
            samples: Array2::from_elem((1, 100), 0.25),
            sample_rate: 16000,
        };
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let p = dir.join("ok.wav");
        write_wav(&p, &audio, WavEncoding::Pcm16).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        for cut in [0usize, 4, 12, 30, 43] {
            let e = read_wav_from(std::io::Cursor::new(bytes[..cut].to_vec())).unwrap_err();
            assert!(matches!(e, Error::Decode { .. }), "cut {cut}: {e:?}");
        }
        let mut garbage = bytes.clone();
        garbage[0..4].copy_from_slice(b"RIFX");
        assert!(matches!(
            read_wav_from(std::io::Cursor::new(garbage)),
            Err(Error::Decode { .. })
        ));
        let mut fmt = bytes.clone();
        fmt[34] = 12; // bits per sample 12: hound rejects, or we do
        assert!(read_wav_from(std::io::Cursor::new(fmt)).is_err());
        let missing = read_wav(&dir.join("missing.wav")).unwrap_err();
        assert!(matches!(missing, Error::Io { .. }) && missing.to_string().contains("missing.wav"));
    }

    #[test]
    fn resampling_keeps_a_tone_and_its_length() {
        let y = tone(440.0, 44100, 1.0);
        let z = resample(&y, 44100, 16000).unwrap();
        assert!((z.len() as i64 - 16000).abs() <= 1, "{}", z.len());
        // the tone's frequency survives: compare with a 440 Hz tone at 16 kHz by correlation
        let r = tone(440.0, 16000, 1.0);
        let (mut best, n) = (0f32, 8000);
        for lag in 0..40 {
            let c: f32 = (1000..1000 + n).map(|i| z[i] * r[i + lag]).sum::<f32>() / n as f32;
            best = best.max(c);
        }
        assert!(best > 0.12, "correlation {best}");
        // energy is kept (0.125 for a 0.5-amplitude sine)
        let e: f32 = z[1000..15000].iter().map(|v| v * v).sum::<f32>() / 14000.0;
        assert!((e - 0.125).abs() < 0.005, "energy {e}");
        // a tone above the new Nyquist is removed
        let hi = resample(&tone(10_000.0, 44100, 0.5), 44100, 16000).unwrap();
        let e_hi: f32 = hi[500..7000].iter().map(|v| v * v).sum::<f32>() / 6500.0;
        assert!(e_hi < 1e-4, "aliased energy {e_hi}");
        assert!(resample(&y, 0, 16000).is_err());
        // a NaN or an infinity is a typed error, not a panic inside the FFTs
        for bad in [f32::NAN, f32::INFINITY] {
            let mut z = y.clone();
            z[123] = bad;
            assert!(matches!(
                resample(&z, 44100, 16000),
                Err(Error::NonFinite { index: 123 })
            ));
        }
    }

    #[test]
    fn mono_is_the_channel_mean() {
        let a = Audio {
            samples: ndarray::array![[1.0f32, 0.0], [0.0, -1.0]],
            sample_rate: 8000,
        };
        assert_eq!(a.to_mono(), vec![0.5, -0.5]);
        assert_eq!(a.duration_s(), 2.0 / 8000.0);
    }
}
