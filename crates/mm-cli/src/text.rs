//! `mm text ...`

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use mm_text::{Tokenizer, Vocab, VocabConfig};

#[derive(Debug, Subcommand)]
pub enum TextCommand {
    /// Build a vocabulary (JSON) from a text corpus, one sentence per line.
    Vocab {
        /// The corpus.
        #[arg(long)]
        train: PathBuf,
        /// Drop words seen fewer times.
        #[arg(long, default_value_t = 5)]
        min_count: u64,
        /// Keep at most this many words.
        #[arg(long)]
        max_size: Option<usize>,
        /// Where to write the vocabulary.
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn run(cmd: TextCommand) -> Result<()> {
    match cmd {
        TextCommand::Vocab {
            train,
            min_count,
            max_size,
            out,
        } => {
            let tok = Tokenizer::default();
            let file = std::fs::File::open(&train)
                .with_context(|| format!("opening corpus {}", train.display()))?;
            let mut sentences = Vec::new();
            for line in std::io::BufReader::new(file).lines() {
                let line = line.with_context(|| format!("reading {}", train.display()))?;
                sentences.push(tok.words(&line));
            }
            let cfg = VocabConfig {
                min_count,
                max_size,
                ..Default::default()
            };
            let vocab = Vocab::build(&sentences, &cfg)?;
            vocab
                .save(&out)
                .with_context(|| format!("saving vocabulary to {}", out.display()))?;
            println!(
                "{} entries ({} sentences) -> {}",
                vocab.len(),
                sentences.len(),
                out.display()
            );
            Ok(())
        }
    }
}
