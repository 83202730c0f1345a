//! Fuzzes the converters' annotation parsers end to end: each input is one annotation file of a
//! raw data set (picked by the first byte: VQA v2 questions or annotations JSON, ESC-50's CSV,
//! Flickr8k's token list or split list, Karpathy's Flickr8k or COCO JSON), placed in an
//! otherwise valid tiny tree (two 20x16 JPEGs, two short WAV clips, valid companion files), and
//! the converter (`mm data convert ...`) is run on it, stopping or skipping bad entries as the
//! second byte says. Errors are fine; panics, aborts, OOM and timeouts are bugs.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mm_data::convert::{esc50, flickr8k, vqa};

/// The annotation files, in the order the first input byte picks them.
const FILES: [&str; 7] = [
    "v2_OpenEnded_mscoco_train2014_questions.json",
    "v2_mscoco_train2014_annotations.json",
    "meta/esc50.csv",
    "Flickr8k.token.txt",
    "Flickr_8k.trainImages.txt",
    "dataset_flickr8k.json",
    "dataset_coco.json",
];

fn jpg(path: &Path, shade: u8) {
    let _ = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")));
    let _ = image::RgbImage::from_fn(20, 16, |x, y| {
        image::Rgb([shade, x as u8 * 9, y as u8 * 11])
    })
    .save(path);
}

fn wav(path: &Path) {
    let _ = std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")));
    let audio = mm_signal::Audio {
        samples: ndarray::Array2::from_shape_fn((1, 800), |(_, t)| (t as f32 * 0.1).sin() * 0.5),
        sample_rate: 8000,
    };
    let _ = mm_signal::write_wav(path, &audio, mm_signal::WavEncoding::Pcm16);
}

/// The valid tree every input starts from (the fuzzed file then replaces one file).
fn tree(d: &Path) {
    for (split, img) in [("train", 1u64), ("train", 2), ("val", 7)] {
        jpg(
            &d.join(format!("{split}2014/COCO_{split}2014_{img:012}.jpg")),
            img as u8 * 30,
        );
    }
    let qa = |split: &str, ids: &[u64]| {
        let mut qs = Vec::new();
        let mut anns = Vec::new();
        for &img in ids {
            let qid = img * 10;
            qs.push(serde_json::json!({"image_id": img, "question": "what color is it?", "question_id": qid}));
            let answers: Vec<_> = (0..10)
                .map(|h| serde_json::json!({"answer": "red", "answer_id": h}))
                .collect();
            anns.push(serde_json::json!({"question_id": qid, "image_id": img, "answers": answers,
                "multiple_choice_answer": "red", "answer_type": "other", "question_type": "what color is"}));
        }
        let _ = std::fs::write(
            d.join(format!("v2_OpenEnded_mscoco_{split}2014_questions.json")),
            serde_json::json!({"questions": qs}).to_string(),
        );
        let _ = std::fs::write(
            d.join(format!("v2_mscoco_{split}2014_annotations.json")),
            serde_json::json!({"annotations": anns}).to_string(),
        );
    };
    qa("train", &[1, 2]);
    qa("val", &[7]);
    wav(&d.join("audio/1-100-A-0.wav"));
    wav(&d.join("audio/2-200-A-1.wav"));
    let _ = std::fs::create_dir_all(d.join("meta"));
    let _ = std::fs::write(
        d.join("meta/esc50.csv"),
        "filename,fold,target,category,esc10,src_file,take\n1-100-A-0.wav,1,0,dog,True,100,A\n2-200-A-1.wav,2,1,rooster,False,200,A\n",
    );
    jpg(&d.join("Flicker8k_Dataset/a.jpg"), 10);
    jpg(&d.join("Flicker8k_Dataset/b.jpg"), 200);
    let _ = std::fs::write(
        d.join("Flickr8k.token.txt"),
        "a.jpg#0\tA dog runs.\nb.jpg#0\tA red ball.\n",
    );
    let _ = std::fs::write(d.join("Flickr_8k.trainImages.txt"), "a.jpg\n");
    let _ = std::fs::write(d.join("Flickr_8k.devImages.txt"), "b.jpg\n");
    let _ = std::fs::write(d.join("Flickr_8k.testImages.txt"), "");
}

fuzz_target!(|data: &[u8]| {
    let [pick, flags, rest @ ..] = data else {
        return;
    };
    let base = std::env::var_os("MM_FUZZ_TMP").map_or_else(std::env::temp_dir, Into::into);
    let d = base.join(format!("mm-fuzz-conv-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    tree(&d);
    let which = usize::from(*pick) % FILES.len();
    if std::fs::write(d.join(FILES[which]), rest).is_err() {
        return;
    }
    let skip_bad = flags & 1 == 1;
    let out = d.join("out.h5");
    let mut progress = |_: usize, _: usize| {};
    let images = flickr8k::Flickr8kConfig {
        image_size: 16,
        min_count: 1,
        skip_bad,
    };
    let _ = match which {
        0 | 1 => vqa::convert(&d, &out, &images, &mut progress).map(|_| ()),
        2 => {
            let cfg = esc50::Esc50Config {
                sample_rate: 4000,
                seconds: 0.1,
                log_mel: (flags & 2 == 2).then_some(8),
                skip_bad,
            };
            esc50::convert(&d, &out, &cfg, &mut progress).map(|_| ())
        }
        3..=5 => flickr8k::convert(&d, &out, &images, &mut progress).map(|_| ()),
        _ => flickr8k::convert_coco(&d, &out, &images, &mut progress).map(|_| ()),
    };
    // whatever the converter wrote must open as a data set
    if out.exists() {
        if let Err(e) = mm_data::Reader::open(&out) {
            panic!("a converter left a file that does not open: {e}");
        }
    }
    let _ = std::fs::remove_dir_all(&d);
});
