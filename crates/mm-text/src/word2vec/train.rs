//! The trainer.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{Array2, ArrayView1};
use serde::{Deserialize, Serialize};

use super::sampling::{Alias, Lcg, keep_probability};
use crate::error::{Error, Result};

/// The sentence-end token word2vec.c gives every newline (always id 0).
pub const EOS: &str = "</s>";
const MAX_EXP: f32 = 6.0;
const MAX_SENTENCE: usize = 1000;

/// Hyper-parameters, named as word2vec.c's flags; defaults are its defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Word2VecConfig {
    /// Vector size (`-size`).
    pub size: usize,
    /// Maximum window (`-window`); each position draws its window in `1..=window`.
    pub window: usize,
    /// Negative samples per positive (`-negative`).
    pub negative: usize,
    /// Subsampling threshold (`-sample`); 0 disables it.
    pub sample: f64,
    /// Words seen fewer times are dropped (`-min-count`).
    pub min_count: u64,
    /// Epochs (`-iter`).
    pub iter: usize,
    /// Starting learning rate (`-alpha`); `None`: 0.025 for skip-gram, 0.05 for CBOW.
    pub alpha: Option<f32>,
    /// Threads (`-threads`).
    pub threads: usize,
    /// CBOW instead of skip-gram (`-cbow 1`).
    pub cbow: bool,
    /// Seed; with one thread the result is deterministic.
    pub seed: u64,
}

impl Default for Word2VecConfig {
    fn default() -> Self {
        Self {
            size: 100,
            window: 5,
            negative: 5,
            sample: 1e-3,
            min_count: 5,
            iter: 5,
            alpha: None,
            threads: 1,
            cbow: false,
            seed: 1,
        }
    }
}

impl Word2VecConfig {
    fn validate(&self) -> Result<()> {
        let bad = |name, reason: &str| {
            Err(Error::InvalidParameter {
                name,
                reason: reason.into(),
            })
        };
        if self.size == 0 || self.size > 10_000 {
            return bad("size", "must be in 1..=10000");
        }
        if self.window == 0 {
            return bad("window", "must be positive");
        }
        if self.negative == 0 {
            return bad(
                "negative",
                "must be positive (negative sampling is the only objective)",
            );
        }
        if self.iter == 0 || self.threads == 0 {
            return bad("iter/threads", "must be positive");
        }
        if !(self.sample >= 0.0 && self.sample.is_finite()) {
            return bad("sample", "must be finite and non-negative");
        }
        if let Some(a) = self.alpha
            && !(a > 0.0 && a.is_finite())
        {
            return bad("alpha", "must be positive and finite");
        }
        Ok(())
    }
}

/// Trained vectors: the rows of `W` (`syn0`), words by decreasing count, `</s>` first.
#[derive(Debug, Clone, PartialEq)]
pub struct Embeddings {
    /// Words by id.
    pub words: Vec<String>,
    /// Training counts by id (0 when read from a file).
    pub counts: Vec<u64>,
    /// `[words, size]`.
    pub vectors: Array2<f32>,
    index: HashMap<String, usize>,
}

impl Embeddings {
    /// Builds from parts (words must be unique).
    pub fn new(words: Vec<String>, counts: Vec<u64>, vectors: Array2<f32>) -> Result<Self> {
        if words.len() != vectors.nrows() || counts.len() != words.len() {
            return Err(Error::InvalidParameter {
                name: "vectors",
                reason: format!(
                    "{} words, {} counts, {} rows",
                    words.len(),
                    counts.len(),
                    vectors.nrows()
                ),
            });
        }
        let mut index = HashMap::with_capacity(words.len());
        for (i, w) in words.iter().enumerate() {
            if index.insert(w.clone(), i).is_some() {
                return Err(Error::InvalidParameter {
                    name: "words",
                    reason: format!("`{w}` appears twice"),
                });
            }
        }
        Ok(Self {
            words,
            counts,
            vectors,
            index,
        })
    }

    /// The id of `word`.
    pub fn id(&self, word: &str) -> Option<usize> {
        self.index.get(word).copied()
    }

