//! Caption metrics against coco-caption (pycocoevalcap 1.2) and nltk 3.10.4 on fixed captions
//! (`scripts/caption_metrics_reference.py`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mm_text::metrics::{cider_d, coco_bleu, nltk_bleu, rouge_l};

fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn close(a: f64, b: f64, what: &str) {
    assert!(
        (a - b).abs() <= 1e-9 * b.abs().max(1.0),
        "{what}: ours {a}, reference {b}"
    );
}

#[test]
fn every_metric_matches_the_reference_tools() {
    let f: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/caption_metrics.json")).unwrap();
    for case in f["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let cands = strings(&case["candidates"]);
        let refs: Vec<Vec<String>> = case["references"]
            .as_array()
            .unwrap()
            .iter()
            .map(strings)
            .collect();
        let b = coco_bleu(&cands, &refs).unwrap();
        for (k, want) in floats(&case["coco_bleu"]).into_iter().enumerate() {
            close(b.corpus[k], want, &format!("{name} coco BLEU-{}", k + 1));
        }
        for (k, per) in case["coco_bleu_per_image"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            for (i, want) in floats(per).into_iter().enumerate() {
                close(
                    b.per_image[i][k],
                    want,
                    &format!("{name} image {i} BLEU-{}", k + 1),
                );
            }
        }
        let n = nltk_bleu(&cands, &refs).unwrap();
        for (k, want) in floats(&case["nltk_bleu"]).into_iter().enumerate() {
            close(n[k], want, &format!("{name} nltk BLEU-{}", k + 1));
        }
        let (r, rp) = rouge_l(&cands, &refs).unwrap();
        close(
            r,
            case["rouge_l"].as_f64().unwrap(),
            &format!("{name} ROUGE-L"),
        );
        for (i, want) in floats(&case["rouge_l_per_image"]).into_iter().enumerate() {
            close(rp[i], want, &format!("{name} image {i} ROUGE-L"));
        }
        let (c, cp) = cider_d(&cands, &refs).unwrap();
        close(
            c,
            case["cider_d"].as_f64().unwrap(),
            &format!("{name} CIDEr-D"),
        );
        for (i, want) in floats(&case["cider_d_per_image"]).into_iter().enumerate() {
            close(cp[i], want, &format!("{name} image {i} CIDEr-D"));
        }
    }
}
