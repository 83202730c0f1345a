//! Fuzzes `mm_vision::load_safetensors` into a ResNet-18 (torchvision's names; the loader of
//! `--weights` and of frozen encoders): the input is the weights file. The model is built once;
//! each input is loaded into it (strict or not, by the first byte), and must either load every
//! variable or change nothing. Errors are fine; panics, aborts, OOM and timeouts are bugs.
#![no_main]

use std::cell::RefCell;

use libfuzzer_sys::fuzz_target;
use tch::nn;

thread_local! {
    static MODEL: RefCell<nn::VarStore> = RefCell::new({
        let vs = nn::VarStore::new(tch::Device::Cpu);
        mm_vision::ResNet::new(&vs.root(), mm_vision::Arch::Resnet18, None).expect("resnet18");
        vs
    });
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, bytes)) = data.split_first() else {
        return;
    };
    let base = std::env::var_os("MM_FUZZ_TMP").map_or_else(std::env::temp_dir, Into::into);
    let path = base.join(format!(
        "mm-fuzz-weights-{}.safetensors",
        std::process::id()
    ));
    if std::fs::write(&path, bytes).is_err() {
        return;
    }
    MODEL.with(|m| {
        let mut vs = m.borrow_mut();
        let conv1 = |vs: &nn::VarStore| {
            vs.variables()
                .get("conv1.weight")
                .map_or(0.0, |t| t.sum(tch::Kind::Double).double_value(&[]))
        };
        let before = conv1(&vs);
        let opts = mm_vision::LoadOptions {
            strict: flags & 1 == 1,
            ..Default::default()
        };
        let loaded = mm_vision::load_safetensors(&mut vs, &path, &opts);
        if loaded.is_err() {
            let after = conv1(&vs);
            assert!(
                before == after || before.is_nan(),
                "a failed load changed conv1.weight"
            );
        }
    });
    let _ = std::fs::remove_file(&path);
});
