//! word2vec: training learns, files round-trip, evaluation computes what it says, bad input is
//! a typed error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use mm_text::Error;
use mm_text::word2vec::{
    Embeddings, VectorFormat, Word2Vec, Word2VecConfig, eval, read_safetensors_from, read_vectors,
    read_vectors_from, write_vectors,
};
use ndarray::Array2;

/// 4 topics of 10 words; each sentence draws 12 words from one topic.
fn topic_corpus(path: &Path, sentences: usize) {
    let mut s = 12345u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    let mut text = String::new();
    for _ in 0..sentences {
        let topic = next() % 4;
        let words: Vec<String> = (0..12)
            .map(|_| format!("t{topic}w{}", next() % 10))
            .collect();
        text.push_str(&words.join(" "));
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

fn cfg() -> Word2VecConfig {
    Word2VecConfig {
        size: 20,
        window: 4,
        negative: 5,
        sample: 0.0,
        min_count: 1,
        iter: 3,
        ..Default::default()
    }
}

/// Fraction of each word's 5 nearest neighbours that share its topic (chance: 9/39).
fn topic_precision(emb: &Embeddings) -> f64 {
    let mut hit = 0;
    let mut all = 0;
    for t in 0..4 {
        for w in 0..10 {
            let word = format!("t{t}w{w}");
            for (n, _) in emb.most_similar(&word, 5).unwrap() {
                hit += usize::from(n.starts_with(&format!("t{t}")));
                all += 1;
            }
        }
    }
    hit as f64 / all as f64
}

#[test]
fn skip_gram_and_cbow_learn_the_topics() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let corpus = d.join("corpus.txt");
    topic_corpus(&corpus, 2000);
    // negative sampling, hierarchical softmax alone, and both together (word2vec.c allows it)
    for (hs, negative) in [(false, 5), (true, 0), (true, 5)] {
        for cbow in [false, true] {
            let emb = Word2Vec::new(&Word2VecConfig {
                cbow,
                hs,
                negative,
                ..cfg()
            })
            .unwrap()
            .train_file(&corpus, &mut |_| {})
            .unwrap();
            assert_eq!(emb.words[0], "</s>");
            assert_eq!(emb.words.len(), 41);
            let p = topic_precision(&emb);
            assert!(
                p > 0.9,
                "cbow={cbow} hs={hs} negative={negative}: topic precision {p} (chance 0.23)"
            );
        }
    }
}

#[test]
fn one_thread_is_deterministic_and_two_threads_learn_too() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let corpus = d.join("corpus.txt");
    topic_corpus(&corpus, 1500);
    let run = |threads, seed| {
        Word2Vec::new(&Word2VecConfig {
            threads,
            seed,
            ..cfg()
        })
        .unwrap()
        .train_file(&corpus, &mut |_| {})
        .unwrap()
    };
    let (a, b) = (run(1, 7), run(1, 7));
    assert_eq!(a.vectors, b.vectors);
    assert_ne!(a.vectors, run(1, 8).vectors);
    let mut last = 0;
    let mut calls = 0;
    Word2Vec::new(&Word2VecConfig {
        threads: 2,
        ..cfg()
    })
    .unwrap()
    .train_file(&corpus, &mut |p| {
        calls += 1;
        assert!(p.words >= last && p.alpha > 0.0 && p.alpha <= 0.025);
        last = p.words;
    })
    .unwrap();
    assert!(calls > 0 && last > 0);
    let p = topic_precision(&run(2, 1));
    assert!(p > 0.85, "two threads: {p}");
}

/// The threads split the corpus by bytes; whatever the split, every word must be read by exactly
/// one thread in every epoch: a corpus of one long line (as text8 is) with multi-byte UTF-8
/// words, and a corpus of many lines, at 1 to 5 threads.
#[test]
fn every_word_is_trained_once_per_epoch_at_any_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let one_line = tmp.path().join("one-line.txt");
    let words = ["café", "naïve", "über", "straße", "東京", "zoë", "αβγ"];
    let text: Vec<&str> = (0..20_011).map(|i| words[(i * 7 + i / 3) % 7]).collect();
    std::fs::write(&one_line, text.join(" ")).unwrap();
    let lines = tmp.path().join("lines.txt");
    topic_corpus(&lines, 700);
    for corpus in [&one_line, &lines] {
        for threads in 1..=5 {
            let mut seen = 0;
            let emb = Word2Vec::new(&Word2VecConfig {
                threads,
                iter: 2,
                ..cfg()
            })
            .unwrap()
            .train_file(corpus, &mut |p| seen = seen.max(p.words))
            .unwrap();
            let total: u64 = emb.counts.iter().sum();
            assert_eq!(seen, 2 * total, "{threads} threads on {corpus:?}");
        }
    }
}