    /// The vector of `word`.
    pub fn get(&self, word: &str) -> Option<ArrayView1<'_, f32>> {
        self.id(word).map(|i| self.vectors.row(i))
    }

    /// Vector size.
    pub fn size(&self) -> usize {
        self.vectors.ncols()
    }

    /// Rows scaled to unit length (zero rows stay zero).
    pub fn unit(&self) -> Array2<f32> {
        let mut u = self.vectors.clone();
        for mut r in u.rows_mut() {
            let n = r.dot(&r).sqrt();
            if n > 0.0 {
                r.mapv_inplace(|v| v / n);
            }
        }
        u
    }

    /// The `k` words most similar (cosine) to `word`, excluding it and `</s>`.
    pub fn most_similar(&self, word: &str, k: usize) -> Option<Vec<(String, f32)>> {
        let i = self.id(word)?;
        let u = self.unit();
        let sims = u.dot(&u.row(i));
        let mut order: Vec<usize> = (0..self.words.len())
            .filter(|&j| j != i && self.words[j] != EOS)
            .collect();
        order.sort_by(|&a, &b| sims[b].total_cmp(&sims[a]));
        Some(
            order
                .into_iter()
                .take(k)
                .map(|j| (self.words[j].clone(), sims[j]))
                .collect(),
        )
    }
}

/// A matrix shared by the Hogwild threads.
///
/// Threads read and write rows without locks, as word2vec.c (and gensim, and every fast
/// word2vec) does: concurrent updates to the same row may interleave, which SGD tolerates. All
/// access goes through [`Shared::row`], whose pointer arithmetic stays inside the buffer.
struct Shared {
    ptr: *mut f32,
    cols: usize,
    rows: usize,
}

// SAFETY: the buffer outlives the threads (scoped), and racy element updates are the
// documented Hogwild design; no thread frees or resizes the buffer.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    fn new(m: &mut Array2<f32>) -> Self {
        Self {
            ptr: m.as_mut_ptr(),
            cols: m.ncols(),
            rows: m.nrows(),
        }
    }

    #[inline]
    #[allow(clippy::mut_from_ref)]
    fn row(&self, i: usize) -> &mut [f32] {
        assert!(i < self.rows, "row {i} of {}", self.rows);
        // SAFETY: in bounds (checked above); the matrix is contiguous (created in standard
        // layout) and alive for the whole training scope.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.add(i * self.cols), self.cols) }
    }
}

