//! Writes a small multi-modal data set (image, audio, label, captions) and reads it back.
//!
//! ```text
//! cargo run -p mm-data --example write_dataset -- OUT.h5
//! python3 -c "import h5py; f = h5py.File('OUT.h5'); print(f['samples/image'].shape)"
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use mm_data::{
    BatchConfig, BatchIter, Dtype, FieldSpec, Meta, Reader, Sample, Schema, Value, Writer,
};
use ndarray::{Array, IxDyn};

fn main() -> Result<(), mm_data::Error> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "example.h5".into()),
    );
    let schema = Schema {
        fixed: vec![
            FieldSpec {
                name: "image".into(),
                dtype: Dtype::U8,
                shape: vec![16, 16, 3],
                compress: true,
            },
            FieldSpec {
                name: "audio".into(),
                dtype: Dtype::F32,
                shape: vec![1600],
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
    };
    let meta = Meta {
        source: "example".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        params: serde_json::json!({"samples": 40}),
    };
    let mut w = Writer::create(&out, &schema, &meta)?;
    for i in 0..40usize {
        let mut s = Sample::default();
        s.fixed.insert(
            "image".into(),
            Value::U8(Array::from_elem(IxDyn(&[16, 16, 3]), (i * 5) as u8)),
        );
        s.fixed.insert(
            "audio".into(),
            Value::F32(Array::from_shape_fn(IxDyn(&[1600]), |t| {
                (t[0] as f32 * 0.05 * (i + 1) as f32).sin()
            })),
        );
        s.fixed.insert(
            "label".into(),
            Value::I64(ndarray::arr0((i % 4) as i64).into_dyn()),
        );
        s.ragged
            .insert("captions".into(), vec![vec![1, 2, i as i32], vec![7]]);
        w.push(&s)?;
    }
    let mut splits = BTreeMap::new();
    splits.insert("train".to_owned(), (0..32).collect());
    splits.insert("test".to_owned(), (32..40).collect());
    w.finish(&splits)?;
    let r = Reader::open(&out)?;
    let train = r.split("train")?;
    let n: usize = BatchIter::new(
        &out,
        &train,
        &BatchConfig {
            batch_size: 8,
            ..Default::default()
        },
        0,
    )?
    .map(|b| b.map(|b| b.len))
    .sum::<Result<usize, _>>()?;
    println!(
        "{}: {} samples, {} read back from the train split",
        out.display(),
        r.len(),
        n
    );
    Ok(())
}
