//! The trainer.
#![allow(unsafe_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use ndarray::{Array2, ArrayView1};
use serde::{Deserialize, Serialize};

use super::sampling::{Alias, Huffman, Lcg, Sigmoid, keep_probability};
use crate::error::{Error, Result};

/// The sentence-end token word2vec.c gives every newline (always id 0).
pub const EOS: &str = "</s>";
const MAX_EXP: f32 = 6.0;
const MAX_SENTENCE: usize = 1000;
/// How much of each output row to prefetch before the dot products (4 cache lines; measured:
/// 10 % faster than none on the benchmark corpus, the same as the whole row).
const PREFETCH_FLOATS: usize = 64;

/// The word-to-id maps of the hot loops (the vocabulary count and a lookup per corpus word and
/// epoch): a fast, fixed-seed hash instead of SipHash; the corpus is the user's own input, so
/// hash flooding is not a concern.
pub(crate) type WordMap<K, V> = HashMap<K, V, foldhash::fast::FixedState>;

/// Hyper-parameters, named as word2vec.c's flags; defaults are its defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Word2VecConfig {
    /// Vector size (`-size`).
    pub size: usize,
    /// Maximum window (`-window`); each position draws its window in `1..=window`.
    pub window: usize,
    /// Negative samples per positive (`-negative`); 0 turns negative sampling off, which
    /// needs `hs`.
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
    /// Hierarchical softmax over word2vec.c's Huffman tree (`-hs 1`), with its own output
    /// matrix; combined with negative sampling when `negative > 0`, as in word2vec.c.
    #[serde(default)]
    pub hs: bool,
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
            hs: false,
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
        if self.negative == 0 && !self.hs {
            return bad(
                "negative",
                "must be positive unless hierarchical softmax (hs) is on",
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

    /// Asks the CPU to start loading row `i` into cache (a hint; no effect elsewhere).
    #[inline]
    fn prefetch(&self, i: usize) {
        #[cfg(target_arch = "x86_64")]
        if i < self.rows {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            for off in (0..self.cols.min(PREFETCH_FLOATS)).step_by(16) {
                // SAFETY: the address is inside row `i` of the live buffer (checked above);
                // a prefetch reads nothing and cannot fault.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(self.ptr.add(i * self.cols + off).cast()) };
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }
}

#[inline(always)]
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

/// `neu1e += g * l2; l2 += g * l1` in one pass (word2vec.c's two loops, same arithmetic).
#[inline(always)]
fn update(neu1e: &mut [f32], l2: &mut [f32], l1: &[f32], g: f32) {
    for ((e, w), x) in neu1e.iter_mut().zip(l2.iter_mut()).zip(l1) {
        let old = *w;
        *e += g * old;
        *w = old + g * x;
    }
}

/// Negative sampling: one positive (`targets[0]`, label 1) and the drawn negatives (label 0)
/// against the input vector `l1`, accumulating the input's gradient in `neu1e` (word2vec.c's
/// inner loop; gradients are clipped, not skipped, beyond |f| > 6). Compiled for AVX2 too and
/// picked at run time.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.2"))]
fn negative_sampling(
    l1: &[f32],
    neu1e: &mut [f32],
    w1: &Shared,
    targets: &[u32],
    alpha: f32,
    sigmoid: &Sigmoid,
) {
    for (d, &t) in targets.iter().enumerate() {
        let label = if d == 0 { 1.0f32 } else { 0.0 };
        let l2 = w1.row(t as usize);
        let f = dot(l1, l2);
        let g = if f > MAX_EXP {
            (label - 1.0) * alpha
        } else if f < -MAX_EXP {
            label * alpha
        } else {
            (label - sigmoid.at(f)) * alpha
        };
        update(neu1e, l2, l1, g);
    }
}

/// Hierarchical softmax along the Huffman path of the target word (`points`: inner nodes, root
/// first; `codes`: the branch taken at each). As in word2vec.c, nodes with |f| >= 6 are skipped.
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.2"))]
fn hierarchical_softmax(
    l1: &[f32],
    neu1e: &mut [f32],
    w1: &Shared,
    codes: &[u8],
    points: &[u32],
    alpha: f32,
    sigmoid: &Sigmoid,
) {
    for (&code, &p) in codes.iter().zip(points) {
        let l2 = w1.row(p as usize);
        let f = dot(l1, l2);
        if !(-MAX_EXP < f && f < MAX_EXP) {
            continue;
        }
        let g = (1.0 - f32::from(code) - sigmoid.at(f)) * alpha;
        update(neu1e, l2, l1, g);
    }
}

/// `y += x`, compiled for AVX2 too (CBOW's sums).
#[multiversion::multiversion(targets("x86_64+avx2+fma", "x86_64+sse4.2"))]
fn add(y: &mut [f32], x: &[f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += xi;
    }
}

/// What one training thread reads: the shared matrices and tables.
struct Model<'a> {
    cfg: &'a Word2VecConfig,
    syn0: &'a Shared,
    /// `W'` for negative sampling (`syn1neg`).
    syn1neg: &'a Shared,
    /// `W'` for hierarchical softmax (`syn1`, one row per inner node).
    syn1: &'a Shared,
    table: &'a Alias,
    huffman: Option<&'a Huffman>,
    sigmoid: &'a Sigmoid,
}

/// One thread's scratch buffers: CBOW's mean context vector and the output side's buffers.
struct Scratch {
    neu1: Vec<f32>,
    out: OutputScratch,
}

/// The input vector's gradient and the drawn output rows of one [`Model::output`] call.
struct OutputScratch {
    neu1e: Vec<f32>,
    targets: Vec<u32>,
}

impl Model<'_> {
    /// The output side for centre word `word` and input vector `l1`: the Huffman path and/or
    /// `negative` draws (a draw equal to `word` is dropped, as word2vec.c does).
    #[inline]
    fn output(&self, word: usize, l1: &[f32], s: &mut OutputScratch, alpha: f32, rng: &mut Lcg) {
        s.neu1e.fill(0.0);
        if let Some(h) = self.huffman {
            let (codes, points) = h.path(word);
            hierarchical_softmax(
                l1,
                &mut s.neu1e,
                self.syn1,
                codes,
                points,
                alpha,
                self.sigmoid,
            );
        }
        if self.cfg.negative > 0 {
            s.targets.clear();
            s.targets.push(word as u32);
            for _ in 0..self.cfg.negative {
                let t = self.table.sample(rng.bits());
                if t != word {
                    s.targets.push(t as u32);
                    self.syn1neg.prefetch(t);
                }
            }
            negative_sampling(
                l1,
                &mut s.neu1e,
                self.syn1neg,
                &s.targets,
                alpha,
                self.sigmoid,
            );
        }
    }

    /// One pass of the dynamic window over a sentence of word ids.
    fn train_sentence(&self, sentence: &[u32], alpha: f32, rng: &mut Lcg, s: &mut Scratch) {
        let window = self.cfg.window;
        for pos in 0..sentence.len() {
            let word = sentence[pos] as usize;
            let b = (rng.next() % window as u64) as usize;
            let lo = pos.saturating_sub(window - b);
            let hi = (pos + window - b + 1).min(sentence.len());
            if self.cfg.cbow {
                s.neu1.fill(0.0);
                let mut cw = 0;
                for c in (lo..hi).filter(|&c| c != pos) {
                    add(&mut s.neu1, self.syn0.row(sentence[c] as usize));
                    cw += 1;
                }
                if cw == 0 {
                    continue;
                }
                s.neu1.iter_mut().for_each(|x| *x /= cw as f32);
                self.output(word, &s.neu1, &mut s.out, alpha, rng);
                for c in (lo..hi).filter(|&c| c != pos) {
                    add(self.syn0.row(sentence[c] as usize), &s.out.neu1e);
                }
            } else {
                for c in (lo..hi).filter(|&c| c != pos) {
                    if c + 1 < hi {
                        self.syn0.prefetch(sentence[c + 1] as usize);
                    }
                    let l1 = self.syn0.row(sentence[c] as usize);
                    self.output(word, l1, &mut s.out, alpha, rng);
                    add(l1, &s.out.neu1e);
                }
            }
        }
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

/// Where each of `threads` training threads starts and stops reading a file of `file_len` bytes:
/// `threads + 1` offsets, the file cut into near-equal byte ranges, each cut moved forward to the
/// next ASCII whitespace byte so that no word (and no UTF-8 character) is split. Every word is
/// then read by exactly one thread; a cut inside a line splits that line into two sentences, as
/// word2vec.c's byte offsets do, which also keeps a corpus of one long line (text8) parallel.
fn split_points(path: &Path, file_len: u64, threads: usize) -> Result<Vec<u64>> {
    let io = |source| Error::Io {
        path: path.to_owned(),
        source,
    };
    let mut bounds = vec![0u64; threads + 1];
    bounds[threads] = file_len;
    let mut r = BufReader::new(std::fs::File::open(path).map_err(io)?);
    for t in 1..threads {
        let mut pos = (file_len * t as u64 / threads as u64).max(bounds[t - 1]);
        r.seek(SeekFrom::Start(pos)).map_err(io)?;
        loop {
            let buf = r.fill_buf().map_err(io)?;
            if buf.is_empty() {
                break;
            }
            match buf.iter().position(u8::is_ascii_whitespace) {
                Some(i) => {
                    pos += i as u64;
                    break;
                }
                None => {
                    let n = buf.len();
                    pos += n as u64;
                    r.consume(n);
                }
            }
        }
        bounds[t] = pos.min(file_len);
    }
    Ok(bounds)
}

impl Word2Vec {
    /// Validates the configuration.
    pub fn new(cfg: &Word2VecConfig) -> Result<Self> {
        cfg.validate()?;
        Ok(Self { cfg: cfg.clone() })
    }

    /// Counts the words of the corpus at `path` (streamed) and keeps those seen at least
    /// `min_count` times, most frequent first, `</s>` at id 0. Words of equal count keep the
    /// order in which the corpus first shows them, as in word2vec.c (a stable sort of its
    /// first-seen table): the word order of the vector files then matches its files, and so does
    /// the top-N vocabulary that analogy evaluation restricts itself to (an alphabetical tie
    /// order changed that set and cost 0.3 points of analogy accuracy on the same vectors).
    /// gensim 4 orders ties the other way round (the word first seen last comes first).
    pub fn vocabulary(&self, path: &Path) -> Result<(Vec<String>, Vec<u64>)> {
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        // word -> (count, position of its first occurrence)
        let mut counts: WordMap<String, (u64, u64)> = WordMap::default();
        let mut total = 0u64;
        for_each_word(BufReader::new(file), path, |w| {
            match counts.get_mut(w) {
                Some((c, _)) => *c += 1,
                None => {
                    counts.insert(w.to_owned(), (1, total));
                }
            }
            total += 1;
        })?;
        if total == 0 {
            return Err(Error::Corpus {
                path: path.to_owned(),
                reason: "the corpus is empty".into(),
            });
        }
        let eos = counts.remove(EOS).map_or(0, |(c, _)| c);
        let mut kept: Vec<(String, (u64, u64))> = counts
            .into_iter()
            .filter(|(_, (c, _))| *c >= self.cfg.min_count)
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
        kept.sort_unstable_by_key(|&(_, (c, first))| (std::cmp::Reverse(c), first));
        let (mut words, mut cnts) = (vec![EOS.to_owned()], vec![eos]);
        for (w, (c, _)) in kept {
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
        if cfg.negative > 0 && cfg.negative >= words.len() - 1 {
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
        let index: WordMap<&str, u32> = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.as_str(), i as u32))
            .collect();
        let (v, size) = (words.len(), cfg.size);
        let huffman = cfg.hs.then(|| Huffman::new(&counts));
        let mut syn1neg = Array2::<f32>::zeros((if cfg.negative > 0 { v } else { 0 }, size));
        let mut syn1 = Array2::<f32>::zeros((if cfg.hs { v - 1 } else { 0 }, size));
        let sigmoid = Sigmoid::new(MAX_EXP);
        let file_len = std::fs::metadata(path)
            .map_err(|source| Error::Io {
                path: path.to_owned(),
                source,
            })?
            .len();
        let bounds = split_points(path, file_len, cfg.threads)?;
        let start_alpha = cfg.alpha.unwrap_or(if cfg.cbow { 0.05 } else { 0.025 });
        let total = cfg.iter as u64 * train_words;
        let done = AtomicU64::new(0);
        let alpha_bits = AtomicU64::new(u64::from(start_alpha.to_bits()));
        let (w0, w1neg, w1) = (
            Shared::new(&mut syn0),
            Shared::new(&mut syn1neg),
            Shared::new(&mut syn1),
        );
        let model = Model {
            cfg,
            syn0: &w0,
            syn1neg: &w1neg,
            syn1: &w1,
            table: &table,
            huffman: huffman.as_ref(),
            sigmoid: &sigmoid,
        };
        let progress = std::sync::Mutex::new(progress);
        let results: Vec<Result<()>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..cfg.threads)
                .map(|id| {
                    let (model, keep, index, done, alpha_bits, progress, bounds) = (
                        &model,
                        &keep,
                        &index,
                        &done,
                        &alpha_bits,
                        &progress,
                        &bounds,
                    );
                    s.spawn(move || -> Result<()> {
                        let (lo, hi) = (bounds[id], bounds[id + 1]);
                        let mut rng = Lcg(cfg.seed.wrapping_add(id as u64));
                        let mut scratch = Scratch {
                            neu1: vec![0.0; size],
                            out: OutputScratch {
                                neu1e: vec![0.0; size],
                                targets: Vec::with_capacity(cfg.negative + 1),
                            },
                        };
                        let io = |source| Error::Io {
                            path: path.to_owned(),
                            source,
                        };
                        for _ in 0..cfg.iter {
                            let mut f = std::fs::File::open(path).map_err(io)?;
                            f.seek(SeekFrom::Start(lo)).map_err(io)?;
                            let mut r = BufReader::with_capacity(1 << 16, f.take(hi - lo));
                            let mut sentence: Vec<u32> = Vec::with_capacity(MAX_SENTENCE);
                            let mut local = 0u64;
                            let mut train = |sentence: &mut Vec<u32>, rng: &mut Lcg| {
                                let alpha =
                                    f32::from_bits(alpha_bits.load(Ordering::Relaxed) as u32);
                                model.train_sentence(sentence, alpha, rng, &mut scratch);
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
                                    train(&mut sentence, &mut rng);
                                    return;
                                }
                                let k = keep[id as usize];
                                if k < 1.0 && k < (rng.next() & 0xFFFF) as f64 / 65536.0 {
                                    return;
                                }
                                sentence.push(id);
                                if sentence.len() >= MAX_SENTENCE {
                                    train(&mut sentence, &mut rng);
                                }
                            })?;
                            train(&mut sentence, &mut rng);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The words of `text[lo..hi]`, as a training thread reads its byte range.
    fn words_in(text: &str, lo: u64, hi: u64) -> Vec<&str> {
        text[lo as usize..hi as usize]
            .split_ascii_whitespace()
            .collect()
    }

    /// What each thread trains on, for a corpus of one long line (as text8 is) with multi-byte
    /// words of unequal length: the ranges partition the file at whitespace, so together the
    /// threads read every word once and in order, none cut in half, and each gets its share
    /// of the words (the work, and so the speed-up, is split evenly).
    #[test]
    fn threads_split_a_one_line_corpus_into_even_whole_word_ranges() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("one-line.txt");
        let vocab = [
            "a",
            "the",
            "straße",
            "東京",
            "anticonstitutionnellement",
            "zoë",
            "of",
        ];
        let all: Vec<&str> = (0..50_000).map(|i| vocab[(i * 7 + i / 5) % 7]).collect();
        let text = all.join(" ");
        std::fs::write(&path, &text).unwrap();
        let len = text.len() as u64;
        for threads in 1..=8 {
            let b = split_points(&path, len, threads).unwrap();
            assert_eq!((b[0], b[threads]), (0, len));
            let mut joined = Vec::new();
            for t in 0..threads {
                assert!(b[t] <= b[t + 1]);
                // a cut sits on a space, never inside a word or a UTF-8 character
                assert!(
                    t == 0 || text.as_bytes()[b[t] as usize] == b' ',
                    "{threads}: {b:?}"
                );
                let mine = words_in(&text, b[t], b[t + 1]);
                let share = mine.len() as f64 / all.len() as f64;
                assert!(
                    (share - 1.0 / threads as f64).abs() < 0.01,
                    "{threads} threads: thread {t} reads {} of {} words",
                    mine.len(),
                    all.len()
                );
                joined.extend(mine);
            }
            assert_eq!(joined, all, "{threads} threads");
        }
    }
}
