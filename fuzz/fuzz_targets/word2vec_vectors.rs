//! Fuzzes the word2vec vector readers: the first input byte picks the text format, the binary
//! format or safetensors (`mm text word2vec` reads all three; gensim and word2vec.c write the
//! first two); the rest is the file. On success the vectors must be what the file promised:
//! finite, one row per unique word. Errors are fine; panics, aborts, OOM and timeouts are bugs.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mm_text::word2vec::{VectorFormat, read_safetensors_from, read_vectors_from};

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let name = Path::new("fuzz");
    let read = match pick % 3 {
        0 => read_vectors_from(bytes, name, VectorFormat::Text),
        1 => read_vectors_from(bytes, name, VectorFormat::Binary),
        _ => read_safetensors_from(bytes, name),
    };
    let Ok(emb) = read else {
        return;
    };
    assert_eq!(emb.words.len(), emb.vectors.nrows());
    assert!(emb.vectors.iter().all(|v| v.is_finite()));
    for w in emb.words.iter().take(4) {
        assert!(emb.id(w).is_some());
    }
});
