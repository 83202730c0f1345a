//! Multi-modal samples in HDF5 files (layout: `docs/datasets.md`), readable by h5py with no
//! extra code.
//!
//! A [`Schema`] declares per-sample *fixed* fields (an array of one shape and type per sample:
//! an image, a clip of audio, a feature matrix, a label) and *ragged* fields (any number of
//! `i32` sequences per sample: token ids of several captions, question ids). [`Writer`] streams
//! samples into a temporary file and renames it on [`Writer::finish`], so a crash never leaves
//! a half-written data set under the final name. [`Reader`] gives random access to samples and
//! batches; [`BatchIter`] shuffles deterministically from a seed and prefetches on threads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use hdf5::types::VarLenUnicode;
use hdf5::{Extent, Hyperslab, Selection, SimpleExtents, SliceOrIndex};
use hdf5_metno as hdf5;
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The format tag stored in the root attribute `mm_format`.
pub const FORMAT: &str = "mm-dataset";
/// The layout version stored in `mm_format_version`.
pub const FORMAT_VERSION: u32 = 1;
/// Samples buffered in memory before they are written.
const FLUSH_EVERY: usize = 256;

/// Element type of a fixed field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dtype {
    /// `uint8` (images, masks).
    U8,
    /// `int32`.
    I32,
    /// `int64` (labels, ids).
    I64,
    /// `float32` (audio, features, boxes).
    F32,
}

/// One fixed field: every sample has an array of `shape` of `dtype`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldSpec {
    /// Dataset name under `/samples`.
    pub name: String,
    /// Element type.
    pub dtype: Dtype,
    /// Per-sample shape (the stored dataset is `[N, shape...]`).
    pub shape: Vec<usize>,
    /// Store with deflate (level 1); pays for images and masks, not for float audio.
    pub compress: bool,
}

/// The fields of a data set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// Fixed-shape fields.
    pub fixed: Vec<FieldSpec>,
    /// Ragged `i32` sequence fields (several sequences per sample).
    pub ragged: Vec<String>,
}

/// A per-sample array.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `uint8` data.
    U8(ArrayD<u8>),
    /// `int32` data.
    I32(ArrayD<i32>),
    /// `int64` data.
    I64(ArrayD<i64>),
    /// `float32` data.
    F32(ArrayD<f32>),
}

impl Value {
    fn dtype(&self) -> Dtype {
        match self {
            Value::U8(_) => Dtype::U8,
            Value::I32(_) => Dtype::I32,
            Value::I64(_) => Dtype::I64,
            Value::F32(_) => Dtype::F32,
        }
    }

    fn shape(&self) -> &[usize] {
        match self {
            Value::U8(a) => a.shape(),
            Value::I32(a) => a.shape(),
            Value::I64(a) => a.shape(),
            Value::F32(a) => a.shape(),
        }
    }
}

/// One sample: a value per fixed field and a list of sequences per ragged field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Fixed fields by name.
    pub fixed: BTreeMap<String, Value>,
    /// Ragged fields by name.
    pub ragged: BTreeMap<String, Vec<Vec<i32>>>,
}

/// Where a data set came from: stored as JSON in the `/meta` group's attributes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The generator or source ("synthav", "flickr8k", ...).
    pub source: String,
    /// Its version.
    pub version: String,
    /// Its parameters (seed, sizes, ...).
    pub params: serde_json::Value,
}

fn h5(context: &str) -> impl Fn(hdf5::Error) -> Error + '_ {
    move |e| Error::Hdf5 {
        context: context.to_owned(),
        reason: e.to_string(),
    }
}

fn rows(start: usize, end: usize, rest: &[usize]) -> Selection {
    let mut s = vec![SliceOrIndex::SliceTo {
        start,
        step: 1,
        end,
        block: 1,
    }];
    s.extend(rest.iter().map(|&d| SliceOrIndex::SliceTo {
        start: 0,
        step: 1,
        end: d,
        block: 1,
    }));
    Selection::from(Hyperslab::from(s))
}

fn write_str_attr(loc: &hdf5::Location, name: &str, value: &str) -> Result<()> {
    let v = VarLenUnicode::from_str(value).map_err(|e| Error::Hdf5 {
        context: format!("attribute {name}"),
        reason: e.to_string(),
    })?;
    loc.new_attr::<VarLenUnicode>()
        .shape(())
        .create(name)
        .and_then(|a| a.write_scalar(&v))
        .map_err(h5(name))
}

fn read_str_attr(loc: &hdf5::Location, name: &str) -> Result<String> {
    let v: VarLenUnicode = loc
        .attr(name)
        .and_then(|a| a.read_scalar())
        .map_err(h5(name))?;
    Ok(v.as_str().to_owned())
}

