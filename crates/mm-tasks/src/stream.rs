//! A split's samples read from the data set batch by batch, instead of held in memory: one
//! field (`image`, or the `features` of `mm vision features`) of the split's rows, with the
//! next training batch read by a background thread while the current one trains
//! ([`mm_train::Task::prefetch`]). Memory is then bounded by the batch, whatever the data
//! set's size.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use mm_data::Reader;
use mm_train::{Error, Result};
use tch::{Device, Tensor};

/// What the reading thread sends back: a batch, or why it could not read it. The thread reads
/// and decodes only; the tensor is made on the caller's thread, so that no libtorch (OpenMP)
/// thread pool is started for the reader, whose spinning workers would take the cores from
/// training (measured: VQA steps 25-30 % slower on 2 cores).
type Reply = std::result::Result<mm_data::Batch, String>;

/// A request to the reading thread: file rows, and where to send the batch.
type Request = (Vec<usize>, Sender<Reply>);

/// The background reader: its own [`Reader`] of the same file.
#[derive(Debug)]
struct Worker {
    requests: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // closing the channel ends the thread's loop
        self.requests.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One field of a split's samples, read on demand.
pub(crate) struct FieldStream {
    path: PathBuf,
    field: String,
    /// The split's sample indices in the file, by position in the split.
    rows: Vec<usize>,
    reader: Reader,
    shape: Vec<usize>,
    worker: Option<Worker>,
    /// Whether [`FieldStream::prefetch`] reads ahead at all (on unless
    /// [`FieldStream::read_ahead`] turns it off).
    ahead: bool,
    /// The positions requested ahead, oldest first, and the channels their batches arrive on
    /// (at most [`AHEAD`]).
    pending: VecDeque<(Vec<usize>, Receiver<Reply>)>,
}

/// How many batches [`FieldStream::prefetch`] keeps requested: the engine hints step `t + 1`
/// before step `t` takes its own batch, so two are in flight at the hand-over.
const AHEAD: usize = 2;

impl std::fmt::Debug for FieldStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FieldStream")
            .field("path", &self.path)
            .field("field", &self.field)
            .field("len", &self.rows.len())
            .field("shape", &self.shape)
            .finish()
    }
}

fn read(r: &Reader, rows: &[usize], field: &str) -> Reply {
    r.read_batch_fields(rows, &[field])
        .map_err(|e| e.to_string())
}

fn to_tensor(b: &mm_data::Batch, field: &str) -> std::result::Result<Tensor, String> {
    b.tensor(field, Device::Cpu).map_err(|e| e.to_string())
}

impl FieldStream {
    /// The field `field` of rows `rows` of the data set at `path`.
    pub(crate) fn open(path: &Path, field: &str, rows: Vec<usize>) -> Result<Self> {
        let reader = Reader::open(path).map_err(Error::task)?;
        let spec = reader
            .schema()
            .fixed
            .iter()
            .find(|f| f.name == field)
            .ok_or_else(|| Error::InvalidParameter {
                name: "data",
                reason: format!("{} has no field `{field}`", path.display()),
            })?;
        let shape = spec.shape.clone();
        if let Some(&bad) = rows.iter().find(|&&i| i >= reader.len()) {
            return Err(Error::InvalidParameter {
                name: "data",
                reason: format!(
                    "{}: row {bad} of a split is past its {} samples",
                    path.display(),
                    reader.len()
                ),
            });
        }
        Ok(Self {
            path: path.to_owned(),
            field: field.to_owned(),
            rows,
            reader,
            shape,
            worker: None,
            ahead: true,
            pending: VecDeque::new(),
        })
    }

    /// Whether [`FieldStream::prefetch`] reads ahead in a background thread (the default) or
    /// leaves [`FieldStream::take`] to read synchronously. The thread reads and decodes
    /// (HDF5, deflate); the tensor is made on the caller's thread. Measured on 2 cores (VQA,
    /// batch 128 of SynthAV's 64-pixel images): a synchronous read costs a step about 11 ms
    /// (of about 250); read ahead, the step receives the batch ready.
    #[cfg(test)]
    pub(crate) fn read_ahead(&mut self, on: bool) {
        self.ahead = on;
    }

    /// Samples in the split.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// The shape of one sample's field.
    pub(crate) fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn file_rows(&self, k: &[usize]) -> Result<Vec<usize>> {
        k.iter()
            .map(|&i| {
                self.rows
                    .get(i)
                    .copied()
                    .ok_or_else(|| Error::InvalidParameter {
                        name: "index",
                        reason: format!("sample {i} of a split of {}", self.rows.len()),
                    })
            })
            .collect()
    }

    /// Samples `k` (positions in the split), `[B, shape...]` on the CPU, read now.
    pub(crate) fn read(&self, k: &[usize]) -> Result<Tensor> {
        let rows = self.file_rows(k)?;
        read(&self.reader, &rows, &self.field)
            .and_then(|b| to_tensor(&b, &self.field))
            .map_err(|why| self.failed(why))
    }

