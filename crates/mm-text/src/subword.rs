//! Sub-word tokenization (BPE or WordPiece) trained on our own corpus with Hugging Face's
//! `tokenizers`, for tasks that want sub-word units.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokenizers::decoders::DecoderWrapper;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::bpe::{BPE, BpeTrainerBuilder};
use tokenizers::models::wordpiece::{WordPiece, WordPieceTrainerBuilder};
use tokenizers::models::{ModelWrapper, TrainerWrapper};
use tokenizers::normalizers::{NormalizerWrapper, unicode::NFKC};
use tokenizers::pre_tokenizers::PreTokenizerWrapper;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::{AddedToken, Tokenizer, TokenizerBuilder};

use crate::error::{Error, Result};
use crate::vocab::{END, PAD, START, UNK};

/// Which sub-word model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubwordKind {
    /// Byte-level BPE: every string encodes, and decoding gives it back exactly.
    Bpe,
    /// WordPiece (BERT's): `##` continuation pieces, unknown characters become `<unk>`.
    WordPiece,
}

/// Training settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubwordConfig {
    /// The model.
    pub kind: SubwordKind,
    /// Target vocabulary size (special tokens included).
    pub vocab_size: usize,
    /// Merges or pieces seen fewer times are not learned.
    pub min_frequency: u64,
}

impl Default for SubwordConfig {
    fn default() -> Self {
        Self {
            kind: SubwordKind::Bpe,
            vocab_size: 8000,
            min_frequency: 2,
        }
    }
}

fn tk_err(context: &str) -> impl Fn(tokenizers::Error) -> Error + '_ {
    move |e| Error::Subword {
        context: context.to_owned(),
        reason: e.to_string(),
    }
}

/// A trained sub-word tokenizer; the special tokens `<pad> <unk> <start> <end>` take ids 0-3.
#[derive(Debug, Clone)]
pub struct Subword {
    tk: Tokenizer,
}

impl Subword {
    /// Trains on text files (one or more sentences per line).
    pub fn train(files: &[PathBuf], cfg: &SubwordConfig) -> Result<Self> {
        if cfg.vocab_size < 8 {
            return Err(Error::InvalidParameter {
                name: "vocab_size",
                reason: "must be at least 8".into(),
            });
        }
        for f in files {
            if !f.is_file() {
                return Err(Error::Io {
                    path: f.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
                });
            }
        }
        let specials: Vec<AddedToken> = [PAD, UNK, START, END]
            .iter()
            .map(|s| AddedToken::from(s.to_string(), true))
            .collect();
        let (model, mut trainer, pre, dec): (
            ModelWrapper,
            TrainerWrapper,
            PreTokenizerWrapper,
            DecoderWrapper,
        ) = match cfg.kind {
            SubwordKind::Bpe => (
                BPE::default().into(),
                BpeTrainerBuilder::new()
                    .show_progress(false)
                    .vocab_size(cfg.vocab_size)
                    .min_frequency(cfg.min_frequency)
                    .special_tokens(specials)
                    .initial_alphabet(ByteLevel::alphabet().into_iter().collect())
                    .build()
                    .into(),
                // no added prefix space, so that decode(encode(s)) == s
                ByteLevel::new(false, true, true).into(),
                ByteLevelDecoder::default().into(),
            ),
            SubwordKind::WordPiece => (
                WordPiece::builder()
                    .unk_token(UNK.to_owned())
                    .build()
                    .map_err(tk_err("wordpiece"))?
                    .into(),
                WordPieceTrainerBuilder::new()
                    .show_progress(false)
                    .vocab_size(cfg.vocab_size)
                    .min_frequency(cfg.min_frequency)
                    .special_tokens(specials)
                    .build()
                    .into(),
                BertPreTokenizer.into(),
                WordPieceDecoder::default().into(),
            ),
        };
        let mut tk: Tokenizer = TokenizerBuilder::new()
            .with_model(model)
            .with_normalizer(Some(NormalizerWrapper::from(NFKC)))
            .with_pre_tokenizer(Some(pre))
            .with_post_processor(None::<tokenizers::processors::PostProcessorWrapper>)
            .with_decoder(Some(dec))
            .build()
            .map_err(tk_err("building"))?
            .into();
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        tk.train_from_files(&mut trainer, names)
            .map_err(tk_err("training"))?;
        Ok(Self { tk })
    }