/// Buffered columns of one fixed field.
#[derive(Debug)]
enum Column {
    U8(Vec<u8>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    F32(Vec<f32>),
}

/// Streams samples into an HDF5 file; see the module docs.
#[derive(Debug)]
pub struct Writer {
    file: Option<hdf5::File>,
    tmp: PathBuf,
    path: PathBuf,
    schema: Schema,
    columns: Vec<Column>,
    /// Per ragged field: buffered values, per-item lengths, per-sample item counts.
    ragged: Vec<(Vec<i32>, Vec<i64>, Vec<i64>)>,
    /// Per ragged field: totals written so far (values, items).
    ragged_written: Vec<(usize, usize)>,
    buffered: usize,
    written: usize,
}

impl Writer {
    /// Creates `path` (through `path` + `.tmp` until [`Writer::finish`]).
    pub fn create(path: &Path, schema: &Schema, meta: &Meta) -> Result<Self> {
        let mut names = std::collections::BTreeSet::new();
        for n in schema.fixed.iter().map(|f| &f.name).chain(&schema.ragged) {
            if n.is_empty() || n.contains('/') || !names.insert(n) {
                return Err(Error::InvalidParameter {
                    name: "schema",
                    reason: format!("field names must be unique, non-empty, without '/': `{n}`"),
                });
            }
        }
        let tmp = path.with_extension("h5.tmp");
        let file = hdf5::File::create(&tmp).map_err(h5("creating the file"))?;
        write_str_attr(&file, "mm_format", FORMAT)?;
        file.new_attr::<u32>()
            .shape(())
            .create("mm_format_version")
            .and_then(|a| a.write_scalar(&FORMAT_VERSION))
            .map_err(h5("mm_format_version"))?;
        let schema_json = serde_json::to_string(schema).map_err(|e| Error::InvalidParameter {
            name: "schema",
            reason: e.to_string(),
        })?;
        write_str_attr(&file, "schema", &schema_json)?;
        let meta_group = file.create_group("meta").map_err(h5("meta"))?;
        write_str_attr(&meta_group, "source", &meta.source)?;
        write_str_attr(&meta_group, "version", &meta.version)?;
        write_str_attr(&meta_group, "params", &meta.params.to_string())?;
        let samples = file.create_group("samples").map_err(h5("samples"))?;
        for f in &schema.fixed {
            let mut ext = vec![Extent::resizable(0)];
            ext.extend(f.shape.iter().map(|&d| Extent::from(d)));
            let mut chunk = vec![1usize];
            chunk.extend(&f.shape);
            let extents = SimpleExtents::from_vec(ext);
            let builder = match f.dtype {
                Dtype::U8 => samples.new_dataset::<u8>(),
                Dtype::I32 => samples.new_dataset::<i32>(),
                Dtype::I64 => samples.new_dataset::<i64>(),
                Dtype::F32 => samples.new_dataset::<f32>(),
            };
            let builder = builder.chunk(chunk);
            let builder = if f.compress {
                builder.deflate(1)
            } else {
                builder
            };
            builder
                .shape(extents)
                .create(f.name.as_str())
                .map_err(h5(&f.name))?;
        }
        for name in &schema.ragged {
            let g = samples.create_group(name).map_err(h5(name))?;
            g.new_dataset::<i32>()
                .chunk(4096)
                .shape(SimpleExtents::from_vec(vec![Extent::resizable(0)]))
                .create("values")
                .map_err(h5(name))?;
            for (ds, init) in [("offsets", 1usize), ("first", 1)] {
                let d = g
                    .new_dataset::<i64>()
                    .chunk(4096)
                    .shape(SimpleExtents::from_vec(vec![Extent::resizable(init)]))
                    .create(ds)
                    .map_err(h5(name))?;
                d.write_slice(&[0i64], rows(0, 1, &[])).map_err(h5(name))?;
            }
        }
        Ok(Self {
            file: Some(file),
            tmp,
            path: path.to_owned(),
            columns: schema
                .fixed
                .iter()
                .map(|f| match f.dtype {
                    Dtype::U8 => Column::U8(Vec::new()),
                    Dtype::I32 => Column::I32(Vec::new()),
                    Dtype::I64 => Column::I64(Vec::new()),
                    Dtype::F32 => Column::F32(Vec::new()),
                })
                .collect(),
            ragged: vec![(Vec::new(), Vec::new(), Vec::new()); schema.ragged.len()],
            ragged_written: vec![(0, 0); schema.ragged.len()],
            schema: schema.clone(),
            buffered: 0,
            written: 0,
        })
    }

    /// Samples pushed so far.
    pub fn len(&self) -> usize {
        self.written + self.buffered
    }

    /// True before the first sample.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends a sample; every field of the schema must be present with its shape and type.
    pub fn push(&mut self, s: &Sample) -> Result<()> {
        if s.fixed.len() != self.schema.fixed.len() || s.ragged.len() != self.schema.ragged.len() {
            return Err(Error::SampleMismatch {
                index: self.len(),
                reason: format!(
                    "has fields {:?} / {:?}, the schema {:?}",
                    s.fixed.keys().collect::<Vec<_>>(),
                    s.ragged.keys().collect::<Vec<_>>(),
                    self.schema
                ),
            });
        }
        for f in &self.schema.fixed {
            let v = s.fixed.get(&f.name).ok_or_else(|| Error::SampleMismatch {
                index: self.len(),
                reason: format!("no field `{}`", f.name),
            })?;
            if v.dtype() != f.dtype || v.shape() != f.shape.as_slice() {
                return Err(Error::SampleMismatch {
                    index: self.len(),
                    reason: format!(
                        "field `{}` is {:?} {:?}, the schema says {:?} {:?}",
                        f.name,
                        v.dtype(),
                        v.shape(),
                        f.dtype,
                        f.shape
                    ),
                });
            }
        }
        for name in &self.schema.ragged {
            if !s.ragged.contains_key(name) {
                return Err(Error::SampleMismatch {
                    index: self.len(),
                    reason: format!("no ragged field `{name}`"),
                });
            }
        }
        for (f, col) in self.schema.fixed.iter().zip(&mut self.columns) {
            match (&s.fixed[&f.name], col) {
                (Value::U8(a), Column::U8(c)) => c.extend(a.iter()),
                (Value::I32(a), Column::I32(c)) => c.extend(a.iter()),
                (Value::I64(a), Column::I64(c)) => c.extend(a.iter()),
                (Value::F32(a), Column::F32(c)) => c.extend(a.iter()),
                _ => unreachable!("dtype checked above"),
            }
        }
        for (name, (values, lens, counts)) in self.schema.ragged.iter().zip(&mut self.ragged) {
            let items = &s.ragged[name];
            counts.push(items.len() as i64);
            for it in items {
                values.extend(it);
                lens.push(it.len() as i64);
            }
        }
        self.buffered += 1;
        if self.buffered >= FLUSH_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if self.buffered == 0 {
            return Ok(());
        }
        let (start, end) = (self.written, self.written + self.buffered);
        for (f, col) in self.schema.fixed.iter().zip(&mut self.columns) {
            let ds = file
                .dataset(&format!("samples/{}", f.name))
                .map_err(h5(&f.name))?;
            let mut shape = vec![end];
            shape.extend(&f.shape);
            ds.resize(shape).map_err(h5(&f.name))?;
            let mut bshape = vec![end - start];
            bshape.extend(&f.shape);
            let sel = rows(start, end, &f.shape);
            let res = match col {
                Column::U8(c) => ArrayD::from_shape_vec(IxDyn(&bshape), std::mem::take(c))
                    .map(|a| ds.write_slice(&a, sel)),
                Column::I32(c) => ArrayD::from_shape_vec(IxDyn(&bshape), std::mem::take(c))
                    .map(|a| ds.write_slice(&a, sel)),
                Column::I64(c) => ArrayD::from_shape_vec(IxDyn(&bshape), std::mem::take(c))
                    .map(|a| ds.write_slice(&a, sel)),
                Column::F32(c) => ArrayD::from_shape_vec(IxDyn(&bshape), std::mem::take(c))
                    .map(|a| ds.write_slice(&a, sel)),
            };
            res.map_err(|e| Error::InvalidParameter {
                name: "sample",
                reason: e.to_string(),
            })?
            .map_err(h5(&f.name))?;
        }
        for ((name, (values, lens, counts)), (vw, iw)) in self
            .schema
            .ragged
            .iter()
            .zip(&mut self.ragged)
            .zip(&mut self.ragged_written)
        {
            let g = file.group(&format!("samples/{name}")).map_err(h5(name))?;
            let vals = g.dataset("values").map_err(h5(name))?;
            vals.resize(*vw + values.len()).map_err(h5(name))?;
            vals.write_slice(values.as_slice(), rows(*vw, *vw + values.len(), &[]))
                .map_err(h5(name))?;
            // offsets: cumulative value counts, one per item (after the leading 0)
            let mut acc = *vw as i64;
            let offs: Vec<i64> = lens
                .iter()
                .map(|l| {
                    acc += l;
                    acc
                })
                .collect();
            let od = g.dataset("offsets").map_err(h5(name))?;
            od.resize(1 + *iw + offs.len()).map_err(h5(name))?;
            od.write_slice(offs.as_slice(), rows(1 + *iw, 1 + *iw + offs.len(), &[]))
                .map_err(h5(name))?;
            // first: cumulative item counts, one per sample (after the leading 0)
            let mut items = *iw as i64;
            let firsts: Vec<i64> = counts
                .iter()
                .map(|c| {
                    items += c;
                    items
                })
                .collect();
            let fd = g.dataset("first").map_err(h5(name))?;
            fd.resize(1 + end).map_err(h5(name))?;
            fd.write_slice(firsts.as_slice(), rows(1 + start, 1 + end, &[]))
                .map_err(h5(name))?;
            *vw += values.len();
            *iw += lens.len();
            values.clear();
            lens.clear();
            counts.clear();
        }
        self.written = end;
        self.buffered = 0;
        Ok(())
    }