    /// Positions `start..end` of the split.
    pub(crate) fn read_range(&self, start: usize, end: usize) -> Result<Tensor> {
        self.read(&(start..end.min(self.len())).collect::<Vec<_>>())
    }

    fn failed(&self, why: String) -> Error {
        Error::InvalidParameter {
            name: "data",
            reason: format!("reading `{}` of {}: {why}", self.field, self.path.display()),
        }
    }

    /// Starts reading samples `k` in the background, for the next [`FieldStream::take`] (when
    /// reading ahead is on).
    pub(crate) fn prefetch(&mut self, k: &[usize]) -> Result<()> {
        if !self.ahead {
            return Ok(());
        }
        let rows = self.file_rows(k)?;
        if self.worker.is_none() {
            let (tx, rx) = channel::<Request>();
            let path = self.path.clone();
            let field = self.field.clone();
            let thread = std::thread::Builder::new()
                .name("mm-prefetch".into())
                .spawn(move || {
                    let reader = Reader::open(&path).map_err(|e| e.to_string());
                    for (rows, reply) in rx {
                        let out = match &reader {
                            Ok(r) => read(r, &rows, &field),
                            Err(e) => Err(e.clone()),
                        };
                        let _ = reply.send(out);
                    }
                })
                .map_err(|e| self.failed(format!("starting the reading thread: {e}")))?;
            self.worker = Some(Worker {
                requests: Some(tx),
                thread: Some(thread),
            });
        }
        let (reply, result) = channel();
        let sent = self
            .worker
            .as_ref()
            .and_then(|w| w.requests.as_ref())
            .is_some_and(|s| s.send((rows, reply)).is_ok());
        if sent {
            if self.pending.len() == AHEAD {
                self.pending.pop_front();
            }
            self.pending.push_back((k.to_vec(), result));
        }
        Ok(())
    }

    /// Samples `k`: the batch [`FieldStream::prefetch`] read ahead for the same positions
    /// (requests older than it are dropped), else read now, keeping what was asked ahead.
    pub(crate) fn take(&mut self, k: &[usize]) -> Result<Tensor> {
        let at = self.pending.iter().position(|(want, _)| want == k);
        if let Some((_, rx)) = at.and_then(|at| self.pending.drain(..=at).next_back())
            && let Ok(out) = rx.recv()
        {
            return out
                .and_then(|b| to_tensor(&b, &self.field))
                .map_err(|why| self.failed(why));
        }
        self.read(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetched_and_direct_reads_agree_and_a_mismatch_reads_directly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sv.h5");
        let sv = mm_data::synthav::SynthAvConfig {
            scenes: 20,
            seed: 1,
            ..Default::default()
        };
        mm_data::synthav::write(&path, &sv, &mut |_, _| {}).unwrap();
        let rows: Vec<usize> = (0..20).rev().collect();
        let mut s = FieldStream::open(&path, "image", rows).unwrap();
        assert_eq!(s.shape(), [64, 64, 3]);
        let direct = s.read(&[3, 0, 7]).unwrap();
        s.prefetch(&[3, 0, 7]).unwrap();
        assert!(s.take(&[3, 0, 7]).unwrap().equal(&direct));
        assert!(s.pending.is_empty());
        // the engine's order: step t + 1 is hinted before step t takes its batch; step t
        // (not asked ahead: the first step) reads directly and leaves t + 1 in flight,
        // which step t + 1 then receives
        let next = s.read(&[5, 6]).unwrap();
        s.prefetch(&[5, 6]).unwrap();
        assert!(s.take(&[3, 0, 7]).unwrap().equal(&direct));
        assert_eq!(s.pending.len(), 1);
        s.prefetch(&[1]).unwrap();
        assert!(s.take(&[5, 6]).unwrap().equal(&next));
        assert_eq!(s.pending.len(), 1, "the hint for the step after stays");
        // a request the steps skipped is dropped with the one taken after it
        s.prefetch(&[2]).unwrap();
        assert_eq!(s.pending.len(), 2);
        let _ = s.take(&[2]).unwrap();
        assert!(s.pending.is_empty());
        // no more than AHEAD requests are kept
        for i in 0..5 {
            s.prefetch(&[i]).unwrap();
        }
        assert_eq!(s.pending.len(), AHEAD);
        assert!(s.take(&[3, 0, 7]).unwrap().equal(&direct));
        let _ = s.take(&[4]).unwrap();
        assert!(s.pending.is_empty());
        // position k of the split is file row 19 - k
        let r = Reader::open(&path).unwrap();
        let row = to_tensor(&read(&r, &[16], "image").unwrap(), "image").unwrap();
        assert!(s.read(&[3]).unwrap().equal(&row));
        assert!(s.read(&[20]).is_err());
        // reading ahead off: nothing is requested, take reads directly
        s.read_ahead(false);
        s.prefetch(&[3, 0, 7]).unwrap();
        assert!(s.pending.is_empty());
        assert!(s.take(&[3, 0, 7]).unwrap().equal(&direct));
        assert!(FieldStream::open(&path, "pixels", vec![0]).is_err());
        assert!(FieldStream::open(&path, "image", vec![20]).is_err());
    }
}
