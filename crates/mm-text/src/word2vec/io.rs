//! The word2vec text and binary vector formats (as word2vec.c writes them and gensim's
//! `KeyedVectors.load_word2vec_format` reads them).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use super::train::Embeddings;
use crate::error::{Error, Result};

/// Which of the two word2vec formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VectorFormat {
    /// `V D` header, then `word v1 ... vD` lines.
    Text,
    /// `V D` header, then `word ` followed by D little-endian `f32` and a newline.
    Binary,
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::VectorFile {
        path: path.to_owned(),
        reason: reason.into(),
    }
}

/// Writes `emb` to `path` atomically (temporary file, then rename; the temporary is removed if
/// a write fails).
pub fn write_vectors(path: &Path, emb: &Embeddings, format: VectorFormat) -> Result<()> {
    let tmp = mm_core::tmp_path(path);
    let io = |source| Error::Io {
        path: tmp.clone(),
        source,
    };
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let mut w = BufWriter::new(file);
    let result = (|| -> std::io::Result<()> {
        writeln!(w, "{} {}", emb.words.len(), emb.size())?;
        for (word, row) in emb.words.iter().zip(emb.vectors.rows()) {
            match format {
                VectorFormat::Text => {
                    write!(w, "{word}")?;
                    for v in row {
                        write!(w, " {v}")?;
                    }
                    writeln!(w)?;
                }
                VectorFormat::Binary => {
                    write!(w, "{word} ")?;
                    for v in row {
                        w.write_all(&v.to_le_bytes())?;
                    }
                    writeln!(w)?;
                }
            }
        }
        w.flush()
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    std::fs::rename(&tmp, path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })
}

/// The largest vector size a file may declare: 4 MB per row buffer (word2vec's own limit on
/// `-size` is far lower; ours is 10,000).
pub const MAX_VECTOR_SIZE: usize = 1 << 20;

/// Reads a vector file in `format`; a header that disagrees with the body, a truncated file or a
/// malformed value is an error naming the file and the entry.
pub fn read_vectors(path: &Path, format: VectorFormat) -> Result<Embeddings> {
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    read_vectors_from(BufReader::new(file), path, format)
}

/// [`read_vectors`] from any reader; `path` only names the source in errors. Memory grows with
/// what the input holds, not with what its header claims.
pub fn read_vectors_from(
    mut r: impl BufRead,
    path: &Path,
    format: VectorFormat,
) -> Result<Embeddings> {
    let mut header = String::new();
    r.read_line(&mut header)
        .map_err(|e| bad(path, e.to_string()))?;
    let mut it = header.split_whitespace().map(str::parse::<usize>);
    let (Some(Ok(n)), Some(Ok(d)), None) = (it.next(), it.next(), it.next()) else {
        return Err(bad(
            path,
            format!("header `{}` is not `COUNT SIZE`", header.trim()),
        ));
    };
    if d == 0 || n == 0 {
        return Err(bad(path, "empty header counts"));
    }
    if d > MAX_VECTOR_SIZE || n.checked_mul(d).is_none() {
        return Err(bad(
            path,
            format!(
                "header `{n} {d}`: vectors of more than {MAX_VECTOR_SIZE} values, or more values than memory can address"
            ),
        ));
    }
    // capacity for what a small file can hold; more grows as it is read
    let mut words = Vec::with_capacity(n.min(1 << 16));
    let mut data = Vec::with_capacity((n * d).min(1 << 20));
    match format {
        VectorFormat::Text => {
            for i in 0..n {
                let mut line = String::new();
                let got = r
                    .read_line(&mut line)
                    .map_err(|e| bad(path, e.to_string()))?;
                if got == 0 {
                    return Err(bad(
                        path,
                        format!("the header says {n} vectors, the file ends after {i}"),
                    ));
                }
                let mut parts = line.split_whitespace();
                let word = parts
                    .next()
                    .ok_or_else(|| bad(path, format!("entry {i} is empty")))?;
                let vals: Vec<f32> = parts
                    .map(str::parse::<f32>)
                    .collect::<std::result::Result<_, _>>()
                    .map_err(|e| bad(path, format!("entry {i} (`{word}`): {e}")))?;
                if vals.len() != d {
                    return Err(bad(
                        path,
                        format!(
                            "entry {i} (`{word}`) has {} values, the header says {d}",
                            vals.len()
                        ),
                    ));
                }
                words.push(word.to_owned());
                data.extend(vals);
            }
        }
        VectorFormat::Binary => {
            let mut buf = vec![0u8; 4 * d];
            for i in 0..n {
                let mut word = Vec::new();
                r.read_until(b' ', &mut word)
                    .map_err(|e| bad(path, e.to_string()))?;
                if word.last() != Some(&b' ') {
                    return Err(bad(
                        path,
                        format!("the header says {n} vectors, the file ends after {i}"),
                    ));
                }
                word.pop();
                // some writers put the newline before the word
                let word =
                    String::from_utf8(word.into_iter().skip_while(|&b| b == b'\n').collect())
                        .map_err(|_| bad(path, format!("entry {i}: the word is not UTF-8")))?;
                r.read_exact(&mut buf)
                    .map_err(|_| bad(path, format!("entry {i} (`{word}`) is truncated")))?;
                data.extend(
                    buf.chunks_exact(4)
                        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
                );
                words.push(word);
            }
        }
    }
    if data.iter().any(|v| !v.is_finite()) {
        return Err(bad(path, "non-finite values"));
    }
    let counts = vec![0; words.len()];
    let vectors = Array2::from_shape_vec((n, d), data).map_err(|e| bad(path, e.to_string()))?;
    Embeddings::new(words, counts, vectors).map_err(|e| bad(path, e.to_string()))
}

/// Writes `emb` as safetensors, for use as an embedding layer (e.g. `nn::embedding` weights in
/// tch): one `f32` tensor `vectors` `[words, size]`; the words, in row order, as a JSON list in
/// the metadata key `words`. Written atomically.
pub fn write_safetensors(path: &Path, emb: &Embeddings) -> Result<()> {
    use safetensors::tensor::{Dtype, TensorView};
    let bytes: Vec<u8> = emb.vectors.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, vec![emb.words.len(), emb.size()], &bytes)
        .map_err(|e| bad(path, e.to_string()))?;
    let words = serde_json::to_string(&emb.words).map_err(|e| bad(path, e.to_string()))?;
    let meta = std::collections::HashMap::from([("words".to_owned(), words)]);
    let out = safetensors::serialize([("vectors", view)], Some(meta))
        .map_err(|e| bad(path, e.to_string()))?;
    mm_core::write_atomic(path, &out).map_err(Error::from)
}

