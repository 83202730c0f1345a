//! Every configuration shipped in `configs/<task>/` reads with its task's schema (unknown keys
//! are errors) and passes the engine's validation, so a renamed or removed field cannot leave a
//! config that only fails when a user runs it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use mm_tasks::{captioning, retrieval, sound_tagging, text_to_image, vqa};
use mm_train::config::load;
use serde::{Serialize, de::DeserializeOwned};

fn configs(task: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs")
        .join(task);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no configs in {}", dir.display());
    files
}

fn check<C>(task: &str, defaults: &mm_train::RunConfig<C>) -> usize
where
    mm_train::RunConfig<C>: Serialize + DeserializeOwned,
{
    let files = configs(task);
    for f in &files {
        let cfg = load(defaults, Some(f), &[]).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        cfg.train
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()));
    }
    files.len()
}

#[test]
fn every_shipped_config_reads_and_validates() {
    let n = check("retrieval", &retrieval::defaults())
        + check("captioning", &captioning::defaults())
        + check("vqa", &vqa::defaults())
        + check("text-to-image", &text_to_image::defaults())
        + check("sound-tagging", &sound_tagging::defaults());
    assert!(n >= 11, "{n} configs");
}

#[test]
fn a_config_with_a_misspelt_key_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.toml");
    let good = std::fs::read_to_string(&configs("vqa")[0]).unwrap();
    std::fs::write(&f, good.replace("hidden_dim", "hiden_dim")).unwrap();
    let e = load(&vqa::defaults(), Some(&f), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("hiden_dim"), "{e}");
}
