//! Fuzzes the configuration layers of `mm train`: a TOML file and `--set` overrides (the input,
//! split at its first NUL byte: the file, then one override per line) over a task's defaults
//! (VQA's, whose configuration has nested tables, enums, options and lists), read by
//! `mm_train::config::load`, then validated. A configuration that loads must survive the run
//! directory's round trip: written with `to_toml` and loaded again, it is the same. Errors are
//! fine; panics, aborts, OOM and timeouts are bugs.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (file, sets) = text.split_once('\0').unwrap_or((&text, ""));
    let overrides: Vec<String> = sets.lines().take(16).map(str::to_owned).collect();
    let dir = std::env::var_os("MM_FUZZ_TMP").map_or_else(std::env::temp_dir, Into::into);
    let path = dir.join(format!("mm-fuzz-config-{}.toml", std::process::id()));
    if std::fs::write(&path, file).is_err() {
        return;
    }
    let defaults = mm_tasks::vqa::defaults();
    let loaded = mm_train::config::load(&defaults, Some(&path), &overrides);
    let _ = std::fs::remove_file(&path);
    let Ok(cfg) = loaded else {
        return;
    };
    let _ = cfg.train.validate();
    let toml = mm_train::config::to_toml(&cfg).expect("a loaded configuration serialises");
    std::fs::write(&path, &toml).expect("scratch file");
    let again = mm_train::config::load(&defaults, Some(&path), &[]);
    let _ = std::fs::remove_file(&path);
    match again {
        Ok(again) => assert!(
            mm_train::config::to_toml(&again).ok().as_deref() == Some(toml.as_str()),
            "the round trip changed the configuration:\n{toml}"
        ),
        Err(e) => panic!("a written configuration does not load again: {e}\n{toml}"),
    }
});
