//! Loader throughput: writes N samples of a 64x64 RGB image, 1 s of 16 kHz audio and a caption
//! to an HDF5 file on disk, then reads them in shuffled batches with `BatchIter` and reports
//! samples per second (one JSON line).
//!
//! ```text
//! data-throughput [--samples N] [--batch B] [--threads T] [--dir DIR]
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use mm_data::{BatchConfig, BatchIter, Dtype, FieldSpec, Meta, Sample, Schema, Value, Writer};
use ndarray::{Array, IxDyn};
use serde_json::json;

fn main() -> Result<()> {
    let (mut n, mut batch, mut threads) = (4096usize, 64usize, 2usize);
    let mut dir = std::env::temp_dir();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let val = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--samples" => n = val.parse()?,
            "--batch" => batch = val.parse()?,
            "--threads" => threads = val.parse()?,
            "--dir" => dir = PathBuf::from(val),
            f => bail!("unknown flag {f}"),
        }
    }
    let path = dir.join(format!("mm-throughput-{}.h5", std::process::id()));
    let schema = Schema {
        fixed: vec![
            FieldSpec {
                name: "image".into(),
                dtype: Dtype::U8,
                shape: vec![64, 64, 3],
                compress: false,
            },
            FieldSpec {
                name: "audio".into(),
                dtype: Dtype::F32,
                shape: vec![16_000],
                compress: false,
            },
        ],
        ragged: vec!["caption".into()],
    };
    let t = Instant::now();
    let mut w = Writer::create(&path, &schema, &Meta::default())?;
    for i in 0..n {
        let mut s = Sample::default();
        s.fixed.insert(
            "image".into(),
            Value::U8(Array::from_shape_fn(IxDyn(&[64, 64, 3]), |d| {
                ((i + d[0] * 3 + d[1]) % 256) as u8
            })),
        );
        s.fixed.insert(
            "audio".into(),
            Value::F32(Array::from_shape_fn(IxDyn(&[16_000]), |d| {
                ((i + d[0]) % 97) as f32 * 0.01
            })),
        );
        s.ragged.insert(
            "caption".into(),
            vec![(0..12).map(|k| (i + k) as i32 % 500).collect()],
        );
        w.push(&s)?;
    }
    let mut splits = BTreeMap::new();
    splits.insert("train".to_owned(), (0..n as u64).collect::<Vec<_>>());
    w.finish(&splits)?;
    let write_s = t.elapsed().as_secs_f64();
    let idx: Vec<u64> = (0..n as u64).collect();
    let cfg = BatchConfig {
        batch_size: batch,
        threads,
        prefetch: 2 * threads,
        ..Default::default()
    };
    let mut best = f64::INFINITY;
    for epoch in 0..3 {
        let t = Instant::now();
        let mut seen = 0;
        for b in BatchIter::new(&path, &idx, &cfg, epoch)? {
            seen += b?.len;
        }
        anyhow::ensure!(seen == n, "read {seen} of {n}");
        best = best.min(t.elapsed().as_secs_f64());
    }
    let bytes = std::fs::metadata(&path)?.len();
    std::fs::remove_file(&path)?;
    println!(
        "{}",
        json!({
            "samples": n, "batch": batch, "threads": threads, "file_mb": bytes as f64 / 1e6,
            "write_s": write_s, "epoch_s": best, "samples_per_s": n as f64 / best,
        })
    );
    Ok(())
}