/// The vocabulary is word2vec.c's: `</s>` first, then decreasing count, words of equal count
/// in the order the corpus first shows them (not alphabetical), rare words dropped.
#[test]
fn the_vocabulary_orders_ties_by_first_occurrence_as_word2vec_c_does() {
    let tmp = tempfile::tempdir().unwrap();
    let corpus = tmp.path().join("c.txt");
    std::fs::write(
        &corpus,
        "zeta beta alpha beta\nmid zeta alpha rare beta mid\n",
    )
    .unwrap();
    let (words, counts) = Word2Vec::new(&Word2VecConfig {
        min_count: 2,
        ..cfg()
    })
    .unwrap()
    .vocabulary(&corpus)
    .unwrap();
    assert_eq!(words, ["</s>", "beta", "zeta", "alpha", "mid"]);
    assert_eq!(counts, [2, 3, 2, 2, 2]);
}

#[test]
fn vector_files_round_trip_in_both_formats_and_reject_damage() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let words: Vec<String> = ["</s>", "cat", "dog", "héllo"].map(String::from).to_vec();
    let vectors = Array2::from_shape_fn((4, 3), |(i, j)| i as f32 - 0.25 * j as f32);
    let emb = Embeddings::new(words, vec![0; 4], vectors).unwrap();
    for format in [VectorFormat::Text, VectorFormat::Binary] {
        let p = d.join(format!("{format:?}.vec"));
        write_vectors(&p, &emb, format).unwrap();
        let back = read_vectors(&p, format).unwrap();
        assert_eq!(back.words, emb.words);
        assert_eq!(back.vectors, emb.vectors);
        // truncated
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 7]).unwrap();
        assert!(
            matches!(read_vectors(&p, format), Err(Error::VectorFile { .. })),
            "{format:?}"
        );
        // header claims more
        let mut more = bytes.clone();
        more[0] = b'9';
        std::fs::write(&p, &more).unwrap();
        let e = read_vectors(&p, format).unwrap_err();
        assert!(e.to_string().contains("9 vectors"), "{e}");
    }
    let st = d.join("v.safetensors");
    mm_text::word2vec::write_safetensors(&st, &emb).unwrap();
    let back = mm_text::word2vec::read_safetensors(&st).unwrap();
    assert_eq!(
        (back.words.clone(), back.vectors.clone()),
        (emb.words.clone(), emb.vectors.clone())
    );
    std::fs::write(&st, b"garbage").unwrap();
    assert!(matches!(
        mm_text::word2vec::read_safetensors(&st),
        Err(Error::VectorFile { .. })
    ));
    let p = d.join("bad.txt");
    std::fs::write(&p, "2 3\ncat 1 2 3\ndog 1 x 3\n").unwrap();
    assert!(
        read_vectors(&p, VectorFormat::Text)
            .unwrap_err()
            .to_string()
            .contains("`dog`")
    );
    std::fs::write(&p, "2 3\ncat 1 2 3\ndog 1 2\n").unwrap();
    assert!(
        read_vectors(&p, VectorFormat::Text)
            .unwrap_err()
            .to_string()
            .contains("2 values")
    );
    std::fs::write(&p, "two three\n").unwrap();
    assert!(read_vectors(&p, VectorFormat::Text).is_err());
}

/// Headers that promise more than memory holds are refused before anything is allocated
/// (before, `COUNT * SIZE` overflowed or asked for terabytes and aborted the process), a short
/// file with a large header count reads as truncated, and NaN in safetensors vectors is refused
/// as it is in the other two formats.
#[test]
fn vector_headers_cannot_ask_for_unbounded_memory() {
    let name = Path::new("mem");
    for header in [
        "18446744073709551615 18446744073709551615\n",
        "4294967296 4294967296\n",
        "2 1048577\n",
    ] {
        for format in [VectorFormat::Text, VectorFormat::Binary] {
            let e = read_vectors_from(header.as_bytes(), name, format).unwrap_err();
            assert!(e.to_string().contains("more than"), "{header}: {e}");
        }
    }
    for format in [VectorFormat::Text, VectorFormat::Binary] {
        let e = read_vectors_from(&b"1000000000000 100\n"[..], name, format).unwrap_err();
        assert!(e.to_string().contains("ends after 0"), "{e}");
    }
    let emb = Embeddings::new(
        vec!["a".into(), "b".into()],
        vec![0; 2],
        Array2::from_shape_vec((2, 2), vec![1.0, f32::NAN, 0.0, 1.0]).unwrap(),
    )
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("nan.safetensors");
    mm_text::word2vec::write_safetensors(&p, &emb).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    let e = read_safetensors_from(&bytes, &p).unwrap_err();
    assert!(e.to_string().contains("non-finite"), "{e}");
}

