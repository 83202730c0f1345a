//! Caption metrics, computed as the reference tools compute them (golden tests:
//! `tests/caption_metrics.rs`, reference `scripts/caption_metrics_reference.py`):
//!
//! - [`coco_bleu`]: BLEU-1..4 of coco-caption (`pycocoevalcap`): corpus-level clipped n-gram
//!   precisions with the closest reference length, and its tiny/small smoothing constants
//!   (`1e-15`, `1e-9`), plus its per-image scores;
//! - [`nltk_bleu`]: `nltk.translate.bleu_score.corpus_bleu` with uniform weights and no
//!   smoothing, labelled separately because it differs: a hypothesis shorter than `n` words
//!   counts one `n`-gram in the denominator (nltk's `max(1, ...)`), and a zero precision gives
//!   `sys.float_info.min` instead of coco's `1e-15 / 1e-9`;
//! - [`rouge_l`]: coco-caption's ROUGE-L (longest common subsequence, best precision and best
//!   recall over the references, F with beta 1.2), averaged over images;
//! - [`cider_d`]: coco-caption's CIDEr, which is CIDEr-D (tf-idf n-gram vectors with document
//!   frequencies from the evaluated references, clipped, Gaussian length penalty with sigma 6
//!   on the number of **bigrams**, as its code counts length, times 10), averaged over images.
//!
//! METEOR is not provided: its reference implementation is a Java program.
//!
//! Captions are pre-tokenised strings (space-separated tokens, as coco-caption's scorers
//! receive them after its PTB tokenizer); BLEU and CIDEr split on whitespace, ROUGE-L on single
//! spaces, as the reference code does.

use std::collections::{HashMap, HashSet};

use crate::error::{Error, Result};

/// Corpus BLEU-1..4 and the per-image BLEU-1..4, as coco-caption reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct Bleu {
    /// BLEU-1..4 over the corpus.
    pub corpus: [f64; 4],
    /// BLEU-1..4 of each image.
    pub per_image: Vec<[f64; 4]>,
}

fn check(candidates: &[String], references: &[Vec<String>]) -> Result<()> {
    if candidates.is_empty() || candidates.len() != references.len() {
        return Err(Error::InvalidParameter {
            name: "captions",
            reason: format!(
                "need one candidate per image and at least one image: {} candidates, {} reference sets",
                candidates.len(),
                references.len()
            ),
        });
    }
    if let Some(i) = references.iter().position(Vec::is_empty) {
        return Err(Error::InvalidParameter {
            name: "references",
            reason: format!("image {i} has no reference caption"),
        });
    }
    Ok(())
}

/// n-gram counts (n = 1..=4) of whitespace-split `s`.
fn ngrams(s: &str) -> (usize, HashMap<Vec<&str>, usize>) {
    let words: Vec<&str> = s.split_whitespace().collect();
    let mut counts = HashMap::new();
    for n in 1..=4 {
        for w in words.windows(n) {
            *counts.entry(w.to_vec()).or_insert(0) += 1;
        }
    }
    (words.len(), counts)
}

/// The reference length closest to `len` (the shorter on ties).
fn closest(ref_lens: &[usize], len: usize) -> usize {
    ref_lens
        .iter()
        .copied()
        .min_by_key(|&l| (l.abs_diff(len), l))
        .unwrap_or(0)
}

/// Per image: hypothesis length, closest reference length, and per n: clipped matches and
/// hypothesis n-grams.
struct BleuStats {
    len: usize,
    ref_len: usize,
    correct: [usize; 4],
    guess: [usize; 4],
}

fn bleu_stats(candidate: &str, refs: &[String]) -> BleuStats {
    let (len, counts) = ngrams(candidate);
    let mut max_ref: HashMap<Vec<&str>, usize> = HashMap::new();
    let mut ref_lens = Vec::with_capacity(refs.len());
    for r in refs {
        let (l, c) = ngrams(r);
        ref_lens.push(l);
        for (g, k) in c {
            let e = max_ref.entry(g).or_insert(0);
            *e = (*e).max(k);
        }
    }
    let mut correct = [0usize; 4];
    for (g, &k) in &counts {
        correct[g.len() - 1] += k.min(max_ref.get(g).copied().unwrap_or(0));
    }
    let guess = [0, 1, 2, 3].map(|k| len.saturating_sub(k));
    BleuStats {
        len,
        ref_len: closest(&ref_lens, len),
        correct,
        guess,
    }
}

