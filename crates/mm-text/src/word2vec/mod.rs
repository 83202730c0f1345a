//! Skip-gram (and CBOW) word2vec with negative sampling and/or hierarchical softmax, faithful to
//! Mikolov's C implementation (word2vec.c): the input matrix `W` (`syn0`) and output matrices
//! `W'` (`syn1neg` for negative sampling, `syn1` over the Huffman tree's inner nodes for
//! hierarchical softmax), negatives drawn from the unigram distribution raised to 0.75,
//! frequent-word subsampling with the C tool's formula, a dynamic window, a learning rate
//! decaying linearly with the words processed, the C tool's 1000-entry sigmoid table, several
//! epochs, and lock-free (Hogwild) threads over parts of the corpus.
//!
//! Differences from word2vec.c, on purpose: every thread runs all `iter` epochs (the C tool's
//! `eof` flag is never reset, so its last thread stops after one epoch); negatives come from an
//! exact alias table instead of a 1e8-entry table. The inner products and updates are compiled
//! for AVX2 as well and chosen at run time, so results differ in the last bits between machines
//! (they are identical run to run on one machine with one thread).

pub mod eval;
mod io;
mod sampling;
#[cfg(feature = "tch")]
pub mod tensor;
mod train;

pub use io::{
    MAX_VECTOR_SIZE, VectorFormat, read_safetensors, read_safetensors_from, read_vectors,
    read_vectors_from, write_safetensors, write_vectors,
};
pub use train::{EOS, Embeddings, Progress, Word2Vec, Word2VecConfig};
