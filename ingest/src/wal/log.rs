//! The log on disk: numbered segment files, a checkpoint file and a lock.
//!
//! ```text
//! {dir}/lock                         held (flock) while a process uses the log
//! {dir}/00000000000000000000.wal     segment: magic, base sequence number, records
//! {dir}/00000000000000052311.wal
//! {dir}/checkpoint                   where replay starts, and the window state there
//! ```
//!
//! Every record carries its sequence number (LSN); a segment holds the
//! records from its base on, without gaps. Appends are buffered and made
//! durable by [`Log::commit`] (write, then `fdatasync`): many messages, one
//! sync. A new segment is synced with its folder before records go in; a
//! checkpoint is written to a temporary file, synced, renamed and the folder
//! synced, and only then are the segments it covers removed.
//!
//! [`Log::open`] recovers: the first record that is cut short, fails its
//! checksum or is out of sequence ends the log there. The file is truncated
//! at that record and later segments are removed, so what remains is always
//! a prefix of what was committed.

use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use schemas::Timestamp;

use super::record::{self, Bad, Record};

const SEGMENT_MAGIC: &[u8; 8] = b"MDNWAL01";
/// Magic and base sequence number.
const SEGMENT_HEADER: usize = 16;
const CHECKPOINT_MAGIC: &[u8; 8] = b"MDNCKP01";
const CHECKPOINT_FILE: &str = "checkpoint";
const CHECKPOINT_TMP: &str = "checkpoint.tmp";
const LOCK_FILE: &str = "lock";
const SEGMENT_SUFFIX: &str = ".wal";

/// What goes wrong with the log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// A file or folder cannot be read, written or created.
    #[error("write-ahead log {}: {source}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Data could not be made durable: the service must stop rather than
    /// acknowledge messages that may not be on disk.
    #[error("write-ahead log: fsync of {} failed: {source}", path.display())]
    Sync {
        /// The file or folder.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Another process uses the same folder.
    #[error("write-ahead log {}: another process holds its lock (is another ingest running with the same wal.dir?)", .0.display())]
    Locked(PathBuf),
    /// A record that recovery accepted does not read back.
    #[error("write-ahead log {}: record {lsn} does not read back: {bad}", path.display())]
    Unreadable {
        /// The segment.
        path: PathBuf,
        /// The record expected.
        lsn: u64,
        /// What is wrong.
        bad: Bad,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_owned(),
        source,
    }
}

fn sync_err(path: &Path) -> impl FnOnce(std::io::Error) -> WalError + '_ {
    move |source| WalError::Sync {
        path: path.to_owned(),
        source,
    }
}

/// The state saved with a checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// Replay starts at this sequence number: every earlier record is in the
    /// database, and so is everything derived from it.
    pub next: u64,
    /// The window state after processing every record before `next`.
    pub windows: Vec<u8>,
    /// Shared by every checkpoint its maker has in flight, so that it can
    /// count them (window images can be large).
    pub alive: Option<std::sync::Arc<()>>,
}

impl Checkpoint {
    /// A checkpoint at `next` with this window state.
    pub fn new(next: u64, windows: Vec<u8>) -> Self {
        Self {
            next,
            windows,
            alive: None,
        }
    }
}

/// A place where recovery cut the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncation {
    /// The segment cut (or removed, at offset 0).
    pub segment: PathBuf,
    /// Where the bad bytes start.
    pub offset: u64,
    /// Bytes dropped from this segment.
    pub dropped_bytes: u64,
    /// Later segments removed with it.
    pub removed_segments: usize,
    /// What was wrong there.
    pub reason: String,
}

/// What recovery found.
#[derive(Debug, Clone, Default)]
pub struct Recovery {
    /// The last checkpoint, if one was readable.
    pub checkpoint: Option<Checkpoint>,
    /// Why a checkpoint file was present but not used.
    pub checkpoint_problem: Option<String>,
    /// Records to replay: `replay_from..replay_to`.
    pub replay_from: u64,
    /// The next sequence number.
    pub replay_to: u64,
    /// Where the log was cut (at most one place).
    pub truncated: Option<Truncation>,
    /// Segments removed because a checkpoint covered them.
    pub collected: usize,
}

/// Sizes of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A segment is closed once it holds this many bytes.
    pub segment_bytes: u64,
}

#[derive(Debug, Clone)]
struct Segment {
    base: u64,
    path: PathBuf,
    /// Bytes in the file, header included.
    bytes: u64,
}

