//! Writing a file so that a full disk, an error or a kill never leaves a half-written file under
//! its final name: the bytes go to a temporary beside it, which is synced and renamed over the
//! final name (atomic on one file system); a failed write removes the temporary.

use std::io::Write;
use std::path::{Path, PathBuf};

/// A failed [`write_atomic`]: the file that could not be written, and why.
#[derive(Debug)]
pub struct WriteError {
    /// The temporary or final path that failed.
    pub path: PathBuf,
    /// The operating system's error (`ENOSPC` for a full disk).
    pub source: std::io::Error,
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // the cause is `source()`, shown by reporters that walk the chain (anyhow's `{:#}`)
        write!(f, "writing {}", self.path.display())
    }
}

impl std::error::Error for WriteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// `path` with `.tmp` added to its file name (`run/summary.json` -> `run/summary.json.tmp`), so
/// that files of one stem written side by side never share a temporary.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".tmp");
    path.with_file_name(name)
}

/// Writes `bytes` to `path` through [`tmp_path`]: written, synced, then renamed over `path`.
/// On any failure the temporary is removed, `path` keeps what it held before, and the error
/// names the path that failed.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("mm-core-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let p = dir.join("summary.json");
/// mm_core::write_atomic(&p, b"{}").unwrap();
/// assert_eq!(std::fs::read(&p).unwrap(), b"{}");
/// assert!(!mm_core::tmp_path(&p).exists());
/// std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    let tmp = tmp_path(path);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(source) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(WriteError { path: tmp, source });
    }
    std::fs::rename(&tmp, path).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        WriteError {
            path: path.to_owned(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_failed_write_keeps_the_old_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("mm-core-fs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("a.json");
        write_atomic(&p, b"old").unwrap();
        // a temporary that cannot be created (a directory is in its place)
        std::fs::create_dir_all(tmp_path(&p)).unwrap();
        let e = write_atomic(&p, b"new").unwrap_err();
        assert!(e.to_string().contains("a.json.tmp"), "{e}");
        assert!(std::error::Error::source(&e).is_some());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        std::fs::remove_dir_all(tmp_path(&p)).unwrap();
        // a final name that cannot be replaced (a non-empty directory)
        let q = dir.join("b.json");
        std::fs::create_dir_all(q.join("x")).unwrap();
        let e = write_atomic(&q, b"new").unwrap_err();
        assert_eq!(e.path, q);
        assert!(!tmp_path(&q).exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
