//! The file sink: plain line protocol (nanosecond timestamps) in files named
//! by their creation time, `points-20261128T231500Z-000001.lp`, loadable
//! later with `influx write --file`. A new file is started past
//! `rotate_bytes` or `rotate_s` (checked when a batch is written); at most
//! `keep_files` are kept.
//!
//! A batch counts as written once flushed to the operating system; files
//! are synced on rotation, before a write-ahead log checkpoint depends on
//! them, and at shutdown. After a failed write the file is
//! cut back to its last flushed length, so that no partial line remains and
//! the retry appends the whole batch again.

use std::path::{Path, PathBuf};

use tokio::fs::{File, OpenOptions};
use tokio::io::{AsyncSeekExt as _, AsyncWriteExt as _, BufWriter};
use tokio::time::{Duration, Instant};

use super::{Failure, Outcome, SinkError};
use crate::config::FileSinkConfig;

const PREFIX: &str = "points-";
const EXTENSION: &str = "lp";
const BUFFER: usize = 256 * 1024;

/// Writes batches to rotated files.
#[derive(Debug)]
pub struct FileWriter {
    dir: PathBuf,
    rotate_bytes: u64,
    rotate_after: Duration,
    keep_files: usize,
    /// Sequence number of the next file.
    seq: u64,
    current: Option<Current>,
}

#[derive(Debug)]
struct Current {
    path: PathBuf,
    out: BufWriter<File>,
    /// Bytes flushed so far.
    len: u64,
    opened: Instant,
    /// A write failed since the last flush.
    broken: bool,
}

impl FileWriter {
    /// Creates the folder if missing. The first file is opened with the first write.
    pub async fn new(cfg: &FileSinkConfig) -> Result<Self, SinkError> {
        tokio::fs::create_dir_all(&cfg.dir)
            .await
            .map_err(|source| SinkError::Io {
                path: cfg.dir.clone(),
                source,
            })?;
        Ok(Self {
            dir: cfg.dir.clone(),
            rotate_bytes: cfg.rotate_bytes.max(1),
            rotate_after: Duration::from_secs(cfg.rotate_s.max(1)),
            keep_files: cfg.keep_files,
            seq: 1,
            current: None,
        })
    }

    /// The file being written, if any.
    pub fn current_path(&self) -> Option<&Path> {
        self.current.as_ref().map(|c| c.path.as_path())
    }

    /// Appends whole lines and flushes them.
    pub async fn write(&mut self, body: &[u8]) -> Outcome {
        match self.try_write(body).await {
            Ok(()) => Outcome::Written,
            Err(e) => {
                if let Some(c) = &mut self.current {
                    c.broken = true;
                }
                Outcome::Retry(Failure::new("io", e.to_string()))
            }
        }
    }