/// An open log, ready to append.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    _lock: File,
    limits: Limits,
    /// Oldest first; the last one is the segment being appended to.
    segments: Vec<Segment>,
    active: File,
    /// Records appended but not yet written.
    buf: Vec<u8>,
    /// The sequence number of the next record.
    next: u64,
    /// Every record before this is on disk and synced.
    durable: u64,
    /// Replay starts here.
    checkpoint: u64,
}

fn segment_path(dir: &Path, base: u64) -> PathBuf {
    dir.join(format!("{base:020}{SEGMENT_SUFFIX}"))
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .map_err(io(dir))?
        .sync_all()
        .map_err(sync_err(dir))
}

fn remove(path: &Path) -> Result<(), WalError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io(path)(e)),
    }
}

/// The segment files in `dir`, by base sequence number.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(SEGMENT_SUFFIX) else {
            continue;
        };
        if stem.len() == 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(base) = stem.parse::<u64>() {
                found.push((base, entry.path()));
            }
        }
    }
    found.sort_unstable();
    Ok(found)
}

fn read_checkpoint(dir: &Path) -> Result<Option<Result<Checkpoint, String>>, WalError> {
    let path = dir.join(CHECKPOINT_FILE);
    let data = match fs::read(&path) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    Ok(Some(parse_checkpoint(&data)))
}

fn parse_checkpoint(data: &[u8]) -> Result<Checkpoint, String> {
    const FIXED: usize = 8 + 8 + 8;
    if data.len() < FIXED + 4 {
        return Err(format!("{} bytes, too short", data.len()));
    }
    if &data[..8] != CHECKPOINT_MAGIC {
        return Err("not a checkpoint file (magic)".to_owned());
    }
    let (body, crc) = data.split_at(data.len() - 4);
    let stored = u32::from_le_bytes(crc.try_into().unwrap_or_default());
    let computed = crc32fast::hash(body);
    if stored != computed {
        return Err(format!(
            "checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
        ));
    }
    let next = u64::from_le_bytes(body[8..16].try_into().unwrap_or_default());
    let len = u64::from_le_bytes(body[16..24].try_into().unwrap_or_default());
    if usize::try_from(len).ok() != Some(body.len() - FIXED) {
        return Err(format!(
            "window state of {len} bytes in a file of {}",
            data.len()
        ));
    }
    Ok(Checkpoint::new(next, body[FIXED..].to_vec()))
}

/// Scans one segment; returns the end of its valid records (bytes) and the
/// sequence number after its last record, or where and why it goes bad.
fn scan(data: &[u8], base: u64) -> (u64, u64, Option<String>) {
    if data.len() < SEGMENT_HEADER {
        return (
            0,
            base,
            Some(format!("header cut short ({} bytes)", data.len())),
        );
    }
    if &data[..8] != SEGMENT_MAGIC {
        return (0, base, Some("not a segment (magic)".to_owned()));
    }
    let stored = u64::from_le_bytes(data[8..16].try_into().unwrap_or_default());
    if stored != base {
        return (
            0,
            base,
            Some(format!("header says base {stored}, file name says {base}")),
        );
    }
    let mut off = SEGMENT_HEADER;
    let mut lsn = base;
    while off < data.len() {
        match record::decode(&data[off..], lsn) {
            Ok((_, used)) => {
                off += used;
                lsn += 1;
            }
            Err(bad) => return (off as u64, lsn, Some(format!("record {lsn}: {bad}"))),
        }
    }
    (off as u64, lsn, None)
}

fn create_segment(dir: &Path, base: u64) -> Result<(Segment, File), WalError> {
    let path = segment_path(dir, base);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    let mut header = [0_u8; SEGMENT_HEADER];
    header[..8].copy_from_slice(SEGMENT_MAGIC);
    header[8..].copy_from_slice(&base.to_le_bytes());
    file.write_all(&header).map_err(io(&path))?;
    file.sync_all().map_err(sync_err(&path))?;
    sync_dir(dir)?;
    Ok((
        Segment {
            base,
            path,
            bytes: SEGMENT_HEADER as u64,
        },
        file,
    ))
}

