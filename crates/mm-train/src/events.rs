//! TensorBoard event files: every run directory gets an `events.out.tfevents.*` file beside
//! `metrics.jsonl`, so `tensorboard --logdir runs` follows training live; a finished run adds
//! its test metrics (`test/<name>`) and its pictures (`pictures/<file>`, PNG images).
//!
//! The format is TensorFlow's, written by hand (no protobuf or TensorFlow dependency): a file of
//! TFRecords (`u64` length, masked CRC-32C of the length, the bytes, masked CRC-32C of the
//! bytes), each an `Event` protobuf: the first holds `file_version = "brain.Event:2"`, the
//! others a `wall_time`, a `step` and a `Summary` of `simple_value` scalars. [`read_scalars`]
//! reads them back, checking every checksum.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// TFRecord's checksum: CRC-32C, rotated and offset so that a CRC of CRCs is not trivial.
fn masked_crc(bytes: &[u8]) -> u32 {
    let c = CRC32C.checksum(bytes);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Protobuf: a varint.
fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Protobuf: a length-delimited field.
fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, field << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// What a `Summary.Value` holds.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number (`simple_value`).
    Scalar(f32),
    /// A PNG image (`image`), with its size and channels (1 grey, 3 RGB, 4 RGBA).
    Image {
        /// Pixels high.
        height: u32,
        /// Pixels wide.
        width: u32,
        /// Channels.
        colorspace: u32,
        /// The PNG file's bytes.
        png: Vec<u8>,
    },
}

impl Value {
    /// An image value from a PNG file's bytes (its size and channels read from the header),
    /// or `None` if the bytes are not a PNG.
    pub fn png(png: Vec<u8>) -> Option<Self> {
        // the signature, then IHDR: length, "IHDR", width, height (big-endian), depth, colour type
        if png.len() < 26 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
            return None;
        }
        let be = |k: usize| u32::from_be_bytes([png[k], png[k + 1], png[k + 2], png[k + 3]]);
        let colorspace = match png[25] {
            0 => 1,
            4 => 2,
            6 => 4,
            _ => 3,
        };
        Some(Self::Image {
            height: be(20),
            width: be(16),
            colorspace,
            png,
        })
    }
}

/// An `Event` with `wall_time` and `step`, and either a file version or summary values.
fn event(
    wall_time: f64,
    step: i64,
    file_version: Option<&str>,
    values: &[(String, Value)],
) -> Vec<u8> {
    let mut e = Vec::new();
    varint(&mut e, 1 << 3 | 1); // wall_time: double
    e.extend_from_slice(&wall_time.to_le_bytes());
    varint(&mut e, 2 << 3); // step: int64
    varint(&mut e, step as u64);
    if let Some(v) = file_version {
        bytes_field(&mut e, 3, v.as_bytes());
    }
    if !values.is_empty() {
        let mut summary = Vec::new();
        for (tag, value) in values {
            let mut v = Vec::new();
            bytes_field(&mut v, 1, tag.as_bytes()); // tag
            match value {
                Value::Scalar(x) => {
                    varint(&mut v, 2 << 3 | 5); // simple_value: float
                    v.extend_from_slice(&x.to_le_bytes());
                }
                Value::Image {
                    height,
                    width,
                    colorspace,
                    png,
                } => {
                    let mut img = Vec::new();
                    for (field, x) in [(1, height), (2, width), (3, colorspace)] {
                        varint(&mut img, field << 3);
                        varint(&mut img, u64::from(*x));
                    }
                    bytes_field(&mut img, 4, png); // encoded_image_string
                    bytes_field(&mut v, 4, &img); // image
                }
            }
            bytes_field(&mut summary, 1, &v); // Summary.value
        }
        bytes_field(&mut e, 5, &summary); // Event.summary
    }
    e
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Appends events to one `events.out.tfevents.<seconds>.<host>.<pid>` file of a run directory.
#[derive(Debug)]
pub struct EventWriter {
    file: BufWriter<std::fs::File>,
    path: PathBuf,
}

impl EventWriter {
    /// Starts a new event file in `dir` (a resumed run starts another one: TensorBoard reads
    /// them all, and a step it has seen before replaces the earlier points).
    pub fn create(dir: &Path) -> Result<Self> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty() && !h.contains('/'))
            .unwrap_or_else(|| "localhost".into());
        let path = dir.join(format!(
            "events.out.tfevents.{}.{host}.{}",
            now() as u64,
            std::process::id()
        ));
        let file = std::fs::File::create(&path).map_err(Error::io(&path))?;
        let mut w = Self {
            file: BufWriter::new(file),
            path,
        };
        w.record(&event(now(), 0, Some("brain.Event:2"), &[]))?;
        Ok(w)
    }

    /// Appends to the newest event file of `dir` (what a finished run adds after training:
    /// test metrics, pictures), or starts one.
    pub fn open(dir: &Path) -> Result<Self> {
        let newest = std::fs::read_dir(dir)
            .map_err(Error::io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("events.out.tfevents."))
            })
            .max();
        let Some(path) = newest else {
            return Self::create(dir);
        };
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(Error::io(&path))?;
        Ok(Self {
            file: BufWriter::new(file),
            path,
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn record(&mut self, data: &[u8]) -> Result<()> {
        let len = (data.len() as u64).to_le_bytes();
        let w = &mut self.file;
        w.write_all(&len)
            .and_then(|()| w.write_all(&masked_crc(&len).to_le_bytes()))
            .and_then(|()| w.write_all(data))
            .and_then(|()| w.write_all(&masked_crc(data).to_le_bytes()))
            .and_then(|()| w.flush())
            .map_err(Error::io(&self.path))
    }

    /// Writes the scalars `(tag, value)` at `step` (written at once, so TensorBoard sees them
    /// live). Non-finite values are written as they are; TensorBoard shows them as gaps.
    pub fn scalars(&mut self, step: usize, scalars: &[(String, f32)]) -> Result<()> {
        let values: Vec<(String, Value)> = scalars
            .iter()
            .map(|(t, x)| (t.clone(), Value::Scalar(*x)))
            .collect();
        self.values(step, &values)
    }

    /// Writes summary values (scalars, images) at `step`, at once.
    pub fn values(&mut self, step: usize, values: &[(String, Value)]) -> Result<()> {
        if values.is_empty() {
            return Ok(());
        }
        self.record(&event(now(), step as i64, None, values))
    }

    /// The scalars of one `metrics.jsonl` line: every number but `step` and `epoch`, tagged
    /// `<split>/<name>` (`train/loss`, `val/accuracy`).
    pub fn metrics_line(&mut self, line: &serde_json::Value) -> Result<()> {
        let Some(obj) = line.as_object() else {
            return Ok(());
        };
        let step = obj
            .get("step")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0) as usize;
        let split = obj
            .get("split")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("metrics");
        let scalars: Vec<(String, f32)> = obj
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "step" | "epoch"))
            .filter_map(|(k, v)| v.as_f64().map(|x| (format!("{split}/{k}"), x as f32)))
            .collect();
        self.scalars(step, &scalars)
    }
}

