//! Captions a trained captioning run's validation images with `Captioning::caption` at several
//! batch sizes and prints the time of each: how much batched beam search saves.
//!
//! ```text
//! cargo run --release -p mm-tasks --example caption_batches -- runs/cap5k [1,100,500]
//! ```

use std::path::PathBuf;

use anyhow::Context;
use mm_tasks::captioning::{self, Captioning};
use tch::Device;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let run = PathBuf::from(args.next().context("usage: caption_batches RUN [SIZES]")?);
    let sizes: Vec<usize> = args
        .next()
        .unwrap_or_else(|| "1,100,1,100".into())
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .context("batch sizes: comma-separated integers")
        })
        .collect::<anyhow::Result<_>>()?;
    let model: Captioning = mm_train::run::restore(&run, Device::Cpu)
        .with_context(|| format!("loading {}", run.display()))?;
    let cfg = mm_train::config::load(&captioning::defaults(), Some(&run.join("config.toml")), &[])?;
    let reader = mm_data::Reader::open(&cfg.task.data)?;
    let val: Vec<usize> = reader
        .split("val")?
        .into_iter()
        .map(|i| i as usize)
        .collect();
    let images = reader
        .read_batch_fields(&val, &["image"])?
        .tensor("image", Device::Cpu)?;
    for batch in sizes {
        let t0 = std::time::Instant::now();
        let captions = tch::no_grad(|| model.caption(&images, batch))?;
        println!(
            "batch {batch:>4}: {} captions in {:.3} s",
            captions.len(),
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
