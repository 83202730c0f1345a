//! Skip-gram (and CBOW) word2vec with negative sampling, faithful to Mikolov's C implementation
//! (word2vec.c): the input matrix `W` (`syn0`) and output matrix `W'` (`syn1neg`), negatives
//! drawn from the unigram distribution raised to 0.75, frequent-word subsampling with the C
//! tool's formula, a dynamic window, a learning rate decaying linearly with the words processed,
//! several epochs, and lock-free (Hogwild) threads over parts of the corpus.
//!
//! Differences from word2vec.c, on purpose: every thread runs all `iter` epochs (the C tool's
//! `eof` flag is never reset, so its last thread stops after one epoch); negatives come from an
//! exact alias table instead of a 1e8-entry table; `exp` is computed, not tabulated, with the same
//! clipping at |f| > 6.

pub mod eval;
mod io;
mod sampling;
#[cfg(feature = "tch")]
pub mod tensor;
mod train;

pub use io::{VectorFormat, read_safetensors, read_vectors, write_safetensors, write_vectors};
pub use train::{EOS, Embeddings, Progress, Word2Vec, Word2VecConfig};
