//! Evaluation: analogies in the `questions-words.txt` format and word similarity in the
//! WordSim353 format.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::train::{EOS, Embeddings};
use crate::error::{Error, Result};

/// Analogy accuracy, per section and in total.
#[derive(Debug, Clone, PartialEq)]
pub struct AnalogyReport {
    /// `(section, correct, answered)` in file order.
    pub sections: Vec<(String, usize, usize)>,
    /// Questions answered (all four words in the restricted vocabulary).
    pub answered: usize,
    /// Questions in the file.
    pub total: usize,
    /// Correct answers.
    pub correct: usize,
    /// Lines that are neither blank, nor a `: section`, nor four words (gensim skips them
    /// too, logging each).
    pub skipped: usize,
}

impl AnalogyReport {
    /// Accuracy over the answered questions.
    pub fn accuracy(&self) -> f64 {
        if self.answered == 0 {
            0.0
        } else {
            self.correct as f64 / self.answered as f64
        }
    }
}

/// 3CosAdd analogies (`a : b :: c : ?`, the answer maximises `cos(x, b - a + c)` over the
/// `restrict` most frequent words, excluding `a`, `b`, `c`), case-insensitive, as word2vec's
/// `compute-accuracy` and gensim do. Questions with a word outside the restricted vocabulary are
/// skipped (counted in `total`, not in `answered`).
pub fn analogies(emb: &Embeddings, text: &str, restrict: usize) -> AnalogyReport {
    analogies_within(emb, text, restrict, None)
}

/// [`analogies`] with the vocabulary further limited to the (lower-case) words of `within`,
/// when given. Models whose top `restrict` words differ (ties in counts are ordered differently
/// by different tools) answer different questions; scoring each with the same `within` (the
/// words every compared model has in its top `restrict`) makes them answer the same questions
/// with the same candidates.
pub fn analogies_within(
    emb: &Embeddings,
    text: &str,
    restrict: usize,
    within: Option<&BTreeSet<String>>,
) -> AnalogyReport {
    let u = emb.unit();
    let lower: BTreeMap<String, usize> = emb
        .words
        .iter()
        .enumerate()
        .filter(|(_, w)| *w != EOS)
        .take(restrict)
        .map(|(i, w)| (i, w.to_lowercase()))
        .filter(|(_, w)| within.is_none_or(|set| set.contains(w)))
        .fold(BTreeMap::new(), |mut m, (i, w)| {
            m.entry(w).or_insert(i);
            m
        });
    let allowed: Vec<usize> = lower.values().copied().collect();
    let mut rep = AnalogyReport {
        sections: Vec::new(),
        answered: 0,
        total: 0,
        correct: 0,
        skipped: 0,
    };
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix(':') {
            rep.sections.push((name.trim().to_owned(), 0, 0));
            continue;
        }
        let q: Vec<String> = line.split_whitespace().map(str::to_lowercase).collect();
        if q.len() != 4 {
            rep.skipped += usize::from(!q.is_empty());
            continue;
        }
        rep.total += 1;
        let ids: Option<Vec<usize>> = q.iter().map(|w| lower.get(w).copied()).collect();
        let Some(ids) = ids else { continue };
        let target = &u.row(ids[1]) - &u.row(ids[0]) + u.row(ids[2]);
        let best = allowed
            .iter()
            .filter(|&&j| j != ids[0] && j != ids[1] && j != ids[2])
            .max_by(|&&a, &&b| u.row(a).dot(&target).total_cmp(&u.row(b).dot(&target)));
        if rep.sections.is_empty() {
            rep.sections.push((String::new(), 0, 0));
        }
        let sec = rep.sections.last_mut();
        rep.answered += 1;
        let right = best == Some(&ids[3]);
        if let Some(s) = sec {
            s.2 += 1;
            s.1 += usize::from(right);
        }
        rep.correct += usize::from(right);
    }
    rep
}

/// Reads an analogy file.
pub fn read_text(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// Spearman's rho between the cosine similarities and the human scores of the word pairs of a
/// WordSim353-style file (`word1 word2 score` per line, tab- or space-separated; lines starting
/// with `#` and lines whose score does not parse are skipped), over the pairs in the vocabulary.
/// Returns `(rho, pairs used, pairs in the file)`.
pub fn similarity(emb: &Embeddings, text: &str) -> (f64, usize, usize) {
    let (mut gold, mut ours, mut total) = (Vec::new(), Vec::new(), 0);
    let find = |w: &str| emb.id(w).or_else(|| emb.id(&w.to_lowercase()));
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let p: Vec<&str> = line.split(['\t', ' ']).filter(|s| !s.is_empty()).collect();
        let (Some(a), Some(b), Some(Ok(score))) =
            (p.first(), p.get(1), p.get(2).map(|s| s.parse::<f64>()))
        else {
            continue;
        };
        total += 1;
        if let (Some(i), Some(j)) = (find(a), find(b)) {
            let (x, y) = (emb.vectors.row(i), emb.vectors.row(j));
            let c = x.dot(&y) / (x.dot(&x).sqrt() * y.dot(&y).sqrt()).max(1e-12);
            gold.push(score);
            ours.push(f64::from(c));
        }
    }
    (spearman(&gold, &ours), gold.len(), total)
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            r[idx[k]] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman's rank correlation (ties get average ranks); 0 for fewer than two points.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    if n < 2 {
        return 0.0;
    }
    let (ra, rb) = (ranks(&a[..n]), ranks(&b[..n]));
    let m = (n as f64 + 1.0) / 2.0;
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - m) * (y - m)).sum();
    let va: f64 = ra.iter().map(|x| (x - m).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - m).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}