/// One summary value read back from an event file.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The step.
    pub step: i64,
    /// The tag (`train/loss`, `pictures/spectrograms`).
    pub tag: String,
    /// The value.
    pub value: Value,
}

/// One scalar read back from an event file.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    /// The step.
    pub step: i64,
    /// The tag (`train/loss`).
    pub tag: String,
    /// The value.
    pub value: f32,
}

/// Reads a protobuf varint at `*i`.
fn read_varint(b: &[u8], i: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*i)?;
        *i += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Some(v);
        }
    }
    None
}

/// One field of a protobuf message.
struct Field<'a> {
    number: u64,
    wire: u8,
    /// A varint or fixed-width value.
    value: u64,
    /// A length-delimited value.
    bytes: &'a [u8],
}

/// The fields of a protobuf message, or `None` if it is not one.
fn fields(b: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let key = read_varint(b, &mut i)?;
        let (number, wire) = (key >> 3, (key & 7) as u8);
        let (mut value, mut bytes) = (0, &b[0..0]);
        match wire {
            0 => value = read_varint(b, &mut i)?,
            1 => {
                value = u64::from_le_bytes(b.get(i..i.checked_add(8)?)?.try_into().ok()?);
                i += 8;
            }
            2 => {
                let n = usize::try_from(read_varint(b, &mut i)?).ok()?;
                bytes = b.get(i..i.checked_add(n)?)?;
                i += n;
            }
            5 => {
                value = u64::from(u32::from_le_bytes(
                    b.get(i..i.checked_add(4)?)?.try_into().ok()?,
                ));
                i += 4;
            }
            _ => return None,
        }
        out.push(Field {
            number,
            wire,
            value,
            bytes,
        });
    }
    Some(out)
}

/// The scalars of an event file, in order ([`read_values`] without the images).
pub fn read_scalars(path: &Path) -> Result<Vec<Scalar>> {
    Ok(read_values(path)?
        .into_iter()
        .filter_map(|r| match r.value {
            Value::Scalar(value) => Some(Scalar {
                step: r.step,
                tag: r.tag,
                value,
            }),
            Value::Image { .. } => None,
        })
        .collect())
}