    /// Token ids of `text`.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        Ok(self
            .tk
            .encode(text, false)
            .map_err(tk_err("encoding"))?
            .get_ids()
            .to_vec())
    }

    /// Token strings of `text`.
    pub fn tokens(&self, text: &str) -> Result<Vec<String>> {
        Ok(self
            .tk
            .encode(text, false)
            .map_err(tk_err("encoding"))?
            .get_tokens()
            .to_vec())
    }

    /// Text of `ids` (special tokens dropped).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tk.decode(ids, true).map_err(tk_err("decoding"))
    }

    /// Vocabulary size, special tokens included.
    pub fn vocab_size(&self) -> usize {
        self.tk.get_vocab_size(true)
    }

    /// The id of a token.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.tk.token_to_id(token)
    }

    /// Saves as Hugging Face `tokenizer.json`, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = mm_core::tmp_path(path);
        if let Err(e) = self.tk.save(&tmp, false) {
            let _ = std::fs::remove_file(&tmp);
            return Err(tk_err("saving")(e));
        }
        std::fs::rename(&tmp, path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })
    }

    /// Loads a `tokenizer.json` (ours or any Hugging Face one).
    pub fn load(path: &Path) -> Result<Self> {
        let tk = Tokenizer::from_file(path).map_err(|e| Error::Subword {
            context: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Ok(Self { tk })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus(dir: &Path) -> PathBuf {
        let p = dir.join("corpus.txt");
        let mut text = String::new();
        for i in 0..400 {
            text.push_str(&format!(
                "a small red circle left of a large blue square number {i}\nthe triangles are smaller than the squares\n"
            ));
        }
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn bpe_round_trips_any_text_and_merges_frequent_words() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let c = corpus(d);
        let sw = Subword::train(
            &[c],
            &SubwordConfig {
                kind: SubwordKind::Bpe,
                vocab_size: 300,
                min_frequency: 2,
            },
        )
        .unwrap();
        assert!(sw.vocab_size() <= 300 && sw.vocab_size() > 256);
        assert_eq!(sw.id(PAD), Some(0));
        assert_eq!(sw.id(END), Some(3));
        for text in ["a small red circle", "zebra ünïcode ✓ 42"] {
            let ids = sw.encode(text).unwrap();
            assert_eq!(sw.decode(&ids).unwrap(), text);
        }
        // a frequent word is one token, an unseen one several
        let (seen, unseen) = (sw.tokens(" circle").unwrap(), sw.tokens(" zqxjvw").unwrap());
        assert!(seen.len() <= 2 && unseen.len() >= 4, "{seen:?} {unseen:?}");
        let p = d.join("tok.json");
        sw.save(&p).unwrap();
        let back = Subword::load(&p).unwrap();
        assert_eq!(
            back.encode("red square").unwrap(),
            sw.encode("red square").unwrap()
        );
        std::fs::write(&p, b"{broken").unwrap();
        assert!(matches!(Subword::load(&p), Err(Error::Subword { .. })));
    }

    #[test]
    fn wordpiece_splits_unknown_words_into_pieces() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let c = corpus(d);
        let sw = Subword::train(
            &[c],
            &SubwordConfig {
                kind: SubwordKind::WordPiece,
                vocab_size: 120,
                min_frequency: 2,
            },
        )
        .unwrap();
        let toks = sw.tokens("squares circles").unwrap();
        assert!(
            toks.iter().any(|t| t.starts_with("##")) || toks.len() == 2,
            "{toks:?}"
        );
        assert!(matches!(
            Subword::train(&[d.join("missing.txt")], &SubwordConfig::default()),
            Err(Error::Io { .. })
        ));
        assert!(
            Subword::train(
                &[],
                &SubwordConfig {
                    vocab_size: 2,
                    ..Default::default()
                }
            )
            .is_err()
        );
    }
}