/// coco-caption's cumulative BLEU-1..4 from summed statistics.
fn coco_bleu_of(len: usize, ref_len: usize, correct: &[usize; 4], guess: &[usize; 4]) -> [f64; 4] {
    const TINY: f64 = 1e-15;
    const SMALL: f64 = 1e-9;
    let mut out = [0.0; 4];
    let mut prod = 1.0;
    for k in 0..4 {
        prod *= (correct[k] as f64 + TINY) / (guess[k] as f64 + SMALL);
        out[k] = prod.powf(1.0 / (k + 1) as f64);
    }
    let ratio = (len as f64 + TINY) / (ref_len as f64 + SMALL);
    if ratio < 1.0 {
        out.iter_mut().for_each(|b| *b *= (1.0 - 1.0 / ratio).exp());
    }
    out
}

/// BLEU-1..4 as coco-caption computes them (`Bleu(4)`, option `closest`).
pub fn coco_bleu(candidates: &[String], references: &[Vec<String>]) -> Result<Bleu> {
    check(candidates, references)?;
    let (mut len, mut ref_len) = (0, 0);
    let (mut correct, mut guess) = ([0usize; 4], [0usize; 4]);
    let mut per_image = Vec::with_capacity(candidates.len());
    for (c, refs) in candidates.iter().zip(references) {
        let s = bleu_stats(c, refs);
        len += s.len;
        ref_len += s.ref_len;
        for k in 0..4 {
            correct[k] += s.correct[k];
            guess[k] += s.guess[k];
        }
        per_image.push(coco_bleu_of(s.len, s.ref_len, &s.correct, &s.guess));
    }
    Ok(Bleu {
        corpus: coco_bleu_of(len, ref_len, &correct, &guess),
        per_image,
    })
}

/// BLEU-1..4 as `nltk.translate.bleu_score.corpus_bleu` computes them with weights
/// `(1/n, ..., 1/n)` and no smoothing.
pub fn nltk_bleu(candidates: &[String], references: &[Vec<String>]) -> Result<[f64; 4]> {
    check(candidates, references)?;
    let (mut len, mut ref_len) = (0usize, 0usize);
    let (mut num, mut den) = ([0usize; 4], [0usize; 4]);
    for (c, refs) in candidates.iter().zip(references) {
        let s = bleu_stats(c, refs);
        len += s.len;
        ref_len += s.ref_len;
        for k in 0..4 {
            num[k] += s.correct[k];
            den[k] += s.guess[k].max(1); // nltk: max(1, sum of counts)
        }
    }
    if num[0] == 0 {
        return Ok([0.0; 4]);
    }
    let bp = if len > ref_len {
        1.0
    } else if len == 0 {
        0.0
    } else {
        (1.0 - ref_len as f64 / len as f64).exp()
    };
    let mut out = [0.0; 4];
    for (n, o) in out.iter_mut().enumerate() {
        let w = 1.0 / (n + 1) as f64;
        let s: f64 = (0..=n)
            .map(|k| {
                let p = if num[k] == 0 {
                    f64::MIN_POSITIVE
                } else {
                    num[k] as f64 / den[k] as f64
                };
                w * p.ln()
            })
            .sum();
        *o = bp * s.exp();
    }
    Ok(out)
}