/// The summary values (scalars and images) of an event file, in order. A record cut short at
/// the end (a run killed while writing) ends the read; a checksum that does not match, or a
/// record that is not an `Event`, is an error naming the file and the byte offset.
pub fn read_values(path: &Path) -> Result<Vec<Record>> {
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    let bad = |at: usize, why: &str| Error::InvalidParameter {
        name: "event file",
        reason: format!("{}: {why} at byte {at}", path.display()),
    };
    let mut out = Vec::new();
    let mut at = 0;
    while at + 12 <= bytes.len() {
        let len_bytes = &bytes[at..at + 8];
        let crc = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap_or_default());
        if crc != masked_crc(len_bytes) {
            return Err(bad(at, "the length's checksum does not match"));
        }
        let len = u64::from_le_bytes(len_bytes.try_into().unwrap_or_default());
        let Some(end) = usize::try_from(len)
            .ok()
            .and_then(|n| (at + 12).checked_add(n))
            .filter(|&e| e + 4 <= bytes.len())
        else {
            break; // cut short
        };
        let data = &bytes[at + 12..end];
        let crc = u32::from_le_bytes(bytes[end..end + 4].try_into().unwrap_or_default());
        if crc != masked_crc(data) {
            return Err(bad(at, "the record's checksum does not match"));
        }
        let event = fields(data).ok_or_else(|| bad(at, "not an Event"))?;
        let is = |f: &Field<'_>, number: u64, wire: u8| f.number == number && f.wire == wire;
        let step = event
            .iter()
            .find(|f| is(f, 2, 0))
            .map_or(0, |f| f.value as i64);
        for summary in event.iter().filter(|f| is(f, 5, 2)) {
            for value in fields(summary.bytes)
                .ok_or_else(|| bad(at, "not a Summary"))?
                .iter()
                .filter(|f| is(f, 1, 2))
            {
                let v = fields(value.bytes).ok_or_else(|| bad(at, "not a Summary.Value"))?;
                let Some(tag) = v.iter().find(|f| is(f, 1, 2)) else {
                    continue;
                };
                let tag = String::from_utf8_lossy(tag.bytes).into_owned();
                if let Some(simple) = v.iter().find(|f| is(f, 2, 5)) {
                    out.push(Record {
                        step,
                        tag,
                        value: Value::Scalar(f32::from_bits(simple.value as u32)),
                    });
                } else if let Some(image) = v.iter().find(|f| is(f, 4, 2)) {
                    let img = fields(image.bytes).ok_or_else(|| bad(at, "not an Image"))?;
                    let int = |n| {
                        img.iter()
                            .find(|f| is(f, n, 0))
                            .map_or(0, |f| f.value as u32)
                    };
                    out.push(Record {
                        step,
                        tag,
                        value: Value::Image {
                            height: int(1),
                            width: int(2),
                            colorspace: int(3),
                            png: img
                                .iter()
                                .find(|f| is(f, 4, 2))
                                .map(|f| f.bytes.to_vec())
                                .unwrap_or_default(),
                        },
                    });
                }
            }
        }
        at = end + 4;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// CRC-32C's check value (the catalogue's `123456789`), and the file-version event's
    /// protobuf bytes field by field (wall_time 1.5 as a double, step 0, file_version).
    #[test]
    fn checksums_are_tfrecords() {
        assert_eq!(CRC32C.checksum(b"123456789"), 0xe306_9283);
        let data = event(1.5, 0, Some("brain.Event:2"), &[]);
        assert_eq!(
            data,
            [
                &[0x09][..],
                &1.5f64.to_le_bytes(),
                &[0x10, 0x00, 0x1a, 0x0d],
                b"brain.Event:2"
            ]
            .concat()
        );
    }

    /// A 3x2 RGB PNG, as the `image` crate writes it.
    fn image_png(out: &mut Vec<u8>) {
        let img = image::RgbImage::from_pixel(3, 2, image::Rgb([10, 200, 30]));
        img.write_to(&mut std::io::Cursor::new(out), image::ImageFormat::Png)
            .unwrap();
    }

    #[test]
    fn scalars_round_trip_and_a_cut_record_ends_the_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        let line =
            serde_json::json!({"epoch": 0, "loss": 2.5, "lr": 0.001, "split": "train", "step": 7});
        w.metrics_line(&line).unwrap();
        w.scalars(
            9,
            &[("val/accuracy".into(), 61.25), ("val/neg".into(), -1e-3)],
        )
        .unwrap();
        let path = w.path().to_owned();
        drop(w);
        let s = read_scalars(&path).unwrap();
        let got: Vec<(i64, &str, f32)> = s
            .iter()
            .map(|s| (s.step, s.tag.as_str(), s.value))
            .collect();
        assert_eq!(
            got,
            [
                (7, "train/loss", 2.5),
                (7, "train/lr", 0.001),
                (9, "val/accuracy", 61.25),
                (9, "val/neg", -1e-3)
            ]
        );
        // an image, appended to the same file by a second writer
        let png = {
            let mut b = Vec::new();
            image_png(&mut b);
            b
        };
        let mut w = EventWriter::open(dir.path()).unwrap();
        assert_eq!(w.path(), path);
        w.values(
            9,
            &[("pictures/x".into(), Value::png(png.clone()).unwrap())],
        )
        .unwrap();
        drop(w);
        let last = read_values(&path).unwrap().pop().unwrap();
        assert_eq!(
            last.value,
            Value::Image {
                height: 2,
                width: 3,
                colorspace: 3,
                png
            }
        );
        assert_eq!(read_scalars(&path).unwrap().len(), 4);
        // a run killed mid-record: the complete records still read
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 5]).unwrap();
        assert_eq!(read_values(&path).unwrap().len(), 4);
        // a flipped byte is found
        let mut flipped = bytes.clone();
        let k = flipped.len() - 10;
        flipped[k] ^= 1;
        std::fs::write(&path, &flipped).unwrap();
        assert!(
            read_scalars(&path)
                .unwrap_err()
                .to_string()
                .contains("checksum")
        );
    }
}
