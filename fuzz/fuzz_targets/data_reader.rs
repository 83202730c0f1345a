//! A structured fuzzer for mm's HDF5 data sets: each input writes a small valid data set with
//! `mm_data::Writer` (a fixed `u8` image, an `i64` label and a ragged `words` field, train and
//! test splits), then edits it through the HDF5 library as a damaged or hand-made file would
//! differ: the format tag, the schema JSON (replaced, or a byte changed), `n_samples`, the meta
//! attributes, any dataset replaced by one of another type and shape with arbitrary contents
//! (offsets, split indices, first-sequence indices included), or removed, and extra splits.
//! The file is then opened with `Reader` and read to the end: every split, every sample, ranges,
//! batches of the split indices and a `BatchIter` epoch. Errors are fine; panics, aborts, OOM
//! and timeouts are bugs. Byte-level corruption of the HDF5 container itself is out of scope
//! (that is the HDF5 C library's own parser).
#![no_main]

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use arbitrary::Arbitrary;
use hdf5::types::VarLenUnicode;
use libfuzzer_sys::fuzz_target;
use mm_data::{
    BatchConfig, BatchIter, Dtype, FieldSpec, Meta, Reader, Sample, Schema, Value, Writer,
};
use ndarray::{Array, IxDyn};

use hdf5_metno as hdf5;

/// Datasets an edit may replace or remove.
const DATASETS: [&str; 8] = [
    "samples/image",
    "samples/label",
    "samples/words/first",
    "samples/words/offsets",
    "samples/words/values",
    "splits/train",
    "splits/test",
    "splits/extra",
];

#[derive(Debug, Arbitrary)]
enum Edit {
    /// Sets a string attribute: 0 `mm_format`, 1 `schema`, 2 `meta/params`, 3 `meta/source`.
    Text { which: u8, value: String },
    /// Changes, inserts or deletes one byte of the schema JSON.
    SchemaByte { at: u16, byte: u8, op: u8 },
    /// Sets `n_samples`.
    Count(u64),
    /// Replaces a dataset with one of `dtype` (0 u8, 1 i32, 2 i64, 3 u64, 4 f32, 5 f64) and
    /// `dims` (at most 3, each below 16), filled from `fill`.
    Replace {
        which: u8,
        dtype: u8,
        dims: Vec<u8>,
        fill: Vec<u8>,
    },
    /// Removes a dataset, or the `meta` group (`which` past the datasets).
    Remove { which: u8 },
}

#[derive(Debug, Arbitrary)]
struct Input {
    samples: u8,
    words: Vec<u8>,
    edits: Vec<Edit>,
}

fn schema() -> Schema {
    Schema {
        fixed: vec![
            FieldSpec {
                name: "image".into(),
                dtype: Dtype::U8,
                shape: vec![2, 3],
                compress: false,
            },
            FieldSpec {
                name: "label".into(),
                dtype: Dtype::I64,
                shape: vec![],
                compress: false,
            },
        ],
        ragged: vec!["words".into()],
    }
}

fn write(path: &Path, input: &Input) -> Option<()> {
    let meta = Meta {
        source: "fuzz".into(),
        version: "0".into(),
        params: serde_json::json!({"n": input.samples}),
    };
    let n = usize::from(input.samples % 6) + 1;
    let mut w = Writer::create(path, &schema(), &meta).ok()?;
    let mut words = input.words.iter().copied();
    for i in 0..n {
        let mut s = Sample::default();
        s.fixed.insert(
            "image".into(),
            Value::U8(Array::from_elem(IxDyn(&[2, 3]), i as u8)),
        );
        s.fixed.insert(
            "label".into(),
            Value::I64(ndarray::arr0(i as i64).into_dyn()),
        );
        // sequences of lengths taken from the input (0-3 sequences of 0-3 words)
        let k = words.next().unwrap_or(1) % 4;
        let seqs = (0..k)
            .map(|_| (0..words.next().unwrap_or(2) % 4).map(i32::from).collect())
            .collect();
        s.ragged.insert("words".into(), seqs);
        w.push(&s).ok()?;
    }
    let mut splits = BTreeMap::new();
    splits.insert("train".to_owned(), (0..n as u64).collect());
    splits.insert("test".to_owned(), vec![n as u64 - 1, 0]);
    w.finish(&splits).ok()?;
    Some(())
}

fn set_text(loc: &hdf5::Location, name: &str, value: &str) -> hdf5::Result<()> {
    let _ = loc.delete_attr(name);
    let v = VarLenUnicode::from_str(value).map_err(|e| hdf5::Error::from(e.to_string()))?;
    loc.new_attr::<VarLenUnicode>()
        .shape(())
        .create(name)?
        .write_scalar(&v)
}

