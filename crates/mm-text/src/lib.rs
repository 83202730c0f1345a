//! # mm-text: text as data
//!
//! Unicode-aware word tokenization with byte offsets, and vocabularies with counts, special
//! tokens (`<pad>`, `<unk>`, `<start>`, `<end>`), encoding, decoding and atomic save/load.
//!
//! ```
//! use mm_text::{Tokenizer, Vocab, VocabConfig};
//! let tok = Tokenizer::default();
//! let captions = ["A red circle.", "A blue square left of a red circle."];
//! let sentences: Vec<Vec<String>> = captions.iter().map(|c| tok.words(c)).collect();
//! let vocab = Vocab::build(&sentences, &VocabConfig::default())?;
//! assert_eq!(vocab.word(4)?, "a"); // most frequent word right after the 4 specials
//! # Ok::<(), mm_text::Error>(())
//! ```
//!
//! ## Conventions
//! Special tokens take the first ids; ordinary words follow by decreasing count, ties
//! alphabetical.
//!
//! [`word2vec`]: skip-gram and CBOW with negative sampling and/or hierarchical softmax,
//! faithful to word2vec.c (its defaults, subsampling formula, dynamic window, Huffman tree,
//! sigmoid table, linear learning-rate decay, lock-free threads over a streamed corpus),
//! word2vec's text and binary vector files, analogy (3CosAdd, optionally limited to a shared
//! word list) and word-similarity (Spearman) evaluation.
//!
//! [`subword`]: byte-level BPE and WordPiece trained on our own corpus through Hugging Face's
//! `tokenizers`, saved as `tokenizer.json`.
//!
//! ## Feature flags
//! None yet; a `tch` trainer is planned.

mod error;
pub mod metrics;
pub mod subword;
mod tokenize;
mod vocab;
pub mod word2vec;

pub use error::{Error, Result};
pub use tokenize::{CharPolicy, Token, Tokenizer, TokenizerConfig};
pub use vocab::{END, PAD, START, UNK, Vocab, VocabConfig};