/// Length of the longest common subsequence of two token lists.
fn lcs(a: &[&str], b: &[&str]) -> usize {
    let mut prev = vec![0usize; b.len() + 1];
    let mut cur = vec![0usize; b.len() + 1];
    for x in a {
        for (j, y) in b.iter().enumerate() {
            cur[j + 1] = if x == y {
                prev[j] + 1
            } else {
                cur[j].max(prev[j + 1])
            };
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// ROUGE-L as coco-caption computes it: the corpus mean and the per-image scores.
pub fn rouge_l(candidates: &[String], references: &[Vec<String>]) -> Result<(f64, Vec<f64>)> {
    check(candidates, references)?;
    const BETA: f64 = 1.2;
    let per: Vec<f64> = candidates
        .iter()
        .zip(references)
        .map(|(c, refs)| {
            let tc: Vec<&str> = c.split(' ').collect();
            let (mut p, mut r) = (0.0f64, 0.0f64);
            for reference in refs {
                let tr: Vec<&str> = reference.split(' ').collect();
                let l = lcs(&tr, &tc) as f64;
                p = p.max(l / tc.len() as f64);
                r = r.max(l / tr.len() as f64);
            }
            if p != 0.0 && r != 0.0 {
                (1.0 + BETA * BETA) * p * r / (r + BETA * BETA * p)
            } else {
                0.0
            }
        })
        .collect();
    Ok((per.iter().sum::<f64>() / per.len() as f64, per))
}

/// n-gram vectors (tf-idf) per n, their norms, and the bigram count (what the reference code
/// calls the length).
type TfIdf<'a> = ([HashMap<Vec<&'a str>, f64>; 4], [f64; 4], usize);

fn tfidf<'a>(
    counts: &HashMap<Vec<&'a str>, usize>,
    df: &HashMap<&Vec<&str>, f64>,
    ref_len: f64,
) -> TfIdf<'a> {
    let mut v: [HashMap<Vec<&'a str>, f64>; 4] = Default::default();
    let mut norm = [0.0f64; 4];
    let mut length = 0usize;
    for (g, &tf) in counts {
        let d = df.get(g).copied().unwrap_or(0.0).max(1.0).ln();
        let n = g.len() - 1;
        let w = tf as f64 * (ref_len - d);
        v[n].insert(g.clone(), w);
        norm[n] += w * w;
        if n == 1 {
            length += tf;
        }
    }
    (v, norm.map(f64::sqrt), length)
}

/// CIDEr-D as coco-caption computes it (its `Cider`): the corpus mean and per-image scores.
pub fn cider_d(candidates: &[String], references: &[Vec<String>]) -> Result<(f64, Vec<f64>)> {
    check(candidates, references)?;
    const SIGMA: f64 = 6.0;
    let cooked_refs: Vec<Vec<HashMap<Vec<&str>, usize>>> = references
        .iter()
        .map(|refs| refs.iter().map(|r| ngrams(r).1).collect())
        .collect();
    let mut df: HashMap<&Vec<&str>, f64> = HashMap::new();
    for refs in &cooked_refs {
        let set: HashSet<&Vec<&str>> = refs.iter().flat_map(|r| r.keys()).collect();
        for g in set {
            *df.entry(g).or_insert(0.0) += 1.0;
        }
    }
    let ref_len = (references.len() as f64).ln();
    let per: Vec<f64> = candidates
        .iter()
        .zip(&cooked_refs)
        .map(|(c, refs)| {
            let (vh, nh, lh) = tfidf(&ngrams(c).1, &df, ref_len);
            let mut score = [0.0f64; 4];
            for r in refs {
                let (vr, nr, lr) = tfidf(r, &df, ref_len);
                let delta = lh as f64 - lr as f64;
                for n in 0..4 {
                    let mut val: f64 = vh[n]
                        .iter()
                        .map(|(g, &h)| {
                            let rw = vr[n].get(g).copied().unwrap_or(0.0);
                            h.min(rw) * rw
                        })
                        .sum();
                    if nh[n] != 0.0 && nr[n] != 0.0 {
                        val /= nh[n] * nr[n];
                    }
                    score[n] += val * (-(delta * delta) / (2.0 * SIGMA * SIGMA)).exp();
                }
            }
            score.iter().sum::<f64>() / 4.0 / refs.len() as f64 * 10.0
        })
        .collect();
    Ok((per.iter().sum::<f64>() / per.len() as f64, per))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn identical_captions_score_perfectly_and_bad_input_is_an_error() {
        let c = s(&["a red circle on the beach", "two blue squares"]);
        let r = vec![s(&["a red circle on the beach"]), s(&["two blue squares"])];
        let b = coco_bleu(&c, &r).unwrap();
        assert!(
            b.corpus.iter().all(|x| (x - 1.0).abs() < 1e-6),
            "{:?}",
            b.corpus
        );
        let n = nltk_bleu(&c, &r).unwrap();
        assert!(n[..3].iter().all(|x| (x - 1.0).abs() < 1e-12), "{n:?}");
        // nltk counts one 4-gram for the 3-word caption: p4 = 3 / 4
        assert!((n[3] - 0.75f64.powf(0.25)).abs() < 1e-12, "{n:?}");
        assert!((rouge_l(&c, &r).unwrap().0 - 1.0).abs() < 1e-12);
        assert!(coco_bleu(&c, &r[..1]).is_err());
        assert!(rouge_l(&c, &[s(&["x"]), vec![]]).is_err());
        assert_eq!(lcs(&["a", "b", "c", "d"], &["b", "d", "x"]), 2);
    }
}