/// Reads a file written by [`write_safetensors`].
pub fn read_safetensors(path: &Path) -> Result<Embeddings> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    read_safetensors_from(&bytes, path)
}

/// [`read_safetensors`] from bytes in memory; `path` only names the source in errors.
pub fn read_safetensors_from(bytes: &[u8], path: &Path) -> Result<Embeddings> {
    let (_, meta) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| bad(path, e.to_string()))?;
    let words: Vec<String> = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("words"))
        .ok_or_else(|| bad(path, "no `words` metadata"))
        .and_then(|w| serde_json::from_str(w).map_err(|e| bad(path, e.to_string())))?;
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(path, e.to_string()))?;
    let t = st.tensor("vectors").map_err(|e| bad(path, e.to_string()))?;
    let shape = t.shape().to_vec();
    if t.dtype() != safetensors::tensor::Dtype::F32 || shape.len() != 2 || shape[0] != words.len() {
        return Err(bad(
            path,
            format!(
                "`vectors` is {:?} {shape:?} for {} words",
                t.dtype(),
                words.len()
            ),
        ));
    }
    let data: Vec<f32> = t
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if data.iter().any(|v| !v.is_finite()) {
        return Err(bad(path, "non-finite values"));
    }
    let vectors =
        Array2::from_shape_vec((shape[0], shape[1]), data).map_err(|e| bad(path, e.to_string()))?;
    let counts = vec![0; words.len()];
    Embeddings::new(words, counts, vectors).map_err(|e| bad(path, e.to_string()))
}