impl Log {
    /// Opens (or creates) the log in `dir`, recovering what a crash left:
    /// see the module documentation.
    pub fn open(dir: &Path, limits: Limits) -> Result<(Self, Recovery), WalError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Err(WalError::Locked(dir.to_owned())),
            Err(fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        remove(&dir.join(CHECKPOINT_TMP))?;

        let mut recovery = Recovery::default();
        match read_checkpoint(dir)? {
            Some(Ok(cp)) => recovery.checkpoint = Some(cp),
            Some(Err(problem)) => recovery.checkpoint_problem = Some(problem),
            None => {}
        }

        let mut segments: Vec<Segment> = Vec::new();
        let mut end: Option<u64> = None;
        let listed = list_segments(dir)?;
        let mut cut_at: Option<usize> = None;
        for (i, (base, path)) in listed.iter().enumerate() {
            if let Some(expected) = end {
                if *base != expected {
                    cut_at = Some(i);
                    recovery.truncated = Some(Truncation {
                        segment: path.clone(),
                        offset: 0,
                        dropped_bytes: fs::metadata(path).map_or(0, |m| m.len()),
                        removed_segments: 0,
                        reason: format!(
                            "segment starts at {base}, the previous one ends at {expected}"
                        ),
                    });
                    break;
                }
            }
            let data = fs::read(path).map_err(io(path))?;
            let (valid, after, problem) = scan(&data, *base);
            if let Some(reason) = problem {
                recovery.truncated = Some(Truncation {
                    segment: path.clone(),
                    offset: valid,
                    dropped_bytes: data.len() as u64 - valid,
                    removed_segments: 0,
                    reason,
                });
                if valid >= SEGMENT_HEADER as u64 {
                    let file = OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(io(path))?;
                    file.set_len(valid).map_err(io(path))?;
                    file.sync_all().map_err(sync_err(path))?;
                    segments.push(Segment {
                        base: *base,
                        path: path.clone(),
                        bytes: valid,
                    });
                    end = Some(after);
                    cut_at = Some(i + 1);
                } else {
                    cut_at = Some(i);
                }
                break;
            }
            segments.push(Segment {
                base: *base,
                path: path.clone(),
                bytes: valid,
            });
            end = Some(after);
        }
        if let Some(from) = cut_at {
            let removed = &listed[from..];
            for (_, path) in removed {
                remove(path)?;
            }
            if let Some(t) = recovery.truncated.as_mut() {
                // The segment cut at its header is among the removed.
                t.removed_segments = removed.len().saturating_sub(usize::from(t.offset == 0));
            }
            sync_dir(dir)?;
        }

        let checkpoint = recovery.checkpoint.as_ref().map_or(0, |c| c.next);
        let first = segments.first().map(|s| s.base);
        let next = end.unwrap_or(checkpoint).max(checkpoint);
        recovery.replay_from = match first {
            Some(first) if first > checkpoint => first,
            _ => checkpoint,
        }
        .min(next);
        recovery.replay_to = next;

        let (active, file) = match segments.last() {
            Some(last) if end == Some(next) => {
                let file = OpenOptions::new()
                    .append(true)
                    .open(&last.path)
                    .map_err(io(&last.path))?;
                (None, file)
            }
            _ => {
                let (segment, file) = create_segment(dir, next)?;
                (Some(segment), file)
            }
        };
        segments.extend(active);
        let mut log = Self {
            dir: dir.to_owned(),
            _lock: lock,
            limits,
            segments,
            active: file,
            buf: Vec::new(),
            next,
            durable: next,
            checkpoint: recovery.replay_from,
        };
        recovery.collected = log.collect()?;
        Ok((log, recovery))
    }

    /// The sequence number the next record gets.
    pub fn next_lsn(&self) -> u64 {
        self.next
    }

    /// Where replay would start: the last checkpoint.
    pub fn checkpoint_lsn(&self) -> u64 {
        self.checkpoint
    }