    /// Writes the remaining samples and the named splits (index lists), closes the file and
    /// renames it to its final name. Split indices must be valid and unique within a split.
    pub fn finish(mut self, splits: &BTreeMap<String, Vec<u64>>) -> Result<PathBuf> {
        self.flush()?;
        let n = self.written as u64;
        {
            let Some(file) = &self.file else {
                return Err(Error::InvalidParameter {
                    name: "writer",
                    reason: "already finished".into(),
                });
            };
            file.new_attr::<u64>()
                .shape(())
                .create("n_samples")
                .and_then(|a| a.write_scalar(&n))
                .map_err(h5("n_samples"))?;
            let g = file.create_group("splits").map_err(h5("splits"))?;
            for (name, idx) in splits {
                let mut seen = std::collections::HashSet::new();
                if let Some(bad) = idx.iter().find(|&&i| i >= n || !seen.insert(i)) {
                    return Err(Error::InvalidParameter {
                        name: "splits",
                        reason: format!("split `{name}` has index {bad}: out of range or repeated"),
                    });
                }
                g.new_dataset_builder()
                    .with_data(idx.as_slice())
                    .create(name.as_str())
                    .map_err(h5(name))?;
            }
        }
        if let Some(file) = self.file.take()
            && let Err(e) = file.close()
        {
            // the last writes failed (a full disk): no half-written file stays behind
            let _ = std::fs::remove_file(&self.tmp);
            return Err(h5(&format!("closing {}", self.tmp.display()))(e));
        }
        std::fs::rename(&self.tmp, &self.path).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })?;
        Ok(self.path.clone())
    }
}