#[inline]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for k in 0..8 {
            acc[k] += x[k] * y[k];
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[inline]
fn axpy(y: &mut [f32], a: f32, x: &[f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

/// What the trainer reports as it goes.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    /// Words processed so far (all threads, all epochs).
    pub words: u64,
    /// Words to process in total.
    pub total: u64,
    /// The current learning rate.
    pub alpha: f32,
}

/// What [`Word2Vec::prepare`] gives both trainers.
pub(crate) struct Prepared {
    pub(crate) words: Vec<String>,
    pub(crate) counts: Vec<u64>,
    pub(crate) train_words: u64,
    pub(crate) syn0: Array2<f32>,
    pub(crate) table: Alias,
    pub(crate) keep: Vec<f64>,
}

/// A configured trainer.
#[derive(Debug, Clone)]
pub struct Word2Vec {
    cfg: Word2VecConfig,
}

/// Reads whitespace-separated words line by line (a newline is `</s>`), failing on invalid
/// UTF-8 with the line number.
pub(crate) fn for_each_word<R: BufRead>(
    mut r: R,
    path: &Path,
    mut f: impl FnMut(&str),
) -> Result<()> {
    let mut buf = Vec::new();
    let mut line = 0usize;
    loop {
        buf.clear();
        let n = r.read_until(b'\n', &mut buf).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        if n == 0 {
            return Ok(());
        }
        line += 1;
        let text = std::str::from_utf8(&buf).map_err(|e| Error::Corpus {
            path: path.to_owned(),
            reason: format!("line {line} is not UTF-8 ({e})"),
        })?;
        for w in text.split_ascii_whitespace() {
            f(w);
        }
        if buf.last() == Some(&b'\n') {
            f(EOS);
        }
    }
}

impl Word2Vec {
    /// Validates the configuration.
    pub fn new(cfg: &Word2VecConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self { cfg: cfg.clone() })
    }

    /// Counts the words of the corpus at `path` (streamed) and keeps those seen at least
    /// `min_count` times, most frequent first, `</s>` at id 0.
    pub fn vocabulary(&self, path: &Path) -> Result<(Vec<String>, Vec<u64>)> {
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let mut counts: HashMap<String, u64> = HashMap::new();
        let mut total = 0u64;
        for_each_word(BufReader::new(file), path, |w| {
            total += 1;
            match counts.get_mut(w) {
                Some(c) => *c += 1,
                None => {
                    counts.insert(w.to_owned(), 1);
                }
            }
        })?;
        if total == 0 {
            return Err(Error::Corpus {
                path: path.to_owned(),
                reason: "the corpus is empty".into(),
            });
        }
        let eos = counts.remove(EOS).unwrap_or(0);
        let mut kept: Vec<(String, u64)> = counts
            .into_iter()
            .filter(|(_, c)| *c >= self.cfg.min_count)
            .collect();
        if kept.is_empty() {
            return Err(Error::Corpus {
                path: path.to_owned(),
                reason: format!(
                    "no word occurs at least {} times (min_count)",
                    self.cfg.min_count
                ),
            });
        }
        kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let (mut words, mut cnts) = (vec![EOS.to_owned()], vec![eos]);
        for (w, c) in kept {
            words.push(w);
            cnts.push(c);
        }
        Ok((words, cnts))
    }

    /// Everything both trainers start from: the vocabulary of `path`, the initial `W`, the
    /// negative-sampling table and the subsampling probabilities.
    pub(crate) fn prepare(&self, path: &Path) -> Result<Prepared> {
        let cfg = &self.cfg;
        let (words, counts) = self.vocabulary(path)?;
        if cfg.negative >= words.len() - 1 {
            return Err(Error::InvalidParameter {
                name: "negative",
                reason: format!(
                    "{} negatives need more than {} words in the vocabulary",
                    cfg.negative,
                    words.len() - 1
                ),
            });
        }
        let train_words: u64 = counts.iter().sum();
        let (v, size) = (words.len(), cfg.size);
        // syn0: uniform in [-0.5, 0.5) / size from word2vec.c's generator
        let mut rng = Lcg(cfg.seed);
        let syn0 = Array2::from_shape_fn((v, size), |_| {
            ((rng.next() & 0xFFFF) as f32 / 65536.0 - 0.5) / size as f32
        });
        // negatives: unigram^0.75 over real words (id 0, </s>, is never drawn)
        let weights: Vec<f64> = counts
            .iter()
            .enumerate()
            .map(|(i, &c)| if i == 0 { 0.0 } else { (c as f64).powf(0.75) })
            .collect();
        let keep = counts
            .iter()
            .map(|&c| keep_probability(c, train_words, cfg.sample))
            .collect();
        Ok(Prepared {
            words,
            counts,
            train_words,
            syn0,
            table: Alias::new(&weights),
            keep,
        })
    }

    /// Trains on the corpus at `path`, streamed (it need not fit in memory).
    pub fn train_file(
        &self,
        path: &Path,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Embeddings> {
        let cfg = &self.cfg;
        let Prepared {
            words,
            counts,
            train_words,
            mut syn0,
            table,
            keep,
        } = self.prepare(path)?;
        let index: HashMap<&str, u32> = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.as_str(), i as u32))
            .collect();
        let (v, size) = (words.len(), cfg.size);
        let mut syn1 = Array2::<f32>::zeros((v, size));
        let file_len = std::fs::metadata(path)
            .map_err(|source| Error::Io {
                path: path.to_owned(),
                source,
            })?
            .len();
        let start_alpha = cfg.alpha.unwrap_or(if cfg.cbow { 0.05 } else { 0.025 });
        let total = cfg.iter as u64 * train_words;
        let done = AtomicU64::new(0);
        let alpha_bits = AtomicU64::new(u64::from(start_alpha.to_bits()));
        let (w0, w1) = (Shared::new(&mut syn0), Shared::new(&mut syn1));
        let progress = std::sync::Mutex::new(progress);
        let results: Vec<Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..cfg.threads)
                .map(|id| {
                    let (w0, w1, table, keep, index, done, alpha_bits, progress) = (
                        &w0,
                        &w1,
                        &table,
                        &keep,
                        &index,
                        &done,
                        &alpha_bits,
                        &progress,
                    );
                    s.spawn(move || -> Result<()> {
                        let lo = file_len * id as u64 / cfg.threads as u64;
                        let hi = file_len * (id as u64 + 1) / cfg.threads as u64;
                        let mut rng = Lcg(cfg.seed.wrapping_add(id as u64));
                        let mut neu1 = vec![0.0f32; size];
                        let mut neu1e = vec![0.0f32; size];
                        for _ in 0..cfg.iter {
                            let mut f = std::fs::File::open(path).map_err(|source| Error::Io {
                                path: path.to_owned(),
                                source,
                            })?;
                            f.seek(SeekFrom::Start(lo)).map_err(|source| Error::Io {
                                path: path.to_owned(),
                                source,
                            })?;
                            let mut r = BufReader::new(f.take(hi - lo));
                            if id > 0 {
                                // start at the next line: the previous thread reads the rest of it
                                let mut skip = Vec::new();
                                r.read_until(b'\n', &mut skip).map_err(|source| Error::Io {
                                    path: path.to_owned(),
                                    source,
                                })?;
                            }
                            let mut sentence: Vec<u32> = Vec::with_capacity(MAX_SENTENCE);
                            let mut local = 0u64;
                            let mut train_sentence = |sentence: &mut Vec<u32>, rng: &mut Lcg| {
                                let alpha =
                                    f32::from_bits(alpha_bits.load(Ordering::Relaxed) as u32);
                                for pos in 0..sentence.len() {
                                    let word = sentence[pos] as usize;
                                    let b = (rng.next() % cfg.window as u64) as usize;
                                    let lo = pos.saturating_sub(cfg.window - b);
                                    let hi = (pos + cfg.window - b + 1).min(sentence.len());
                                    if cfg.cbow {
                                        neu1.iter_mut().for_each(|x| *x = 0.0);
                                        neu1e.iter_mut().for_each(|x| *x = 0.0);
                                        let mut cw = 0;
                                        for c in (lo..hi).filter(|&c| c != pos) {
                                            axpy(&mut neu1, 1.0, w0.row(sentence[c] as usize));
                                            cw += 1;
                                        }
                                        if cw == 0 {
                                            continue;
                                        }
                                        neu1.iter_mut().for_each(|x| *x /= cw as f32);
                                        negatives(
                                            word,
                                            &neu1,
                                            &mut neu1e,
                                            w1,
                                            table,
                                            cfg.negative,
                                            alpha,
                                            rng,
                                        );
                                        for c in (lo..hi).filter(|&c| c != pos) {
                                            axpy(w0.row(sentence[c] as usize), 1.0, &neu1e);
                                        }
                                    } else {
                                        for c in (lo..hi).filter(|&c| c != pos) {
                                            let l1 = w0.row(sentence[c] as usize);
                                            neu1e.iter_mut().for_each(|x| *x = 0.0);
                                            negatives(
                                                word,
                                                l1,
                                                &mut neu1e,
                                                w1,
                                                table,
                                                cfg.negative,
                                                alpha,
                                                rng,
                                            );
                                            axpy(l1, 1.0, &neu1e);
                                        }
                                    }
                                }
                                sentence.clear();
                            };
                            let flush = |local: &mut u64| {
                                let d = done.fetch_add(*local, Ordering::Relaxed) + *local;
                                *local = 0;
                                let a = (start_alpha * (1.0 - d as f32 / (total as f32 + 1.0)))
                                    .max(start_alpha * 1e-4);
                                alpha_bits.store(u64::from(a.to_bits()), Ordering::Relaxed);
                                if let Ok(mut p) = progress.lock() {
                                    p(Progress {
                                        words: d,
                                        total,
                                        alpha: a,
                                    });
                                }
                            };
                            for_each_word(&mut r, path, |w| {
                                let Some(&id) = index.get(w) else { return };
                                local += 1;
                                if local >= 10_000 {
                                    flush(&mut local);
                                }
                                if id == 0 {
                                    train_sentence(&mut sentence, &mut rng);
                                    return;
                                }
                                let k = keep[id as usize];
                                if k < 1.0 && k < (rng.next() & 0xFFFF) as f64 / 65536.0 {
                                    return;
                                }
                                sentence.push(id);
                                if sentence.len() >= MAX_SENTENCE {
                                    train_sentence(&mut sentence, &mut rng);
                                }
                            })?;
                            train_sentence(&mut sentence, &mut rng);
                            flush(&mut local);
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(Error::InvalidParameter {
                            name: "threads",
                            reason: "a training thread panicked".into(),
                        })
                    })
                })
                .collect()
        });
        results.into_iter().collect::<Result<Vec<()>>>()?;
        Embeddings::new(words, counts, syn0)
    }
}

/// One positive and `negative` negative updates of `W'` against the input vector `l1`,
/// accumulating the input's gradient in `neu1e` (word2vec.c's inner loop).
#[allow(clippy::too_many_arguments)]
#[inline]
fn negatives(
    word: usize,
    l1: &[f32],
    neu1e: &mut [f32],
    w1: &Shared,
    table: &Alias,
    negative: usize,
    alpha: f32,
    rng: &mut Lcg,
) {
    for d in 0..=negative {
        let (target, label) = if d == 0 {
            (word, 1.0f32)
        } else {
            let t = table.sample(rng.bits());
            if t == word {
                continue;
            }
            (t, 0.0)
        };
        let l2 = w1.row(target);
        let f = dot(l1, l2);
        let g = if f > MAX_EXP {
            (label - 1.0) * alpha
        } else if f < -MAX_EXP {
            label * alpha
        } else {
            (label - 1.0 / (1.0 + (-f).exp())) * alpha
        };
        axpy(neu1e, g, l2);
        axpy(l2, g, l1);
    }
}