fn replace(file: &hdf5::File, path: &str, dtype: u8, dims: &[u8], fill: &[u8]) -> hdf5::Result<()> {
    let shape: Vec<usize> = dims.iter().take(3).map(|&d| usize::from(d % 16)).collect();
    let len: usize = shape.iter().product();
    let _ = file.unlink(path);
    let (group, name) = path.rsplit_once('/').unwrap_or(("/", path));
    let g = match file.group(group) {
        Ok(g) => g,
        Err(_) => file.create_group(group)?,
    };
    let byte = |i: usize| fill.get(i % fill.len().max(1)).copied().unwrap_or(0);
    macro_rules! put {
        ($t:ty, $f:expr) => {{
            let flat: Vec<$t> = (0..len).map(|i| $f(i) as $t).collect();
            let data = Array::from_shape_vec(IxDyn(&shape), flat)
                .map_err(|e| hdf5::Error::from(e.to_string()))?;
            g.new_dataset_builder().with_data(&data).create(name)?;
        }};
    }
    match dtype % 6 {
        0 => put!(u8, |i| byte(i)),
        1 => put!(i32, |i| i32::from_le_bytes([
            byte(4 * i),
            byte(4 * i + 1),
            byte(4 * i + 2),
            byte(4 * i + 3)
        ])),
        2 => put!(i64, |i| i64::from(i8::from_le_bytes([byte(i)])) * 3),
        3 => put!(u64, |i| u64::from(byte(i))
            | (u64::from(byte(i + 1) & 0x80) << 56)),
        4 => put!(f32, |i| f32::from(byte(i)) - 128.5),
        _ => put!(f64, |i| f64::from(byte(i)) * 1e300),
    }
    Ok(())
}

fn edit(path: &Path, edits: &[Edit]) -> hdf5::Result<()> {
    let file = hdf5::File::open_rw(path)?;
    for e in edits.iter().take(8) {
        // each edit may fail (a missing group, say): the file stays as it is, which is fine
        let _ = match e {
            Edit::Text { which, value } => match which % 4 {
                0 => set_text(&file, "mm_format", value),
                1 => set_text(&file, "schema", value),
                2 => file
                    .group("meta")
                    .and_then(|g| set_text(&g, "params", value)),
                _ => file
                    .group("meta")
                    .and_then(|g| set_text(&g, "source", value)),
            },
            Edit::SchemaByte { at, byte, op } => (|| {
                let s: VarLenUnicode = file.attr("schema")?.read_scalar()?;
                let mut b = s.as_str().as_bytes().to_vec();
                let at = usize::from(*at) % (b.len() + 1);
                match op % 3 {
                    0 if at < b.len() => b[at] = *byte,
                    1 => b.insert(at, *byte),
                    _ if at < b.len() => {
                        b.remove(at);
                    }
                    _ => {}
                }
                set_text(&file, "schema", &String::from_utf8_lossy(&b))
            })(),
            Edit::Count(n) => (|| {
                file.delete_attr("n_samples")?;
                file.new_attr::<u64>()
                    .shape(())
                    .create("n_samples")?
                    .write_scalar(n)
            })(),
            Edit::Replace {
                which,
                dtype,
                dims,
                fill,
            } => replace(
                &file,
                DATASETS[usize::from(*which) % DATASETS.len()],
                *dtype,
                dims,
                fill,
            ),
            Edit::Remove { which } => match DATASETS.get(usize::from(*which) % 10) {
                Some(p) => file.unlink(p),
                None => file.unlink("meta"),
            },
        };
    }
    file.flush()
}

fn read_all(path: &Path) {
    let Ok(r) = Reader::open(path) else {
        return;
    };
    let n = r.len();
    let _ = r.read_range(0, n.min(16));
    for i in 0..n.min(16) {
        let _ = r.get(i);
    }
    let _ = r.get(n);
    let _ = r.read_range_fields(0, n.min(4), &["words"]);
    let _ = r.read_batch_fields(&[0, 0], &["image"]);
    let Ok(names) = r.split_names() else {
        return;
    };
    for name in names {
        let Ok(idx) = r.split(&name) else {
            continue;
        };
        assert!(
            idx.iter().all(|&i| (i as usize) < n),
            "split {name} past {n}"
        );
        let idx: Vec<usize> = idx.iter().take(16).map(|&i| i as usize).collect();
        if let Ok(b) = r.read_batch(&idx) {
            assert_eq!(b.len, idx.len());
        }
        let cfg = BatchConfig {
            batch_size: 2,
            shuffle: true,
            threads: 1,
            prefetch: 1,
            ..BatchConfig::default()
        };
        let idx64: Vec<u64> = idx.iter().map(|&i| i as u64).collect();
        if let Ok(it) = BatchIter::new(path, &idx64, &cfg, 0) {
            for b in it {
                let _ = b;
            }
        }
    }
}

fuzz_target!(|input: Input| {
    let dir = std::env::var_os("MM_FUZZ_TMP").map_or_else(std::env::temp_dir, Into::into);
    let Ok(tmp) = tempfile_in(&dir) else {
        return;
    };
    let path = tmp.join("d.h5");
    if write(&path, &input).is_some() && edit(&path, &input.edits).is_ok() {
        read_all(&path);
    }
    let _ = std::fs::remove_dir_all(&tmp);
});

/// A fresh directory under `dir` (no tempfile crate, to keep the fuzz build small).
fn tempfile_in(dir: &Path) -> std::io::Result<std::path::PathBuf> {
    let p = dir.join(format!("mm-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p)?;
    Ok(p)
}