impl Drop for Writer {
    /// An unfinished writer removes its temporary file: no half-written data set remains.
    fn drop(&mut self) {
        if let Some(file) = self.file.take() {
            drop(file);
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Random access to a data set written by [`Writer`].
#[derive(Debug)]
pub struct Reader {
    file: hdf5::File,
    path: PathBuf,
    schema: Schema,
    meta: Meta,
    n: usize,
    /// Per ragged field: `first` (items per sample, cumulative) and `offsets` (values per
    /// item, cumulative), loaded at open.
    index: BTreeMap<String, (Vec<i64>, Vec<i64>)>,
}

/// Checks a ragged field's index against `n` samples and `values` stored values: `first` has
/// `n + 1` entries and `offsets` one more than `first`'s last, both rise from 0, and the last
/// offset is the number of values. Reads then never index past an array.
fn check_ragged_index(
    name: &str,
    n: u64,
    first: &[i64],
    offsets: &[i64],
    values: u64,
) -> std::result::Result<(), String> {
    // rising from 0 also keeps every entry non-negative
    let rising = |a: &[i64]| a.first() == Some(&0) && a.windows(2).all(|w| w[0] <= w[1]);
    if first.len() as u64 != n.saturating_add(1) || !rising(first) {
        return Err(format!(
            "ragged field `{name}`: `first` has {} entries (need {n} + 1, rising from 0)",
            first.len()
        ));
    }
    let sequences = first[first.len() - 1] as u64;
    if offsets.len() as u64 != sequences.saturating_add(1) || !rising(offsets) {
        return Err(format!(
            "ragged field `{name}`: `offsets` has {} entries (need {sequences} + 1, rising from 0)",
            offsets.len()
        ));
    }
    if offsets[offsets.len() - 1] as u64 != values {
        return Err(format!(
            "ragged field `{name}`: the offsets end at {}, `values` holds {values}",
            offsets[offsets.len() - 1]
        ));
    }
    Ok(())
}

impl Reader {
    /// Opens and checks a data set: its format tag, schema, sample count, that every field is
    /// stored in the shape the schema gives it, and that every ragged index stays inside its
    /// values; a file that fails is [`Error::Damaged`], so reads cannot go out of bounds.
    pub fn open(path: &Path) -> Result<Self> {
        if !path.is_file() {
            let (kind, why) = if path.is_dir() {
                (
                    std::io::ErrorKind::IsADirectory,
                    "a directory, not a data set file",
                )
            } else {
                (std::io::ErrorKind::NotFound, "no such file")
            };
            return Err(Error::Io {
                path: path.to_owned(),
                source: std::io::Error::new(kind, why),
            });
        }
        let ctx = path.display().to_string();
        let file = hdf5::File::open(path).map_err(h5(&ctx))?;
        let format = read_str_attr(&file, "mm_format").map_err(|_| Error::NotADataset {
            path: path.to_owned(),
        })?;
        if format != FORMAT {
            return Err(Error::NotADataset {
                path: path.to_owned(),
            });
        }
        let schema: Schema =
            serde_json::from_str(&read_str_attr(&file, "schema")?).map_err(|e| Error::Hdf5 {
                context: format!("{ctx}: schema"),
                reason: e.to_string(),
            })?;
        let meta_g = file.group("meta").map_err(h5(&ctx))?;
        let meta = Meta {
            source: read_str_attr(&meta_g, "source")?,
            version: read_str_attr(&meta_g, "version")?,
            params: serde_json::from_str(&read_str_attr(&meta_g, "params")?).unwrap_or_default(),
        };
        let n: u64 = file
            .attr("n_samples")
            .and_then(|a| a.read_scalar())
            .map_err(h5(&ctx))?;
        let mut index = BTreeMap::new();
        for name in &schema.ragged {
            let g = file.group(&format!("samples/{name}")).map_err(h5(name))?;
            let first = g
                .dataset("first")
                .and_then(|d| d.read_raw())
                .map_err(h5(name))?;
            let offsets = g
                .dataset("offsets")
                .and_then(|d| d.read_raw())
                .map_err(h5(name))?;
            let values = g.dataset("values").map(|d| d.size()).map_err(h5(name))?;
            check_ragged_index(name, n, &first, &offsets, values as u64).map_err(|reason| {
                Error::Damaged {
                    path: path.to_owned(),
                    reason,
                }
            })?;
            index.insert(name.clone(), (first, offsets));
        }
        for f in &schema.fixed {
            let shape = file
                .dataset(&format!("samples/{}", f.name))
                .map(|d| d.shape())
                .map_err(h5(&f.name))?;
            let want: Vec<usize> = std::iter::once(n as usize)
                .chain(f.shape.iter().copied())
                .collect();
            if shape != want {
                return Err(Error::Damaged {
                    path: path.to_owned(),
                    reason: format!(
                        "field `{}` is stored as {shape:?}, its schema and sample count say {want:?}",
                        f.name
                    ),
                });
            }
        }
        Ok(Self {
            file,
            path: path.to_owned(),
            schema,
            meta,
            n: n as usize,
            index,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.n
    }

    /// True when the data set has no sample.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The fields.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// Where the data came from.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// The split names.
    pub fn split_names(&self) -> Result<Vec<String>> {
        let g = self.file.group("splits").map_err(h5("splits"))?;
        g.member_names().map_err(h5("splits"))
    }

    /// The sample indices of split `name`; an index past the end is [`Error::Damaged`].
    pub fn split(&self, name: &str) -> Result<Vec<u64>> {
        let idx: Vec<u64> = self
            .file
            .dataset(&format!("splits/{name}"))
            .and_then(|d| d.read_raw())
            .map_err(|_| Error::NoSuchSplit {
                name: name.to_owned(),
                path: self.path.clone(),
            })?;
        match idx.iter().find(|&&i| i >= self.n as u64) {
            Some(i) => Err(Error::Damaged {
                path: self.path.clone(),
                reason: format!("split `{name}` names sample {i} of {}", self.n),
            }),
            None => Ok(idx),
        }
    }

    /// Sample `i`.
    pub fn get(&self, i: usize) -> Result<Sample> {
        let b = self.read_range(i, i + 1)?;
        Ok(b.sample(0))
    }

    /// Samples `start..end` as a batch (one read per field: fastest for contiguous runs).
    pub fn read_range(&self, start: usize, end: usize) -> Result<Batch> {
        self.read_range_of(start, end, None)
    }

    /// Samples `start..end` with only the named fields (fixed or ragged), e.g. the images
    /// and questions of a SynthAV file without its audio. A name the schema lacks is an error;
    /// an empty list reads no field (unlike [`BatchConfig::fields`], where empty means all).
    pub fn read_range_fields(&self, start: usize, end: usize, fields: &[&str]) -> Result<Batch> {
        self.check_fields(fields)?;
        self.read_range_of(start, end, Some(fields))
    }

    /// [`Reader::read_batch`] with only the named fields, as [`Reader::read_range_fields`].
    pub fn read_batch_fields(&self, indices: &[usize], fields: &[&str]) -> Result<Batch> {
        self.check_fields(fields)?;
        self.read_batch_of(indices, Some(fields))
    }

    fn check_fields(&self, fields: &[&str]) -> Result<()> {
        let known = |f: &&str| {
            self.schema.fixed.iter().any(|s| s.name == *f)
                || self.schema.ragged.iter().any(|r| r == f)
        };
        match fields.iter().find(|f| !known(f)) {
            Some(f) => Err(Error::InvalidParameter {
                name: "fields",
                reason: format!("{} has no field `{f}`", self.path.display()),
            }),
            None => Ok(()),
        }
    }

    fn read_range_of(&self, start: usize, end: usize, only: Option<&[&str]>) -> Result<Batch> {
        if start >= end || end > self.n {
            return Err(Error::OutOfRange {
                index: end.saturating_sub(1),
                len: self.n,
            });
        }
        let wanted = |name: &str| only.is_none_or(|o| o.contains(&name));
        let mut fixed = BTreeMap::new();
        for f in self.schema.fixed.iter().filter(|f| wanted(&f.name)) {
            let ds = self
                .file
                .dataset(&format!("samples/{}", f.name))
                .map_err(h5(&f.name))?;
            let sel = rows(start, end, &f.shape);
            let v = match f.dtype {
                Dtype::U8 => ds.read_slice::<u8, _, IxDyn>(sel).map(Value::U8),
                Dtype::I32 => ds.read_slice::<i32, _, IxDyn>(sel).map(Value::I32),
                Dtype::I64 => ds.read_slice::<i64, _, IxDyn>(sel).map(Value::I64),
                Dtype::F32 => ds.read_slice::<f32, _, IxDyn>(sel).map(Value::F32),
            }
            .map_err(h5(&f.name))?;
            fixed.insert(f.name.clone(), v);
        }
        let mut ragged = BTreeMap::new();
        for name in self.schema.ragged.iter().filter(|r| wanted(r)) {
            let (first, offsets) = &self.index[name];
            let (i0, i1) = (first[start] as usize, first[end] as usize);
            let (v0, v1) = (offsets[i0] as usize, offsets[i1] as usize);
            let values: Vec<i32> = if v1 > v0 {
                self.file
                    .dataset(&format!("samples/{name}/values"))
                    .and_then(|d| d.read_slice_1d::<i32, _>(v0..v1))
                    .map_err(h5(name))?
                    .to_vec()
            } else {
                Vec::new()
            };
            let per_sample: Vec<Vec<Vec<i32>>> = (start..end)
                .map(|s| {
                    (first[s] as usize..first[s + 1] as usize)
                        .map(|it| {
                            values[offsets[it] as usize - v0..offsets[it + 1] as usize - v0]
                                .to_vec()
                        })
                        .collect()
                })
                .collect();
            ragged.insert(name.clone(), per_sample);
        }
        Ok(Batch {
            len: end - start,
            fixed,
            ragged,
        })
    }

    /// The samples at `indices` (any order, repeats allowed), as one batch in that order.
    /// Runs of consecutive indices are read with one call per field.
    pub fn read_batch(&self, indices: &[usize]) -> Result<Batch> {
        self.read_batch_of(indices, None)
    }

    fn read_batch_of(&self, indices: &[usize], only: Option<&[&str]>) -> Result<Batch> {
        let mut parts = Vec::new();
        let mut i = 0;
        while i < indices.len() {
            let mut j = i + 1;
            while j < indices.len() && indices[j] == indices[j - 1] + 1 {
                j += 1;
            }
            parts.push(self.read_range_of(indices[i], indices[j - 1] + 1, only)?);
            i = j;
        }
        Batch::concat(parts)
    }
}

/// Several samples with each fixed field stacked on a leading batch axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Number of samples.
    pub len: usize,
    /// Fixed fields, `[batch, shape...]`.
    pub fixed: BTreeMap<String, Value>,
    /// Ragged fields: per sample, its sequences.
    pub ragged: BTreeMap<String, Vec<Vec<Vec<i32>>>>,
}

impl Batch {
    /// Sample `k` of the batch.
    pub fn sample(&self, k: usize) -> Sample {
        let take = |v: &Value| match v {
            Value::U8(a) => Value::U8(a.index_axis(ndarray::Axis(0), k).to_owned()),
            Value::I32(a) => Value::I32(a.index_axis(ndarray::Axis(0), k).to_owned()),
            Value::I64(a) => Value::I64(a.index_axis(ndarray::Axis(0), k).to_owned()),
            Value::F32(a) => Value::F32(a.index_axis(ndarray::Axis(0), k).to_owned()),
        };
        Sample {
            fixed: self
                .fixed
                .iter()
                .map(|(n, v)| (n.clone(), take(v)))
                .collect(),
            ragged: self
                .ragged
                .iter()
                .map(|(n, v)| (n.clone(), v[k].clone()))
                .collect(),
        }
    }

    /// The parts one after the other: each field is joined once, so the cost is linear in
    /// the number of parts (a shuffled batch or a scattered split has one part per run).
    fn concat(mut parts: Vec<Batch>) -> Result<Batch> {
        if parts.len() == 1
            && let Some(only) = parts.pop()
        {
            return Ok(only);
        }
        let Some(first) = parts.first() else {
            return Err(Error::InvalidParameter {
                name: "indices",
                reason: "empty batch".into(),
            });
        };
        let differs = |name: &str| Error::InvalidParameter {
            name: "batch",
            reason: format!("field `{name}` differs between parts"),
        };
        let mut fixed = BTreeMap::new();
        for (name, v) in &first.fixed {
            let values: Vec<&Value> = parts
                .iter()
                .map(|p| p.fixed.get(name).ok_or_else(|| differs(name)))
                .collect::<Result<_>>()?;
            macro_rules! join {
                ($variant:ident) => {
                    cat(&values
                        .iter()
                        .map(|x| match x {
                            Value::$variant(a) => Ok(a.view()),
                            _ => Err(differs(name)),
                        })
                        .collect::<Result<Vec<_>>>()?)
                    .map(Value::$variant)
                };
            }
            let joined = match v {
                Value::U8(_) => join!(U8),
                Value::I32(_) => join!(I32),
                Value::I64(_) => join!(I64),
                Value::F32(_) => join!(F32),
            }?;
            fixed.insert(name.clone(), joined);
        }
        let mut ragged: BTreeMap<String, Vec<Vec<Vec<i32>>>> = BTreeMap::new();
        let mut len = 0;
        for b in parts {
            len += b.len;
            for (name, v) in b.ragged {
                ragged.entry(name).or_default().extend(v);
            }
        }
        Ok(Batch { len, fixed, ragged })
    }
}

fn cat<T: Clone>(views: &[ndarray::ArrayViewD<'_, T>]) -> Result<ArrayD<T>> {
    ndarray::concatenate(ndarray::Axis(0), views).map_err(|e| Error::InvalidParameter {
        name: "batch",
        reason: e.to_string(),
    })
}

/// How [`BatchIter`] walks a split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchConfig {
    /// Samples per batch.
    pub batch_size: usize,
    /// Shuffle the order each epoch (from `seed` and the epoch number).
    pub shuffle: bool,
    /// The shuffle seed.
    pub seed: u64,
    /// Drop a last batch smaller than `batch_size`.
    pub drop_last: bool,
    /// Reader threads.
    pub threads: usize,
    /// Batches read ahead.
    pub prefetch: usize,
    /// The fields to read (fixed or ragged); empty reads them all.
    #[serde(default)]
    pub fields: Vec<String>,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            batch_size: 32,
            shuffle: true,
            seed: 0,
            drop_last: false,
            threads: 2,
            prefetch: 4,
            fields: Vec::new(),
        }
    }
}

/// The seeded order of an epoch, shared with the training engine (see `mm_core`).
pub use mm_core::epoch_order;

type Job = (usize, Result<Batch>);

/// Batches of a split, in a deterministic (optionally shuffled) order, read ahead on threads;
/// each thread opens its own [`Reader`].
#[derive(Debug)]
pub struct BatchIter {
    rx: Option<std::sync::mpsc::Receiver<Job>>,
    pending: BTreeMap<usize, Result<Batch>>,
    next: usize,
    total: usize,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

impl BatchIter {
    /// Starts reading `indices` of the data set at `path` for `epoch`.
    pub fn new(path: &Path, indices: &[u64], cfg: &BatchConfig, epoch: u64) -> Result<Self> {
        if cfg.batch_size == 0 || cfg.threads == 0 || cfg.prefetch == 0 {
            return Err(Error::InvalidParameter {
                name: "batch_size/threads/prefetch",
                reason: "must be positive".into(),
            });
        }
        let probe = Reader::open(path)?;
        let fields: Vec<&str> = cfg.fields.iter().map(String::as_str).collect();
        probe.check_fields(&fields)?;
        if let Some(&bad) = indices.iter().find(|&&i| i as usize >= probe.len()) {
            return Err(Error::OutOfRange {
                index: bad as usize,
                len: probe.len(),
            });
        }
        drop(probe);
        let order = epoch_order(indices, cfg.shuffle, cfg.seed, epoch);
        let mut batches: Vec<Vec<usize>> = order
            .chunks(cfg.batch_size)
            .map(<[usize]>::to_vec)
            .collect();
        if cfg.drop_last && batches.last().is_some_and(|b| b.len() < cfg.batch_size) {
            batches.pop();
        }
        let total = batches.len();
        let batches = std::sync::Arc::new(batches);
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(cfg.prefetch);
        let mut workers = Vec::new();
        for _ in 0..cfg.threads.min(total.max(1)) {
            let (tx, batches, counter, stop) =
                (tx.clone(), batches.clone(), counter.clone(), stop.clone());
            let path = path.to_owned();
            let fields = cfg.fields.clone();
            workers.push(std::thread::spawn(move || {
                let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
                let only = (!fields.is_empty()).then_some(fields.as_slice());
                let reader = Reader::open(&path);
                loop {
                    let k = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if k >= batches.len() || stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let res = match &reader {
                        Ok(r) => r.read_batch_of(&batches[k], only),
                        Err(e) => Err(Error::Hdf5 {
                            context: path.display().to_string(),
                            reason: e.to_string(),
                        }),
                    };
                    if tx.send((k, res)).is_err() {
                        return;
                    }
                }
            }));
        }
        Ok(Self {
            rx: Some(rx),
            pending: BTreeMap::new(),
            next: 0,
            total,
            stop,
            workers,
        })
    }

    /// Number of batches this epoch.
    pub fn n_batches(&self) -> usize {
        self.total
    }
}

impl Iterator for BatchIter {
    type Item = Result<Batch>;

    fn next(&mut self) -> Option<Result<Batch>> {
        if self.next >= self.total {
            return None;
        }
        while !self.pending.contains_key(&self.next) {
            match self.rx.as_ref()?.recv() {
                Ok((k, b)) => {
                    self.pending.insert(k, b);
                }
                Err(_) => {
                    return Some(Err(Error::InvalidParameter {
                        name: "reader threads",
                        reason: "stopped before the epoch ended".into(),
                    }));
                }
            }
        }
        let b = self.pending.remove(&self.next);
        self.next += 1;
        b
    }
}

impl Drop for BatchIter {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.rx.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array, Array1};

    fn schema() -> Schema {
        Schema {
            fixed: vec![
                FieldSpec {
                    name: "image".into(),
                    dtype: Dtype::U8,
                    shape: vec![8, 8, 3],
                    compress: true,
                },
                FieldSpec {
                    name: "audio".into(),
                    dtype: Dtype::F32,
                    shape: vec![100],
                    compress: false,
                },
                FieldSpec {
                    name: "label".into(),
                    dtype: Dtype::I64,
                    shape: vec![],
                    compress: false,
                },
            ],
            ragged: vec!["captions".into()],
        }
    }

    fn sample(i: usize) -> Sample {
        let mut s = Sample::default();
        s.fixed.insert(
            "image".into(),
            Value::U8(Array::from_shape_fn(IxDyn(&[8, 8, 3]), |d| {
                ((i * 7 + d[0] * 3 + d[1] + d[2]) % 251) as u8
            })),
        );
        s.fixed.insert(
            "audio".into(),
            Value::F32(
                Array1::from_shape_fn(100, |t| (i as f32 * 0.1 + t as f32).sin()).into_dyn(),
            ),
        );
        s.fixed.insert(
            "label".into(),
            Value::I64(ndarray::arr0((i % 5) as i64).into_dyn()),
        );
        // 0..=3 captions of varying length, some empty
        let caps = (0..i % 4)
            .map(|c| {
                (0..((i + c) % 6) as i32)
                    .map(|t| t + c as i32 * 10)
                    .collect()
            })
            .collect();
        s.ragged.insert("captions".into(), caps);
        s
    }

    /// A scratch `set.h5` path in a fresh directory; the directory is deleted when the
    /// returned [`tempfile::TempDir`] drops (keep it alive for the whole test).
    fn tmp(name: &str) -> (tempfile::TempDir, PathBuf) {
        let d = tempfile::Builder::new()
            .prefix(&format!("mm-data-{name}-"))
            .tempdir()
            .unwrap();
        let p = d.path().join("set.h5");
        (d, p)
    }

    fn write(path: &Path, n: usize) -> PathBuf {
        let meta = Meta {
            source: "test".into(),
            version: "1".into(),
            params: serde_json::json!({"n": n}),
        };
        let mut w = Writer::create(path, &schema(), &meta).unwrap();
        for i in 0..n {
            w.push(&sample(i)).unwrap();
        }
        let mut splits = BTreeMap::new();
        splits.insert(
            "train".to_owned(),
            (0..n as u64).filter(|i| i % 5 != 0).collect(),
        );
        splits.insert(
            "test".to_owned(),
            (0..n as u64).filter(|i| i % 5 == 0).collect(),
        );
        w.finish(&splits).unwrap()
    }

    #[test]
    fn round_trip_across_flushes_with_random_access() {
        let (_dir, p) = tmp("rt");
        let n = 600; // more than two flushes
        write(&p, n);
        assert!(!p.with_extension("h5.tmp").exists());
        let r = Reader::open(&p).unwrap();
        assert_eq!(r.len(), n);
        assert_eq!(r.schema(), &schema());
        assert_eq!(r.meta().params["n"], 600);
        for i in [0, 1, 255, 256, 257, 511, 599] {
            assert_eq!(r.get(i).unwrap(), sample(i), "sample {i}");
        }
        let idx = [599, 3, 4, 5, 100, 3];
        let b = r.read_batch(&idx).unwrap();
        assert_eq!(b.len, 6);
        for (k, &i) in idx.iter().enumerate() {
            assert_eq!(b.sample(k), sample(i));
        }
        if let Value::U8(img) = &b.fixed["image"] {
            assert_eq!(img.shape(), &[6, 8, 8, 3]);
        } else {
            panic!("image is u8");
        }
        let mut names = r.split_names().unwrap();
        names.sort();
        assert_eq!(names, ["test", "train"]);
        assert_eq!(r.split("test").unwrap().len(), 120);
        assert!(matches!(r.split("val"), Err(Error::NoSuchSplit { .. })));
        assert!(matches!(r.get(600), Err(Error::OutOfRange { .. })));
    }

    #[test]
    fn a_batch_reads_only_the_fields_asked_for() {
        let (_dir, p) = tmp("fields");
        write(&p, 300);
        let r = Reader::open(&p).unwrap();
        // scattered and repeated: many runs, each joined once
        let idx: Vec<usize> = (0..150).map(|k| (k * 37) % 300).chain([7, 7]).collect();
        let all = r.read_batch(&idx).unwrap();
        let some = r.read_batch_fields(&idx, &["image", "captions"]).unwrap();
        assert_eq!(some.len, idx.len());
        assert_eq!(some.fixed.keys().collect::<Vec<_>>(), ["image"]);
        assert_eq!(some.ragged.keys().collect::<Vec<_>>(), ["captions"]);
        assert_eq!(some.fixed["image"], all.fixed["image"]);
        assert_eq!(some.ragged["captions"], all.ragged["captions"]);
        for (k, &i) in idx.iter().enumerate() {
            assert_eq!(all.sample(k), sample(i), "sample {i} at {k}");
        }
        let range = r.read_range_fields(10, 20, &["label"]).unwrap();
        assert_eq!(range.len, 10);
        assert_eq!(
            range.fixed["label"],
            r.read_range(10, 20).unwrap().fixed["label"]
        );
        assert!(range.ragged.is_empty());
        assert!(matches!(
            r.read_batch_fields(&idx, &["image", "sound"]),
            Err(Error::InvalidParameter { .. })
        ));
    }

    #[test]
    fn an_unfinished_or_failed_write_leaves_nothing_behind() {
        let (_dir, p) = tmp("atomic");
        {
            let mut w = Writer::create(&p, &schema(), &Meta::default()).unwrap();
            w.push(&sample(0)).unwrap();
            assert!(p.with_extension("h5.tmp").exists());
            // dropped without finish
        }
        assert!(!p.exists() && !p.with_extension("h5.tmp").exists());
        let mut w = Writer::create(&p, &schema(), &Meta::default()).unwrap();
        w.push(&sample(0)).unwrap();
        let mut bad = BTreeMap::new();
        bad.insert("train".to_owned(), vec![0u64, 7]);
        assert!(matches!(
            w.finish(&bad),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(!p.exists() && !p.with_extension("h5.tmp").exists());
    }

    #[test]
    fn bad_samples_schemas_and_files_are_typed_errors() {
        let (_dir, p) = tmp("bad");
        let mut w = Writer::create(&p, &schema(), &Meta::default()).unwrap();
        let mut s = sample(1);
        s.fixed
            .insert("image".into(), Value::U8(ArrayD::zeros(IxDyn(&[8, 8]))));
        assert!(matches!(
            w.push(&s),
            Err(Error::SampleMismatch { index: 0, .. })
        ));
        let mut s = sample(1);
        s.fixed
            .insert("audio".into(), Value::I32(ArrayD::zeros(IxDyn(&[100]))));
        assert!(matches!(w.push(&s), Err(Error::SampleMismatch { .. })));
        let mut s = sample(1);
        s.ragged.clear();
        assert!(matches!(w.push(&s), Err(Error::SampleMismatch { .. })));
        assert!(w.is_empty());
        drop(w);
        let dup = Schema {
            fixed: schema().fixed,
            ragged: vec!["image".into()],
        };
        assert!(matches!(
            Writer::create(&p, &dup, &Meta::default()),
            Err(Error::InvalidParameter { .. })
        ));
        assert!(matches!(
            Reader::open(&p.with_extension("missing")),
            Err(Error::Io { .. })
        ));
        // an HDF5 file that is not ours
        let other = p.with_extension("other.h5");
        hdf5::File::create(&other).unwrap();
        assert!(matches!(
            Reader::open(&other),
            Err(Error::NotADataset { .. })
        ));
        std::fs::write(&other, b"not hdf5 at all").unwrap();
        assert!(Reader::open(&other).is_err());
    }

    /// A data set whose parts contradict each other (before, the first two panicked in a read,
    /// indexing past an array or slicing backwards): each is refused at open, or at `split`,
    /// with [`Error::Damaged`] naming the field.
    #[test]
    fn a_damaged_data_set_is_refused_not_read_out_of_bounds() {
        let replace = |p: &Path, ds: &str, data: &[i64]| {
            let f = hdf5::File::open_rw(p).unwrap();
            f.unlink(ds).unwrap();
            let (g, name) = ds.rsplit_once('/').unwrap();
            f.group(g)
                .unwrap()
                .new_dataset_builder()
                .with_data(data)
                .create(name)
                .unwrap();
        };
        let damaged = |p: &Path, what: &str| match Reader::open(p) {
            Err(Error::Damaged { reason, .. }) => assert!(reason.contains(what), "{reason}"),
            other => panic!("{what}: {:?}", other.map(|r| r.len())),
        };
        // too few `first` entries for the samples
        let (_d1, p) = tmp("dmg1");
        write(&p, 6);
        replace(&p, "samples/captions/first", &[0, 1, 2]);
        damaged(&p, "`first`");
        // offsets that fall back
        let (_d2, p) = tmp("dmg2");
        write(&p, 6);
        let r = Reader::open(&p).unwrap();
        let mut offsets = r.index["captions"].1.clone();
        drop(r);
        let k = offsets.len() - 2;
        offsets[k] = offsets[k + 1] + 5;
        replace(&p, "samples/captions/offsets", &offsets);
        damaged(&p, "`offsets`");
        // offsets past the stored values
        let (_d3, p) = tmp("dmg3");
        write(&p, 6);
        let r = Reader::open(&p).unwrap();
        let mut offsets = r.index["captions"].1.clone();
        drop(r);
        *offsets.last_mut().unwrap() += 1;
        replace(&p, "samples/captions/offsets", &offsets);
        damaged(&p, "`values` holds");
        // a fixed field with fewer rows than samples
        let (_d4, p) = tmp("dmg4");
        write(&p, 6);
        replace(&p, "samples/label", &[1, 2, 3]);
        damaged(&p, "field `label`");
        // a split naming a sample past the end
        let (_d5, p) = tmp("dmg5");
        write(&p, 6);
        replace(&p, "splits/test", &[0, 6]);
        let r = Reader::open(&p).unwrap();
        assert!(matches!(r.split("test"), Err(Error::Damaged { .. })));
        assert_eq!(r.split("train").unwrap().len(), 4);
    }

    fn labels(path: &Path, idx: &[u64], cfg: &BatchConfig, epoch: u64) -> Vec<Vec<i64>> {
        BatchIter::new(path, idx, cfg, epoch)
            .unwrap()
            .map(|b| match b.unwrap().fixed.remove("label") {
                Some(Value::I64(a)) => a.iter().copied().collect(),
                _ => panic!("labels"),
            })
            .collect()
    }

    #[test]
    fn batches_are_deterministic_permutations_whatever_the_thread_count() {
        let (_dir, p) = tmp("iter");
        write(&p, 300);
        let r = Reader::open(&p).unwrap();
        let train = r.split("train").unwrap();
        let cfg = BatchConfig {
            batch_size: 16,
            seed: 7,
            threads: 1,
            ..Default::default()
        };
        let one = labels(&p, &train, &cfg, 0);
        let three = labels(
            &p,
            &train,
            &BatchConfig {
                threads: 3,
                prefetch: 2,
                ..cfg.clone()
            },
            0,
        );
        assert_eq!(one, three);
        assert_eq!(one.len(), train.len().div_ceil(16));
        // the epoch's order is the documented permutation of the split
        let order = epoch_order(&train, true, 7, 0);
        let want: Vec<i64> = order.iter().map(|&i| (i % 5) as i64).collect();
        assert_eq!(one.concat(), want);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            train.iter().map(|&i| i as usize).collect::<Vec<_>>()
        );
        assert_ne!(epoch_order(&train, true, 7, 1), order);
        let dropped = labels(
            &p,
            &train,
            &BatchConfig {
                drop_last: true,
                ..cfg.clone()
            },
            0,
        );
        assert!(dropped.iter().all(|b| b.len() == 16));
        let plain = labels(
            &p,
            &train,
            &BatchConfig {
                shuffle: false,
                ..cfg.clone()
            },
            0,
        );
        assert_eq!(
            plain.concat(),
            train.iter().map(|&i| (i % 5) as i64).collect::<Vec<_>>()
        );
        assert!(BatchIter::new(&p, &[300], &cfg, 0).is_err());
        // only the fields asked for, the same batches
        let only = BatchConfig {
            fields: vec!["label".into()],
            ..cfg.clone()
        };
        let mut it = BatchIter::new(&p, &train, &only, 0).unwrap();
        let b = it.next().unwrap().unwrap();
        assert_eq!(b.fixed.keys().collect::<Vec<_>>(), ["label"]);
        assert!(b.ragged.is_empty());
        let fewer = labels(&p, &train, &only, 0);
        assert_eq!(fewer, one);
        let unknown = BatchConfig {
            fields: vec!["sound".into()],
            ..cfg.clone()
        };
        assert!(BatchIter::new(&p, &train, &unknown, 0).is_err());
        // dropping an iterator early stops its threads
        let mut it = BatchIter::new(&p, &train, &cfg, 0).unwrap();
        assert!(it.next().is_some());
        drop(it);
    }
}

#[cfg(feature = "tch")]
mod tensors {
    use super::{Batch, Error, Result, Value};

    impl Value {
        /// The array as a tensor of the same shape and element type, on `device`.
        pub fn to_tensor(&self, device: tch::Device) -> Result<tch::Tensor> {
            fn conv<T: tch::kind::Element + Copy>(a: &ndarray::ArrayD<T>) -> tch::Tensor {
                let shape: Vec<i64> = a.shape().iter().map(|&d| d as i64).collect();
                // a batch read from the file is in standard layout: one copy, no element-wise
                // walk (a dynamic-rank iterator costs about 25 ns per element: 40 ms for 128
                // SynthAV images)
                match a.as_slice() {
                    Some(flat) => tch::Tensor::from_slice(flat).reshape(&shape),
                    None => {
                        let flat: Vec<T> = a.iter().copied().collect();
                        tch::Tensor::from_slice(&flat).reshape(&shape)
                    }
                }
            }
            let t = match self {
                Value::U8(a) => conv(a),
                Value::I32(a) => conv(a),
                Value::I64(a) => conv(a),
                Value::F32(a) => conv(a),
            };
            t.f_to_device(device).map_err(|e| Error::Hdf5 {
                context: "moving a tensor to its device".into(),
                reason: e.to_string(),
            })
        }
    }

    impl Batch {
        /// Fixed field `name` as a `[batch, shape...]` tensor on `device`.
        pub fn tensor(&self, name: &str, device: tch::Device) -> Result<tch::Tensor> {
            self.fixed
                .get(name)
                .ok_or_else(|| Error::InvalidParameter {
                    name: "field",
                    reason: format!("the batch has no fixed field `{name}`"),
                })?
                .to_tensor(device)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::super::*;

        #[test]
        fn batches_become_tensors_of_the_same_shape_and_values() {
            let a = ndarray::Array::from_shape_fn(ndarray::IxDyn(&[2, 3, 4]), |d| {
                (d[0] * 12 + d[1] * 4 + d[2]) as f32
            });
            let b = Batch {
                len: 2,
                fixed: [("x".to_owned(), Value::F32(a.clone()))]
                    .into_iter()
                    .collect(),
                ragged: BTreeMap::new(),
            };
            let t = b.tensor("x", tch::Device::Cpu).unwrap();
            assert_eq!(t.size(), vec![2, 3, 4]);
            assert_eq!(t.kind(), tch::Kind::Float);
            assert_eq!(t.double_value(&[1, 2, 3]), 23.0);
            let u = Value::U8(ndarray::ArrayD::from_elem(ndarray::IxDyn(&[5]), 7u8));
            assert_eq!(
                u.to_tensor(tch::Device::Cpu).unwrap().kind(),
                tch::Kind::Uint8
            );
            assert!(b.tensor("y", tch::Device::Cpu).is_err());
        }
    }
}
