//! Vocabularies with counts, special tokens, encoding and decoding.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Padding token.
pub const PAD: &str = "<pad>";
/// Unknown-word token.
pub const UNK: &str = "<unk>";
/// Start-of-sequence token.
pub const START: &str = "<start>";
/// End-of-sequence token.
pub const END: &str = "<end>";

/// How to build a vocabulary from counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VocabConfig {
    /// Drop words seen fewer times than this.
    pub min_count: u64,
    /// Keep at most this many ordinary words (the most frequent).
    pub max_size: Option<usize>,
    /// Special tokens placed first, in order (ids `0..specials.len()`).
    pub specials: Vec<String>,
}

impl Default for VocabConfig {
    fn default() -> Self {
        Self {
            min_count: 1,
            max_size: None,
            specials: [PAD, UNK, START, END].map(String::from).to_vec(),
        }
    }
}

/// A word-to-id mapping: special tokens first, then words by decreasing count (ties broken
/// alphabetically, so building is deterministic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Vocab {
    words: Vec<String>,
    counts: Vec<u64>,
    #[serde(skip)]
    index: HashMap<String, usize>,
}

impl Vocab {
    /// Builds a vocabulary from tokenized sentences.
    ///
    /// ```
    /// use mm_text::{Vocab, VocabConfig};
    /// let corpus = [vec!["a", "red", "circle"], vec!["a", "blue", "square"]];
    /// let v = Vocab::build(corpus.iter().map(|s| s.iter().copied()), &VocabConfig::default())?;
    /// let ids = v.encode(["a", "green", "circle"]);
    /// assert_eq!(v.decode(&ids)?, ["a", "<unk>", "circle"]);
    /// # Ok::<(), mm_text::Error>(())
    /// ```
    pub fn build<I, S, W>(sentences: I, cfg: &VocabConfig) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: IntoIterator<Item = W>,
        W: AsRef<str>,
    {
        let mut counts: HashMap<String, u64> = HashMap::new();
        for sentence in sentences {
            for w in sentence {
                *counts.entry(w.as_ref().to_owned()).or_default() += 1;
            }
        }
        let mut seen = std::collections::HashSet::new();
        for s in &cfg.specials {
            if !seen.insert(s) {
                return Err(Error::InvalidParameter {
                    name: "specials",
                    reason: format!("`{s}` appears twice"),
                });
            }
        }
        let mut entries: Vec<(String, u64)> = counts
            .into_iter()
            .filter(|(w, c)| *c >= cfg.min_count && !cfg.specials.contains(w))
            .collect();
        entries.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        if let Some(max) = cfg.max_size {
            entries.truncate(max);
        }
        let mut words = cfg.specials.clone();
        let mut cnts = vec![0; words.len()];
        for (w, c) in entries {
            words.push(w);
            cnts.push(c);
        }
        Ok(Self::from_parts(words, cnts))
    }

    fn from_parts(words: Vec<String>, counts: Vec<u64>) -> Self {
        let index = words
            .iter()
            .enumerate()
            .map(|(i, w)| (w.clone(), i))
            .collect();
        Self {
            words,
            counts,
            index,
        }
    }

    /// Number of entries, specials included.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// True when there is no entry at all.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// The id of `word`, if present.
    pub fn id(&self, word: &str) -> Option<usize> {
        self.index.get(word).copied()
    }

    /// The word with id `id`.
    pub fn word(&self, id: usize) -> Result<&str> {
        self.words
            .get(id)
            .map(String::as_str)
            .ok_or(Error::UnknownId {
                id,
                len: self.words.len(),
            })
    }

    /// How often `word` was seen when building (0 for specials and unknown words).
    pub fn count(&self, word: &str) -> u64 {
        self.id(word).map_or(0, |i| self.counts[i])
    }

    /// Ids of `words`, with unknown words mapped to `<unk>` (or skipped if there is no `<unk>`).
    pub fn encode<I, W>(&self, words: I) -> Vec<usize>
    where
        I: IntoIterator<Item = W>,
        W: AsRef<str>,
    {
        let unk = self.id(UNK);
        words
            .into_iter()
            .filter_map(|w| self.id(w.as_ref()).or(unk))
            .collect()
    }

    /// Words of `ids`.
    pub fn decode(&self, ids: &[usize]) -> Result<Vec<&str>> {
        ids.iter().map(|&i| self.word(i)).collect()
    }

    /// Saves as JSON, atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec(self).map_err(|source| Error::Format {
            path: path.to_owned(),
            source,
        })?;
        mm_core::write_atomic(path, &json).map_err(Error::from)
    }

    /// Loads a vocabulary written by [`Vocab::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        let v: Vocab = serde_json::from_slice(&bytes).map_err(|source| Error::Format {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self::from_parts(v.words, v.counts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn corpus() -> Vec<Vec<&'static str>> {
        vec![
            vec!["the", "red", "circle", "the"],
            vec!["the", "blue", "square", "red"],
            vec!["rare"],
        ]
    }

    #[test]
    fn order_counts_and_min_count() {
        let cfg = VocabConfig {
            min_count: 2,
            ..Default::default()
        };
        let v = Vocab::build(corpus(), &cfg).unwrap();
        assert_eq!(
            v.decode(&[0, 1, 2, 3, 4, 5]).unwrap(),
            [PAD, UNK, START, END, "the", "red"]
        );
        assert_eq!(v.len(), 6);
        assert_eq!(v.count("the"), 3);
        assert_eq!(v.id("rare"), None);
        assert!(matches!(v.word(6), Err(Error::UnknownId { id: 6, len: 6 })));
        let capped = Vocab::build(
            corpus(),
            &VocabConfig {
                max_size: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(capped.len(), 5);
    }

    #[test]
    fn save_and_load_round_trip() {
        let v = Vocab::build(corpus(), &VocabConfig::default()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("vocab.json");
        v.save(&p).unwrap();
        let w = Vocab::load(&p).unwrap();
        assert_eq!(v, w);
        assert_eq!(w.id("circle"), v.id("circle"));
        std::fs::write(&p, b"{not json").unwrap();
        assert!(matches!(Vocab::load(&p), Err(Error::Format { .. })));
    }

    proptest! {
        #[test]
        fn decode_encode_is_identity_on_known_words(idx in proptest::collection::vec(0usize..6, 0..20)) {
            let words = ["the", "red", "circle", "blue", "square", "rare"];
            let v = Vocab::build(corpus(), &VocabConfig::default()).unwrap();
            let s: Vec<&str> = idx.iter().map(|&i| words[i]).collect();
            prop_assert_eq!(v.decode(&v.encode(&s)).unwrap(), s);
        }
    }
}