    /// Bytes of the log on disk, appended records not yet written included.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum::<u64>() + self.buf.len() as u64
    }

    /// Segment files.
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends a record (buffered until [`Log::commit`]); returns its
    /// sequence number.
    pub fn append(
        &mut self,
        received_at: Timestamp,
        topic: &str,
        payload: &[u8],
    ) -> Result<u64, WalError> {
        let len = record::encoded_len(topic, payload) as u64;
        let filled = self.active_bytes() + self.buf.len() as u64;
        if filled > SEGMENT_HEADER as u64 && filled + len > self.limits.segment_bytes {
            self.roll()?;
        }
        let lsn = self.next;
        record::encode(&mut self.buf, lsn, received_at, topic, payload);
        self.next += 1;
        Ok(lsn)
    }

    /// Writes the appended records and syncs them: when it returns `Ok`,
    /// every record appended so far survives a crash.
    pub fn commit(&mut self) -> Result<(), WalError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.write_buffer()?;
        let path = &self.active_segment().path;
        self.active.sync_data().map_err(sync_err(path))?;
        self.durable = self.next;
        Ok(())
    }

    /// Records that every record before `cp.next` (and everything derived
    /// from it) is in the database, with the window state at that point;
    /// removes the segments it covers. Returns how many were removed.
    pub fn checkpoint(&mut self, cp: &Checkpoint) -> Result<usize, WalError> {
        debug_assert!(cp.next <= self.durable, "checkpoint past the durable end");
        let next = cp.next.min(self.durable);
        if next < self.checkpoint {
            return Ok(0);
        }
        let tmp = self.dir.join(CHECKPOINT_TMP);
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(CHECKPOINT_MAGIC);
        header.extend_from_slice(&next.to_le_bytes());
        header.extend_from_slice(&(cp.windows.len() as u64).to_le_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        crc.update(&cp.windows);
        {
            // The window state can be tens of megabytes: written in place, not copied.
            let mut file = std::io::BufWriter::new(File::create(&tmp).map_err(io(&tmp))?);
            file.write_all(&header).map_err(io(&tmp))?;
            file.write_all(&cp.windows).map_err(io(&tmp))?;
            file.write_all(&crc.finalize().to_le_bytes())
                .map_err(io(&tmp))?;
            let file = file.into_inner().map_err(|e| io(&tmp)(e.into_error()))?;
            file.sync_all().map_err(sync_err(&tmp))?;
        }
        let path = self.dir.join(CHECKPOINT_FILE);
        fs::rename(&tmp, &path).map_err(io(&path))?;
        sync_dir(&self.dir)?;
        self.checkpoint = next;
        // Everything is in the database: start a fresh segment once the
        // current one is worth removing.
        if next == self.next
            && self.buf.is_empty()
            && self.active_bytes() * 4 >= self.limits.segment_bytes
        {
            self.roll()?;
        }
        self.collect()
    }

    /// Reads the records from the last checkpoint on, `max` at a time.
    pub fn replay(&self) -> Replay {
        let start = self
            .segments
            .iter()
            .rposition(|s| s.base <= self.checkpoint)
            .unwrap_or(0);
        Replay {
            segments: self.segments[start..]
                .iter()
                .map(|s| (s.base, s.path.clone(), s.bytes))
                .collect(),
            current: None,
            from: self.checkpoint,
            to: self.durable,
        }
    }

    fn active_segment(&self) -> &Segment {
        // `open` always leaves at least one segment.
        &self.segments[self.segments.len() - 1]
    }

    fn active_bytes(&self) -> u64 {
        self.active_segment().bytes
    }

    fn write_buffer(&mut self) -> Result<(), WalError> {
        let n = self.buf.len() as u64;
        let last = self.segments.len() - 1;
        let path = &self.segments[last].path;
        self.active.write_all(&self.buf).map_err(io(path))?;
        self.segments[last].bytes += n;
        self.buf.clear();
        Ok(())
    }

    /// Closes the active segment (synced) and starts the next one.
    fn roll(&mut self) -> Result<(), WalError> {
        if !self.buf.is_empty() {
            self.write_buffer()?;
        }
        let path = self.active_segment().path.clone();
        self.active.sync_data().map_err(sync_err(&path))?;
        let (segment, file) = create_segment(&self.dir, self.next)?;
        self.segments.push(segment);
        self.active = file;
        Ok(())
    }

    /// Removes the closed segments whose records all precede the checkpoint.
    fn collect(&mut self) -> Result<usize, WalError> {
        let covered = self
            .segments
            .windows(2)
            .take_while(|pair| pair[1].base <= self.checkpoint)
            .count();
        if covered == 0 {
            return Ok(0);
        }
        for segment in self.segments.drain(..covered) {
            remove(&segment.path)?;
        }
        sync_dir(&self.dir)?;
        Ok(covered)
    }
}

/// Reads records back, segment by segment.
#[derive(Debug)]
pub struct Replay {
    segments: std::collections::VecDeque<(u64, PathBuf, u64)>,
    current: Option<(PathBuf, Vec<u8>, usize, u64)>,
    from: u64,
    to: u64,
}

impl Replay {
    /// The next records, at most `max`; empty at the end.
    pub fn next_batch(&mut self, max: usize) -> Result<Vec<Record>, WalError> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some((path, data, off, lsn)) = self.current.as_mut() else {
                let Some((base, path, bytes)) = self.segments.pop_front() else {
                    break;
                };
                let mut data = fs::read(&path).map_err(io(&path))?;
                data.truncate(usize::try_from(bytes).unwrap_or(usize::MAX));
                self.current = Some((path, data, SEGMENT_HEADER, base));
                continue;
            };
            if *off >= data.len() || *lsn >= self.to {
                self.current = None;
                continue;
            }
            let (rec, used) =
                record::decode(&data[*off..], *lsn).map_err(|bad| WalError::Unreadable {
                    path: path.clone(),
                    lsn: *lsn,
                    bad,
                })?;
            *off += used;
            *lsn += 1;
            if rec.lsn >= self.from {
                out.push(rec);
            }
        }
        Ok(out)
    }
}
