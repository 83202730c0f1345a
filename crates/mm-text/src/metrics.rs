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

use std::collections::{BTreeMap, HashMap, HashSet};

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
    check_references(references)
}

/// At least one image, and at least one reference caption for each.
fn check_references(references: &[Vec<String>]) -> Result<()> {
    if references.is_empty() {
        return Err(Error::InvalidParameter {
            name: "references",
            reason: "need at least one image's references".into(),
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

/// An n-gram (n = 1..=4) of interned words; unused slots are `u32::MAX`.
type Gram = [u32; 4];

/// A caption's tf-idf n-gram vectors per n, their norms, and its bigram count (what the
/// reference code calls the length). Ordered maps: the sums over n-grams then run in one
/// order, so a score is the same to the last bit in every process (a `HashMap`'s order is
/// seeded per process, and a resumed run's metrics differed from the uninterrupted run's in
/// the last digit).
#[derive(Debug, Clone)]
struct Vector {
    v: [BTreeMap<Gram, f64>; 4],
    norm: [f64; 4],
    len: usize,
}

fn gram_counts(ids: &[u32]) -> BTreeMap<Gram, usize> {
    let mut counts = BTreeMap::new();
    for n in 1..=4 {
        for w in ids.windows(n) {
            let mut g = [u32::MAX; 4];
            g[..n].copy_from_slice(w);
            *counts.entry(g).or_insert(0) += 1;
        }
    }
    counts
}

fn order(g: &Gram) -> usize {
    g.iter().take_while(|&&x| x != u32::MAX).count() - 1
}

/// CIDEr-D's scorer with its document frequencies fixed: built once from a corpus of
/// reference sets, it scores a candidate caption against one of them.
///
/// [`cider_d`] builds one from the evaluated references, as coco-caption does. Self-critical
/// training (`mm_tasks::captioning`) builds one from the **training** references and scores
/// sampled captions against their image's references at every step, as the SCST reference
/// code does with its training-set document frequencies; the reference vectors are computed
/// once here, not per call.
#[derive(Debug, Clone)]
pub struct CiderD {
    words: HashMap<String, u32>,
    df: HashMap<Gram, f64>,
    log_n: f64,
    refs: Vec<Vec<Vector>>,
}

impl CiderD {
    const SIGMA: f64 = 6.0;

    /// A scorer whose document frequencies come from `references` (one set per image) and
    /// which scores candidates against those sets.
    pub fn new(references: &[Vec<String>]) -> Result<Self> {
        check_references(references)?;
        let mut words: HashMap<String, u32> = HashMap::new();
        let counts: Vec<Vec<BTreeMap<Gram, usize>>> = references
            .iter()
            .map(|refs| {
                refs.iter()
                    .map(|r| {
                        let ids: Vec<u32> = r
                            .split_whitespace()
                            .map(|w| {
                                let next = words.len() as u32;
                                *words.entry(w.to_string()).or_insert(next)
                            })
                            .collect();
                        gram_counts(&ids)
                    })
                    .collect()
            })
            .collect();
        let mut df: HashMap<Gram, f64> = HashMap::new();
        for refs in &counts {
            let set: HashSet<&Gram> = refs.iter().flat_map(|r| r.keys()).collect();
            for g in set {
                *df.entry(*g).or_insert(0.0) += 1.0;
            }
        }
        let mut scorer = Self {
            words,
            df,
            log_n: (references.len() as f64).ln(),
            refs: Vec::new(),
        };
        scorer.refs = counts
            .iter()
            .map(|refs| refs.iter().map(|c| scorer.vector(c)).collect())
            .collect();
        Ok(scorer)
    }

    /// Number of reference sets (images).
    pub fn len(&self) -> usize {
        self.refs.len()
    }

    /// Whether there are no reference sets (never true for a built scorer).
    pub fn is_empty(&self) -> bool {
        self.refs.is_empty()
    }

    fn vector(&self, counts: &BTreeMap<Gram, usize>) -> Vector {
        let mut v: [BTreeMap<Gram, f64>; 4] = Default::default();
        let mut norm = [0.0f64; 4];
        let mut len = 0usize;
        for (g, &tf) in counts {
            let d = self.df.get(g).copied().unwrap_or(0.0).max(1.0).ln();
            let n = order(g);
            let w = tf as f64 * (self.log_n - d);
            v[n].insert(*g, w);
            norm[n] += w * w;
            if n == 1 {
                len += tf;
            }
        }
        Vector {
            v,
            norm: norm.map(f64::sqrt),
            len,
        }
    }

    /// CIDEr-D of `candidate` (whitespace-separated tokens) against the references of
    /// `image`, on coco-caption's scale (x10, so a caption equal to every reference of a rare
    /// image scores about 10).
    pub fn score(&self, image: usize, candidate: &str) -> Result<f64> {
        let refs = self
            .refs
            .get(image)
            .ok_or_else(|| Error::InvalidParameter {
                name: "image",
                reason: format!(
                    "{image} is not below the {} reference sets",
                    self.refs.len()
                ),
            })?;
        // words unseen in the references get ids of their own: they match nothing
        let mut unseen: HashMap<&str, u32> = HashMap::new();
        let ids: Vec<u32> = candidate
            .split_whitespace()
            .map(|w| match self.words.get(w) {
                Some(&id) => id,
                None => {
                    let next = (self.words.len() + unseen.len()) as u32;
                    *unseen.entry(w).or_insert(next)
                }
            })
            .collect();
        let h = self.vector(&gram_counts(&ids));
        let mut score = [0.0f64; 4];
        for r in refs {
            let delta = h.len as f64 - r.len as f64;
            let penalty = (-(delta * delta) / (2.0 * Self::SIGMA * Self::SIGMA)).exp();
            for (n, total) in score.iter_mut().enumerate() {
                let mut val: f64 = h.v[n]
                    .iter()
                    .map(|(g, &hw)| {
                        let rw = r.v[n].get(g).copied().unwrap_or(0.0);
                        hw.min(rw) * rw
                    })
                    .sum();
                if h.norm[n] != 0.0 && r.norm[n] != 0.0 {
                    val /= h.norm[n] * r.norm[n];
                }
                *total += val * penalty;
            }
        }
        Ok(score.iter().sum::<f64>() / 4.0 / refs.len() as f64 * 10.0)
    }
}

/// CIDEr-D as coco-caption computes it (its `Cider`, document frequencies from the evaluated
/// references): the corpus mean and per-image scores.
pub fn cider_d(candidates: &[String], references: &[Vec<String>]) -> Result<(f64, Vec<f64>)> {
    check(candidates, references)?;
    let scorer = CiderD::new(references)?;
    let per = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| scorer.score(i, c))
        .collect::<Result<Vec<f64>>>()?;
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

    #[test]
    fn cider_d_scorer_weighs_words_by_their_rarity_in_its_corpus() {
        // every image's references say "a scene with"; only the object differs
        let refs = vec![
            s(&["a scene with a red circle", "a scene with one red circle"]),
            s(&["a scene with a blue square"]),
            s(&["a scene with a green star"]),
        ];
        let sc = CiderD::new(&refs).unwrap();
        assert_eq!(sc.len(), 3);
        // the scorer gives what `cider_d` gives per image
        let cands = s(&["a scene with a red circle", "a blue square", "green"]);
        let (_, per) = cider_d(&cands, &refs).unwrap();
        for (i, c) in cands.iter().enumerate() {
            assert!((sc.score(i, c).unwrap() - per[i]).abs() < 1e-12);
        }
        // n-grams found in every image carry no weight: the shared phrase alone scores 0,
        // the object alone scores well above it
        assert_eq!(sc.score(1, "a scene with a").unwrap(), 0.0);
        assert!(sc.score(1, "blue square").unwrap() > 1.0);
        // a wrong object scores below the right one; unseen words match nothing
        let right = sc.score(0, "a scene with a red circle").unwrap();
        assert!(sc.score(0, "a scene with a blue square").unwrap() < 0.5 * right);
        assert_eq!(sc.score(0, "zebra unicorn").unwrap(), 0.0);
        assert!(
            sc.score(0, "a scene with a red circle zebra").unwrap() < right
                && sc.score(0, "a scene with a red circle zebra").unwrap() > 0.0
        );
        // repeating a word does not raise the score (clipping)
        assert!(
            sc.score(1, "blue square blue square").unwrap() <= sc.score(1, "blue square").unwrap()
        );
        assert!(sc.score(3, "a").is_err());
        assert!(CiderD::new(&[]).is_err());
        assert!(CiderD::new(&[s(&["x"]), vec![]]).is_err());
    }
}
