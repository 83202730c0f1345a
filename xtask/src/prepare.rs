//! `cargo xtask prepare <dataset> [ARGS]`: builds a data set into HDF5 with the `mm` binary.

use anyhow::{Result, bail};

use crate::util::{mm, step};

pub fn run(args: &[String]) -> Result<()> {
    let Some((name, rest)) = args.split_first() else {
        bail!(
            "usage: cargo xtask prepare synthav [--out data/synthav.h5] [--scenes N] [--seed S]\n       \
             cargo xtask prepare esc50|flickr8k|coco|vqa|av-folders --raw DIR --out FILE.h5 [--skip-bad]"
        );
    };
    let sub: &[&str] = match name.as_str() {
        "synthav" => &["data", "synthav"],
        "esc50" | "flickr8k" | "coco" | "vqa" | "av-folders" => &["data", "convert", name.as_str()],
        other => bail!(
            "unknown data set `{other}` (known: synthav, esc50, flickr8k, coco, vqa, av-folders)"
        ),
    };
    crate::setup::run()?;
    step(&format!("mm {}", sub.join(" ")));
    let mut args: Vec<&str> = sub.to_vec();
    args.extend(rest.iter().map(String::as_str));
    mm(&args, &format!("preparing {name}"))
}