#[test]
fn analogies_and_similarity_compute_what_they_claim() {
    // 2-D vectors where b - a + c lands exactly on d
    let words: Vec<String> = ["</s>", "man", "king", "woman", "queen", "apple"]
        .map(String::from)
        .to_vec();
    let v = ndarray::array![
        [0.0, 0.0],
        [1.0, 0.0],
        [1.0, 1.0],
        [0.0, 1.0],
        [-0.05, 2.0],
        [1.0, -3.0]
    ];
    let emb = Embeddings::new(words, vec![0; 6], v).unwrap();
    let text = ": royals\nman king woman queen\nMAN KING WOMAN QUEEN\nman king woman unicorn\n\n: fruit\nman apple woman king\nman apple woman\n";
    let rep = eval::analogies(&emb, text, 30_000);
    assert_eq!(rep.total, 4);
    assert_eq!(rep.skipped, 1, "the three-word line; not the blank one");
    assert_eq!(rep.answered, 3);
    assert_eq!(rep.sections[0], ("royals".to_owned(), 2, 2));
    assert_eq!(rep.sections[1], ("fruit".to_owned(), 0, 1));
    assert!((rep.accuracy() - 2.0 / 3.0).abs() < 1e-12);
    // restricting to the 3 most frequent words leaves queen out: nothing answerable
    assert_eq!(eval::analogies(&emb, text, 3).answered, 0);
    // limited to a word list: a question with a word outside it is not answered, and a word
    // outside it is no candidate (without queen, the royals question's best answer is apple)
    let within: std::collections::BTreeSet<String> =
        ["man", "king", "woman", "apple"].map(String::from).into();
    let rep = eval::analogies_within(
        &emb,
        "man king woman apple
man king woman queen
",
        30_000,
        Some(&within),
    );
    assert_eq!((rep.total, rep.answered, rep.correct), (2, 1, 1));
    assert!((eval::spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
    assert!((eval::spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    let ws =
        "# word1\tword2\tscore\nking\tqueen\t9.0\nking\tapple\t1.0\nman\twoman\t5\nfoo\tbar\t3\n";
    let (rho, used, total) = eval::similarity(&emb, ws);
    assert_eq!((used, total), (3, 4));
    assert!(rho > 0.0, "{rho}");
}

#[test]
fn bad_corpora_and_parameters_are_typed_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let p = d.join("c.txt");
    let train = |c: &Word2VecConfig| Word2Vec::new(c).and_then(|w| w.train_file(&p, &mut |_| {}));
    std::fs::write(&p, "").unwrap();
    assert!(matches!(train(&cfg()), Err(Error::Corpus { .. })));
    std::fs::write(&p, "a b c\n").unwrap();
    let e = train(&Word2VecConfig {
        min_count: 5,
        ..cfg()
    })
    .unwrap_err();
    assert!(e.to_string().contains("min_count"), "{e}");
    std::fs::write(&p, b"good words\nbad \xff\xfe bytes\n").unwrap();
    let e = train(&cfg()).unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    std::fs::write(&p, "a b c a b c\n").unwrap();
    let e = train(&Word2VecConfig {
        negative: 5,
        ..cfg()
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::InvalidParameter {
                name: "negative",
                ..
            }
        ),
        "{e}"
    );
    for bad in [
        Word2VecConfig { size: 0, ..cfg() },
        Word2VecConfig { window: 0, ..cfg() },
        Word2VecConfig {
            negative: 0,
            hs: false,
            ..cfg()
        },
        Word2VecConfig { iter: 0, ..cfg() },
        Word2VecConfig {
            sample: -1.0,
            ..cfg()
        },
        Word2VecConfig {
            alpha: Some(0.0),
            ..cfg()
        },
    ] {
        assert!(
            matches!(Word2Vec::new(&bad), Err(Error::InvalidParameter { .. })),
            "{bad:?}"
        );
    }
    assert!(matches!(train_missing(d), Err(Error::Io { .. })));
}

fn train_missing(d: &Path) -> mm_text::Result<Embeddings> {
    Word2Vec::new(&cfg())?.train_file(&d.join("nope.txt"), &mut |_| {})
}