    /// Flushes and syncs the current file, so that what it holds survives a
    /// crash (before a write-ahead log checkpoint depends on it).
    pub async fn sync(&mut self) -> Result<(), SinkError> {
        if let Some(c) = self.current.as_mut() {
            let synced = async {
                c.out.flush().await?;
                c.out.get_ref().sync_data().await
            }
            .await;
            synced.map_err(|source| SinkError::Io {
                path: c.path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Flushes and syncs the current file (at shutdown).
    pub async fn close(&mut self) -> Result<(), SinkError> {
        if let Some(mut c) = self.current.take() {
            let synced = async {
                c.out.flush().await?;
                c.out.get_ref().sync_data().await
            }
            .await;
            synced.map_err(|source| SinkError::Io {
                path: c.path,
                source,
            })?;
        }
        Ok(())
    }

    async fn try_write(&mut self, body: &[u8]) -> Result<(), FileError> {
        self.repair().await?;
        let due = self
            .current
            .as_ref()
            .is_some_and(|c| c.len >= self.rotate_bytes || c.opened.elapsed() >= self.rotate_after);
        if due {
            self.rotate().await?;
        }
        if self.current.is_none() {
            self.open().await?;
        }
        let Some(c) = &mut self.current else {
            return Ok(());
        };
        let res = async {
            c.out.write_all(body).await?;
            c.out.flush().await
        }
        .await;
        res.map_err(|e| FileError::new(&c.path, "cannot write", e))?;
        c.len += body.len() as u64;
        Ok(())
    }

    /// After a failed write: drops what was buffered and cuts the file back
    /// to its last flushed length.
    async fn repair(&mut self) -> Result<(), FileError> {
        let Some(c) = self.current.take_if(|c| c.broken) else {
            return Ok(());
        };
        // The buffer may hold a part of the failed batch: it goes.
        let mut file = c.out.into_inner();
        let res = async {
            file.set_len(c.len).await?;
            file.seek(std::io::SeekFrom::End(0)).await.map(drop)
        }
        .await;
        let err = res
            .err()
            .map(|e| FileError::new(&c.path, "cannot repair", e));
        self.current = Some(Current {
            out: BufWriter::with_capacity(BUFFER, file),
            broken: err.is_some(),
            ..c
        });
        err.map_or(Ok(()), Err)
    }

    async fn rotate(&mut self) -> Result<(), FileError> {
        if let Some(c) = &mut self.current {
            let res = async {
                c.out.flush().await?;
                c.out.get_ref().sync_data().await
            }
            .await;
            res.map_err(|e| FileError::new(&c.path, "cannot sync", e))?;
            tracing::debug!(file = %c.path.display(), bytes = c.len, "line-protocol file closed");
        }
        self.current = None;
        Ok(())
    }

    async fn open(&mut self) -> Result<(), FileError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| FileError::new(&self.dir, "cannot create", e))?;
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
        loop {
            let path = self
                .dir
                .join(format!("{PREFIX}{stamp}-{:06}.{EXTENSION}", self.seq));
            self.seq += 1;
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .await
            {
                Ok(file) => {
                    tracing::debug!(file = %path.display(), "line-protocol file opened");
                    self.current = Some(Current {
                        path,
                        out: BufWriter::with_capacity(BUFFER, file),
                        len: 0,
                        opened: Instant::now(),
                        broken: false,
                    });
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(FileError::new(&path, "cannot create", e)),
            }
        }
        self.prune().await
    }

    /// Removes the oldest files past `keep_files` (the current one counts).
    async fn prune(&self) -> Result<(), FileError> {
        if self.keep_files == 0 {
            return Ok(());
        }
        let mut names = Vec::new();
        let mut dir = tokio::fs::read_dir(&self.dir)
            .await
            .map_err(|e| FileError::new(&self.dir, "cannot list", e))?;
        while let Some(entry) = dir
            .next_entry()
            .await
            .map_err(|e| FileError::new(&self.dir, "cannot list", e))?
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(PREFIX)
                && Path::new(&name).extension().is_some_and(|e| e == EXTENSION)
            {
                names.push(name);
            }
        }
        // The names sort by creation time, then by sequence number.
        names.sort();
        let excess = names.len().saturating_sub(self.keep_files);
        for name in &names[..excess] {
            let path = self.dir.join(name);
            tokio::fs::remove_file(&path)
                .await
                .map_err(|e| FileError::new(&path, "cannot remove", e))?;
            tracing::info!(file = %path.display(), keep_files = self.keep_files, "old line-protocol file removed");
        }
        Ok(())
    }
}

/// An I/O error with the file it happened on.
#[derive(Debug, thiserror::Error)]
#[error("{what} {path}: {source}")]
struct FileError {
    what: &'static str,
    path: String,
    source: std::io::Error,
}

impl FileError {
    fn new(path: &Path, what: &'static str, source: std::io::Error) -> Self {
        Self {
            what,
            path: path.display().to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path, rotate_bytes: u64, rotate_s: u64, keep_files: usize) -> FileSinkConfig {
        FileSinkConfig {
            dir: dir.join("points"),
            rotate_bytes,
            rotate_s,
            keep_files,
        }
    }

    /// The files in order, with their contents.
    fn files(dir: &Path) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = std::fs::read_dir(dir)
            .expect("a folder")
            .map(|e| {
                let e = e.expect("an entry");
                let text = std::fs::read_to_string(e.path()).expect("a file");
                (e.file_name().to_string_lossy().into_owned(), text)
            })
            .collect();
        out.sort();
        out
    }

    async fn write(w: &mut FileWriter, body: &str) {
        assert_eq!(w.write(body.as_bytes()).await, Outcome::Written);
    }

    #[tokio::test]
    async fn rotates_past_rotate_bytes() {
        let tmp = tempfile::tempdir().expect("a temp dir");
        let cfg = cfg(tmp.path(), 20, 3600, 0);
        let mut w = FileWriter::new(&cfg).await.expect("a writer");
        write(&mut w, "m f=1 1\nm f=2 2\n").await;
        write(&mut w, "m f=3 3\n").await;
        write(&mut w, "m f=4 4\n").await;
        w.close().await.expect("closed");
        let files = files(&cfg.dir);
        assert_eq!(files.len(), 2, "{files:?}");
        assert_eq!(files[0].1, "m f=1 1\nm f=2 2\nm f=3 3\n");
        assert_eq!(files[1].1, "m f=4 4\n");
        for (name, _) in &files {
            assert_eq!(
                name.len(),
                "points-20261128T231500Z-000001.lp".len(),
                "{name}"
            );
            assert!(name.starts_with("points-2"), "{name}");
            assert_eq!(Path::new(name).extension(), Some("lp".as_ref()), "{name}");
            let stamp = &name[PREFIX.len()..PREFIX.len() + 16];
            assert!(
                chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").is_ok(),
                "{name}"
            );
        }
        assert!(files[0].0 < files[1].0, "names sort in creation order");
    }

    #[tokio::test(start_paused = true)]
    async fn rotates_past_rotate_s() {
        let tmp = tempfile::tempdir().expect("a temp dir");
        let cfg = cfg(tmp.path(), 1 << 20, 60, 0);
        let mut w = FileWriter::new(&cfg).await.expect("a writer");
        write(&mut w, "m f=1 1\n").await;
        tokio::time::advance(Duration::from_secs(59)).await;
        write(&mut w, "m f=2 2\n").await;
        tokio::time::advance(Duration::from_secs(1)).await;
        write(&mut w, "m f=3 3\n").await;
        w.close().await.expect("closed");
        let texts: Vec<String> = files(&cfg.dir).into_iter().map(|f| f.1).collect();
        assert_eq!(texts, ["m f=1 1\nm f=2 2\n", "m f=3 3\n"]);
    }

    #[tokio::test]
    async fn keeps_at_most_keep_files() {
        let tmp = tempfile::tempdir().expect("a temp dir");
        let cfg = cfg(tmp.path(), 1, 3600, 2);
        let mut w = FileWriter::new(&cfg).await.expect("a writer");
        for i in 1..=5 {
            write(&mut w, &format!("m f={i} {i}\n")).await;
        }
        w.close().await.expect("closed");
        let texts: Vec<String> = files(&cfg.dir).into_iter().map(|f| f.1).collect();
        assert_eq!(texts, ["m f=4 4\n", "m f=5 5\n"]);
    }

    #[tokio::test]
    async fn other_files_are_left_alone_and_names_never_clash() {
        let tmp = tempfile::tempdir().expect("a temp dir");
        let cfg = cfg(tmp.path(), 1, 3600, 1);
        std::fs::create_dir_all(&cfg.dir).expect("a folder");
        std::fs::write(cfg.dir.join("notes.txt"), "keep me").expect("a file");
        let mut first = FileWriter::new(&cfg).await.expect("a writer");
        write(&mut first, "a f=1 1\n").await;
        let taken = first.current_path().expect("a file").to_owned();
        first.close().await.expect("closed");
        // A second writer in the same second starts at the same sequence number.
        let mut second = FileWriter::new(&FileSinkConfig {
            keep_files: 0,
            ..cfg.clone()
        })
        .await
        .expect("a writer");
        write(&mut second, "b f=1 1\n").await;
        assert_ne!(second.current_path(), Some(taken.as_path()));
        second.close().await.expect("closed");
        let names: Vec<String> = files(&cfg.dir).into_iter().map(|f| f.0).collect();
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(names.contains(&"notes.txt".to_owned()));
    }
}
