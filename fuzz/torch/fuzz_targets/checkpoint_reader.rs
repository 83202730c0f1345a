//! Fuzzes the checkpoint reader of `--resume`, `mm eval` and `mm infer`: a checkpoint folder
//! holding a manifest and the model and optimizer safetensors files, from the input (split at
//! its first two NUL bytes; the first byte's low bit rewrites the manifest's checksums to match
//! the files, so that the tensor files themselves are read and not only refused by checksum),
//! verified and loaded into a small model (two linear layers) with its Adam state. Errors are
//! fine; panics, aborts, OOM and timeouts are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use tch::nn;

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut parts = rest.splitn(3, |&b| b == 0);
    let manifest = parts.next().unwrap_or_default();
    let model = parts.next().unwrap_or_default();
    let optimizer = parts.next().unwrap_or_default();
    let base = std::env::var_os("MM_FUZZ_TMP").map_or_else(std::env::temp_dir, Into::into);
    let dir = base.join(format!(
        "mm-fuzz-ckpt-{}/checkpoints/step-00000001",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    if std::fs::create_dir_all(&dir).is_err() {
        return;
    }
    let mut manifest = manifest.to_vec();
    if flags & 1 == 1 {
        // keep the fuzzer's manifest, with the files' true checksums in place of its own
        if let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&manifest) {
            if let Some(files) = v.get_mut("files").and_then(|f| f.as_object_mut()) {
                files.insert("model.safetensors".into(), sha(model).into());
                files.insert("optimizer.safetensors".into(), sha(optimizer).into());
            }
            manifest = v.to_string().into_bytes();
        }
    }
    let ok = std::fs::write(dir.join("manifest.json"), &manifest).is_ok()
        && std::fs::write(dir.join("model.safetensors"), model).is_ok()
        && std::fs::write(dir.join("optimizer.safetensors"), optimizer).is_ok();
    if ok {
        let mut vs = nn::VarStore::new(tch::Device::Cpu);
        let root = vs.root();
        let _a = nn::linear(&root / "a", 3, 4, Default::default());
        let _b = nn::linear(&root / "b", 4, 2, Default::default());
        // Adam at its defaults, as a task's configuration gives it
        let cfg: mm_train::OptimizerConfig =
            serde_json::from_str(r#"{"kind": "adam", "lr": 0.001}"#).expect("defaults");
        if let Ok(mut opt) = mm_train::Optimizer::new(&vs, &cfg, &[]) {
            let _ = mm_train::checkpoint::load(&dir, &mut vs, &mut [&mut opt]);
        }
        let _ = mm_train::run::resolve_checkpoint(&dir);
        let _ = mm_train::checkpoint::list(dir.parent().unwrap_or(&dir));
    }
    let _ = std::fs::remove_dir_all(base.join(format!("mm-fuzz-ckpt-{}", std::process::id())));
});
