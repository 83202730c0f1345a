//! Word tokenization with Unicode normalisation.

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

/// What to do with a class of characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CharPolicy {
    /// Keep them inside words.
    Keep,
    /// Treat them as separators.
    #[default]
    Split,
    /// Emit each one as a token of its own.
    Isolate,
}

/// Tokenizer settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenizerConfig {
    /// Apply NFKC normalisation first.
    pub nfkc: bool,
    /// Lower-case every token (full Unicode lower-casing).
    pub lowercase: bool,
    /// Punctuation handling.
    pub punctuation: CharPolicy,
    /// Digit handling.
    pub digits: CharPolicy,
}

impl Default for TokenizerConfig {
    fn default() -> Self {
        Self {
            nfkc: true,
            lowercase: true,
            punctuation: CharPolicy::Split,
            digits: CharPolicy::Keep,
        }
    }
}

/// A token with its byte span in the (normalised) text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The token text (lower-cased when configured).
    pub text: String,
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset one past the last character.
    pub end: usize,
}

/// A word tokenizer: splits on whitespace and, per configuration, punctuation and digits.
#[derive(Debug, Clone, Default)]
pub struct Tokenizer {
    cfg: TokenizerConfig,
}

impl Tokenizer {
    /// A tokenizer with the given settings.
    pub fn new(cfg: TokenizerConfig) -> Self {
        Self { cfg }
    }

    /// The text the offsets of [`Tokenizer::tokenize`] refer to (NFKC-normalised if configured).
    pub fn normalize(&self, text: &str) -> String {
        if self.cfg.nfkc {
            text.nfkc().collect()
        } else {
            text.to_owned()
        }
    }

    /// Tokens of `text` with byte offsets into `self.normalize(text)`.
    ///
    /// ```
    /// use mm_text::Tokenizer;
    /// let toks = Tokenizer::default().tokenize("A red Circle, left of the square.");
    /// let words: Vec<_> = toks.iter().map(|t| t.text.as_str()).collect();
    /// assert_eq!(words, ["a", "red", "circle", "left", "of", "the", "square"]);
    /// ```
    pub fn tokenize(&self, text: &str) -> Vec<Token> {
        let norm = self.normalize(text);
        let mut out = Vec::new();
        let mut start: Option<usize> = None;
        let push = |out: &mut Vec<Token>, s: usize, e: usize| {
            let raw = &norm[s..e];
            let text = if self.cfg.lowercase {
                raw.to_lowercase()
            } else {
                raw.to_owned()
            };
            out.push(Token {
                text,
                start: s,
                end: e,
            });
        };
        for (i, c) in norm.char_indices() {
            let policy = if c.is_whitespace() {
                CharPolicy::Split
            } else if c.is_numeric() {
                self.cfg.digits
            } else if c.is_alphabetic() || c == '\'' && start.is_some() {
                CharPolicy::Keep
            } else {
                self.cfg.punctuation
            };
            match policy {
                CharPolicy::Keep => {
                    start.get_or_insert(i);
                }
                CharPolicy::Split | CharPolicy::Isolate => {
                    if let Some(s) = start.take() {
                        push(&mut out, s, i);
                    }
                    if policy == CharPolicy::Isolate {
                        push(&mut out, i, i + c.len_utf8());
                    }
                }
            }
        }
        if let Some(s) = start {
            push(&mut out, s, norm.len());
        }
        out
    }

    /// Just the token strings.
    pub fn words(&self, text: &str) -> Vec<String> {
        self.tokenize(text).into_iter().map(|t| t.text).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_point_at_the_tokens() {
        let t = Tokenizer::default();
        let text = "Ünïcode ﬁne: 3 dogs!";
        let norm = t.normalize(text);
        assert!(norm.contains("fine"), "NFKC folds the ligature: {norm}");
        for tok in t.tokenize(text) {
            assert_eq!(norm[tok.start..tok.end].to_lowercase(), tok.text);
        }
        assert_eq!(t.words(text), ["ünïcode", "fine", "3", "dogs"]);
    }

    #[test]
    fn policies() {
        let t = Tokenizer::new(TokenizerConfig {
            punctuation: CharPolicy::Isolate,
            digits: CharPolicy::Split,
            lowercase: false,
            nfkc: false,
        });
        assert_eq!(
            t.words("Hi, it's 42 o'clock!"),
            ["Hi", ",", "it's", "o'clock", "!"]
        );
    }
}
