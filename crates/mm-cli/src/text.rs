//! `mm text ...`

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use mm_text::word2vec::{
    VectorFormat, Word2Vec, Word2VecConfig, eval, read_vectors, write_safetensors, write_vectors,
};
use mm_text::{Tokenizer, Vocab, VocabConfig};

#[derive(Debug, Subcommand)]
pub enum TextCommand {
    /// Skip-gram / CBOW word vectors (word2vec's flags).
    #[command(subcommand)]
    Word2vec(W2vCommand),
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

#[derive(Debug, Subcommand)]
pub enum W2vCommand {
    /// Train vectors on a corpus (whitespace-separated words; a newline ends a sentence).
    Train {
        /// The corpus.
        #[arg(long)]
        train: PathBuf,
        /// Where to write the vectors.
        #[arg(long)]
        output: PathBuf,
        /// Write word2vec's binary format instead of text.
        #[arg(long)]
        binary: bool,
        /// Also write the vectors as safetensors (an embedding layer for the tasks).
        #[arg(long)]
        safetensors: Option<PathBuf>,
        /// Vector size.
        #[arg(long, default_value_t = 100)]
        size: usize,
        /// Maximum window.
        #[arg(long, default_value_t = 5)]
        window: usize,
        /// Negative samples.
        #[arg(long, default_value_t = 5)]
        negative: usize,
        /// Subsampling threshold.
        #[arg(long, default_value_t = 1e-3)]
        sample: f64,
        /// Minimum count.
        #[arg(long, default_value_t = 5)]
        min_count: u64,
        /// Epochs.
        #[arg(long, default_value_t = 5)]
        iter: usize,
        /// Starting learning rate (default 0.025 skip-gram, 0.05 CBOW).
        #[arg(long)]
        alpha: Option<f32>,
        /// Threads.
        #[arg(long, default_value_t = 1)]
        threads: usize,
        /// 1 for CBOW, 0 for skip-gram.
        #[arg(long, default_value_t = 0)]
        cbow: u8,
        /// 1 for hierarchical softmax (with `--negative 0` for it alone), 0 for none.
        #[arg(long, default_value_t = 0)]
        hs: u8,
        /// Seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Train with the batched tensor trainer on this device (cpu, cuda, cuda:N, auto)
        /// instead of the lock-free CPU trainer.
        #[arg(long)]
        device: Option<String>,
        /// Pairs per batch for `--device`.
        #[arg(long, default_value_t = 8192)]
        batch: usize,
    },
    /// Analogy accuracy and word-similarity correlation of a vector file.
    Eval {
        /// The vectors.
        #[arg(long)]
        vectors: PathBuf,
        /// The file is in binary format.
        #[arg(long)]
        binary: bool,
        /// Analogies (`questions-words.txt` format).
        #[arg(long)]
        analogies: Option<PathBuf>,
        /// Use only the most frequent words for analogies.
        #[arg(long, default_value_t = 30_000)]
        restrict: usize,
        /// Also limit the analogy vocabulary to the words in this file (one per line,
        /// case-insensitive): give every compared model the same list (the words all of them
        /// have in their top --restrict) so that they answer the same questions.
        #[arg(long)]
        within: Option<PathBuf>,
        /// Word pairs with human scores (WordSim353 format).
        #[arg(long)]
        similarity: Option<PathBuf>,
    },
    /// Nearest neighbours of words.
    Neighbors {
        /// The vectors.
        #[arg(long)]
        vectors: PathBuf,
        /// The file is in binary format.
        #[arg(long)]
        binary: bool,
        /// How many neighbours.
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// The words.
        words: Vec<String>,
    },
}

fn format(binary: bool) -> VectorFormat {
    if binary {
        VectorFormat::Binary
    } else {
        VectorFormat::Text
    }
}

fn word2vec(cmd: W2vCommand) -> Result<()> {
    match cmd {
        W2vCommand::Train {
            train,
            output,
            binary,
            safetensors,
            size,
            window,
            negative,
            sample,
            min_count,
            iter,
            alpha,
            threads,
            cbow,
            hs,
            seed,
            device,
            batch,
        } => {
            let cfg = Word2VecConfig {
                size,
                window,
                negative,
                sample,
                min_count,
                iter,
                alpha,
                threads,
                cbow: cbow != 0,
                hs: hs != 0,
                seed,
            };
            let w2v = Word2Vec::new(&cfg)?;
            // before training, not after it: the vectors could not be written there
            if output.is_dir() {
                anyhow::bail!("--output {} is a directory", output.display());
            }
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(indicatif::ProgressStyle::with_template(
                "{spinner} [{bar:30}] {percent}% {msg} (eta {eta})",
            )?);
            let start = std::time::Instant::now();
            let emb = match device {
                Some(dev) => {
                    let dev = crate::parse_device(&dev)?;
                    mm_text::word2vec::tensor::train_tensor(
                        &train,
                        &cfg,
                        dev,
                        batch,
                        &mut |done, total| {
                            bar.set_length(total);
                            bar.set_position(done);
                        },
                    )
                }
                None => w2v.train_file(&train, &mut |p| {
                    bar.set_length(p.total);
                    bar.set_position(p.words);
                    let rate = p.words as f64 / start.elapsed().as_secs_f64().max(1e-9);
                    bar.set_message(format!(
                        "{:.0}k words/s/thread, alpha {:.6}",
                        rate / 1e3 / threads as f64,
                        p.alpha
                    ));
                }),
            }
            .with_context(|| format!("training on {}", train.display()))?;
            bar.finish_and_clear();
            let secs = start.elapsed().as_secs_f64();
            let words: u64 = emb.counts.iter().sum::<u64>() * iter as u64;
            write_vectors(&output, &emb, format(binary))
                .with_context(|| format!("writing {}", output.display()))?;
            if let Some(st) = &safetensors {
                write_safetensors(st, &emb).with_context(|| format!("writing {}", st.display()))?;
            }
            println!(
                "{} words x {size} -> {} in {secs:.1} s ({:.0} words/s/thread)",
                emb.words.len(),
                output.display(),
                words as f64 / secs / threads as f64
            );
            Ok(())
        }
        W2vCommand::Eval {
            vectors,
            binary,
            analogies,
            restrict,
            within,
            similarity,
        } => {
            let emb = read_vectors(&vectors, format(binary))?;
            let within: Option<std::collections::BTreeSet<String>> = match within {
                Some(p) => Some(
                    eval::read_text(&p)?
                        .split_whitespace()
                        .map(str::to_lowercase)
                        .collect(),
                ),
                None => None,
            };
            if let Some(path) = analogies {
                let rep = eval::analogies_within(
                    &emb,
                    &eval::read_text(&path)?,
                    restrict,
                    within.as_ref(),
                );
                if rep.total == 0 {
                    bail!(
                        "{}: no analogy questions (lines of four words `a b c d`; {} lines are not)",
                        path.display(),
                        rep.skipped
                    );
                }
                if rep.skipped > 0 {
                    println!(
                        "({} lines of {} skipped: not four words)",
                        rep.skipped,
                        path.display()
                    );
                }
                for (name, right, asked) in &rep.sections {
                    if *asked > 0 {
                        println!(
                            "{name:<32} {:6.2} % of {asked}",
                            100.0 * *right as f64 / *asked as f64
                        );
                    }
                }
                println!(
                    "analogies: {:.2} % of {} answered ({} questions, restrict {restrict})",
                    100.0 * rep.accuracy(),
                    rep.answered,
                    rep.total
                );
            }
            if let Some(path) = similarity {
                let (rho, used, total) = eval::similarity(&emb, &eval::read_text(&path)?);
                if total == 0 {
                    bail!(
                        "{}: no word pairs (lines `word1 word2 score`, tab- or space-separated)",
                        path.display()
                    );
                }
                println!("similarity: Spearman rho {rho:.4} over {used} of {total} pairs");
            }
            Ok(())
        }
        W2vCommand::Neighbors {
            vectors,
            binary,
            k,
            words,
        } => {
            let emb = read_vectors(&vectors, format(binary))?;
            for w in words {
                match emb.most_similar(&w, k) {
                    Some(list) => {
                        println!("{w}:");
                        for (n, s) in list {
                            println!("  {s:.4} {n}");
                        }
                    }
                    None => println!("{w}: not in the vocabulary"),
                }
            }
            Ok(())
        }
    }
}

pub fn run(cmd: TextCommand) -> Result<()> {
    match cmd {
        TextCommand::Word2vec(c) => word2vec(c),
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
            if vocab.len() == cfg.specials.len() {
                bail!(
                    "{}: no word occurs --min-count {min_count} times ({} lines); no vocabulary written",
                    train.display(),
                    sentences.len()
                );
            }
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
