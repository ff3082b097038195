//! The outgoing buffer: incoming [`LineBatch`]es are appended until the
//! buffer reaches a limit, then taken out as chunks of at most
//! `max_lines` lines and `max_bytes` bytes, cut at line ends.
//!
//! Incoming batches are whole lines and say how many: a chunk takes whole
//! batches without looking at their bytes, and scans only the batch it cuts
//! through. A chunk finds its line starts only if it has to be split (a
//! database refusing some of its lines).

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::time::{Duration, Instant};

use crate::config::BatchConfig;
use crate::message::LineBatch;
use crate::wal::Checkpoint;

/// Lines waiting to be written.
#[derive(Debug)]
pub struct Pending {
    max_lines: usize,
    max_bytes: usize,
    max_age: Duration,
    buf: Vec<u8>,
    lines: usize,
    /// The incoming batches still (partly) in `buf`, oldest first.
    segments: VecDeque<Segment>,
    /// When the oldest line in `buf` arrived.
    oldest: Option<Instant>,
}

#[derive(Debug)]
struct Segment {
    /// Lines of this batch not yet taken.
    left: usize,
    /// Bytes of this batch not yet taken.
    bytes: usize,
    raw: usize,
    windows: usize,
    /// Its checkpoint, handed on once the batch is written whole.
    checkpoint: Option<Checkpoint>,
}

/// Lines of each kind whose incoming batch has been taken whole.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kinds {
    /// Raw readings.
    pub raw: usize,
    /// Windows and rollups.
    pub windows: usize,
}

/// A chunk taken out of the buffer, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Whole lines, each ending in `\n`.
    pub body: Bytes,
    /// Lines in `body`.
    lines: usize,
    /// Start of each line in `body`, plus `body.len()` at the end; found
    /// when first needed.
    starts: std::cell::OnceCell<Vec<usize>>,
    /// Kinds of the lines of the incoming batches this chunk completed.
    pub completed: Kinds,
    /// The latest checkpoint of the incoming batches this chunk completed:
    /// once the chunk is written, everything before it is too.
    pub checkpoint: Option<Checkpoint>,
}

impl Chunk {
    /// A chunk of whole lines.
    pub fn new(body: Bytes, lines: usize) -> Self {
        Self {
            body,
            lines,
            starts: std::cell::OnceCell::new(),
            completed: Kinds::default(),
            checkpoint: None,
        }
    }

    /// Lines in the chunk.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// The lines `range` as one body.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Bytes {
        if range.start == 0 && range.end == self.lines {
            return self.body.clone();
        }
        let starts = self.starts.get_or_init(|| {
            let mut starts = Vec::with_capacity(self.lines + 1);
            starts.push(0);
            starts.extend(
                self.body
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i + 1),
            );
            starts
        });
        self.body.slice(starts[range.start]..starts[range.end])
    }
}

impl Pending {
    /// An empty buffer with the given limits.
    pub fn new(cfg: &BatchConfig) -> Self {
        Self {
            max_lines: cfg.max_lines.max(1),
            max_bytes: cfg.max_bytes.max(1),
            max_age: Duration::from_millis(cfg.max_age_ms),
            buf: Vec::with_capacity(cfg.max_bytes.min(16 * 1024 * 1024)),
            lines: 0,
            segments: VecDeque::new(),
            oldest: None,
        }
    }

    /// Appends an incoming batch. A batch without a final newline gets one.
    /// A batch of no line but a checkpoint, pushed while lines wait, waits
    /// with them; pushed on an empty buffer, it is given back, as everything
    /// before it is written.
    pub fn push(&mut self, batch: LineBatch) -> Option<Checkpoint> {
        if batch.is_empty() {
            if self.buf.is_empty() {
                return batch.checkpoint;
            }
            if let Some(last) = self.segments.back_mut() {
                if batch.checkpoint.is_some() {
                    last.checkpoint = batch.checkpoint;
                }
            }
            return None;
        }
        if self.oldest.is_none() {
            self.oldest = Some(Instant::now());
        }
        let lines = match batch.lines() {
            0 => count_lines(&batch.buf),
            n => {
                debug_assert_eq!(n, count_lines(&batch.buf), "a batch miscounts its lines");
                n
            }
        };
        let before = self.buf.len();
        if self.buf.is_empty() {
            self.buf = batch.buf;
        } else {
            self.buf.extend_from_slice(&batch.buf);
        }
        if self.buf.last() != Some(&b'\n') {
            self.buf.push(b'\n');
        }
        self.lines += lines;
        self.segments.push_back(Segment {
            left: lines,
            bytes: self.buf.len() - before,
            raw: batch.raw,
            windows: batch.windows,
            checkpoint: batch.checkpoint,
        });
        None
    }

    /// Whether no line waits.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Lines waiting.
    pub fn lines(&self) -> usize {
        self.lines
    }

    /// Bytes waiting.
    pub fn bytes(&self) -> usize {
        self.buf.len()
    }

    /// Whether a limit of lines or bytes is reached: write now, read no more.
    pub fn is_full(&self) -> bool {
        self.lines >= self.max_lines || self.buf.len() >= self.max_bytes
    }

    /// When the oldest waiting line reaches its maximum age.
    pub fn deadline(&self) -> Option<Instant> {
        self.oldest.map(|t| t + self.max_age)
    }

    /// Takes the first chunk: at most `max_lines` lines and `max_bytes`
    /// bytes, and at least one line. `None` when empty.
    pub fn take(&mut self) -> Option<Chunk> {
        if self.buf.is_empty() {
            return None;
        }
        // Whole batches while they fit.
        let (mut lines, mut end, mut whole) = (0, 0, 0);
        for seg in &self.segments {
            if lines + seg.left > self.max_lines || end + seg.bytes > self.max_bytes {
                break;
            }
            lines += seg.left;
            end += seg.bytes;
            whole += 1;
        }
        // Then lines of the next batch, found by scanning it alone.
        let mut cut = (0, 0);
        if let Some(seg) = self.segments.get(whole) {
            if lines < self.max_lines && end < self.max_bytes {
                for (i, byte) in self.buf[end..end + seg.bytes].iter().enumerate() {
                    if *byte != b'\n' {
                        continue;
                    }
                    let next = end + i + 1;
                    if next > self.max_bytes && lines + cut.0 > 0 {
                        break;
                    }
                    cut = (cut.0 + 1, i + 1);
                    if lines + cut.0 >= self.max_lines || next >= self.max_bytes {
                        break;
                    }
                }
            }
        }
        lines += cut.0;
        end += cut.1;
        let body = if end == self.buf.len() {
            std::mem::take(&mut self.buf)
        } else {
            let rest = self.buf.split_off(end);
            std::mem::replace(&mut self.buf, rest)
        };
        self.lines -= lines;
        let (completed, checkpoint) = self.consume(whole, cut);
        if self.buf.is_empty() {
            self.oldest = None;
        }
        let mut chunk = Chunk::new(Bytes::from(body), lines);
        chunk.completed = completed;
        chunk.checkpoint = checkpoint;
        Some(chunk)
    }

    /// Drops the `whole` batches taken, and `cut` (lines, bytes) of the next.
    fn consume(&mut self, whole: usize, cut: (usize, usize)) -> (Kinds, Option<Checkpoint>) {
        let mut kinds = Kinds::default();
        let mut checkpoint = None;
        for mut seg in self.segments.drain(..whole) {
            kinds.raw += seg.raw;
            kinds.windows += seg.windows;
            if let Some(c) = seg.checkpoint.take() {
                checkpoint = Some(c);
            }
        }
        if let Some(front) = self.segments.front_mut() {
            front.left -= cut.0;
            front.bytes -= cut.1;
            // A batch of one line too long for a chunk is taken whole here.
            if front.left == 0 {
                kinds.raw += front.raw;
                kinds.windows += front.windows;
                if let Some(c) = front.checkpoint.take() {
                    checkpoint = Some(c);
                }
                self.segments.pop_front();
            }
        }
        (kinds, checkpoint)
    }
}

#[allow(clippy::naive_bytecount, reason = "the compiler vectorizes this loop")]
fn count_lines(buf: &[u8]) -> usize {
    let newlines = buf.iter().filter(|b| **b == b'\n').count();
    newlines + usize::from(buf.last().is_some_and(|b| *b != b'\n'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(max_lines: usize, max_bytes: usize) -> BatchConfig {
        BatchConfig {
            max_lines,
            max_bytes,
            max_age_ms: 1000,
            gzip: false,
        }
    }

    fn batch(lines: &[&str], raw: usize) -> LineBatch {
        let mut buf = Vec::new();
        for l in lines {
            buf.extend_from_slice(l.as_bytes());
            buf.push(b'\n');
        }
        LineBatch {
            buf,
            raw,
            windows: lines.len() - raw,
            checkpoint: None,
        }
    }

    #[test]
    fn full_by_lines_and_taken_in_chunks_of_max_lines() {
        let mut p = Pending::new(&cfg(3, 1 << 20));
        p.push(batch(&["a x=1 1", "a x=2 2"], 2));
        assert!(!p.is_full());
        p.push(batch(&["a x=3 3", "w y=1 1"], 1));
        assert!(p.is_full());
        let c = p.take().expect("a chunk");
        assert_eq!(c.body, "a x=1 1\na x=2 2\na x=3 3\n");
        assert_eq!(c.lines(), 3);
        assert_eq!(c.completed, Kinds { raw: 2, windows: 0 });
        assert_eq!(c.slice(1..2), "a x=2 2\n");
        let c = p.take().expect("the rest");
        assert_eq!(c.body, "w y=1 1\n");
        assert_eq!(c.completed, Kinds { raw: 1, windows: 1 });
        assert!(p.is_empty());
        assert!(p.take().is_none());
    }

    #[test]
    fn full_by_bytes_and_cut_at_line_ends() {
        let mut p = Pending::new(&cfg(100, 20));
        p.push(batch(&["m f=1 1", "m f=2 2"], 2));
        assert_eq!(p.bytes(), 16);
        assert!(!p.is_full());
        p.push(batch(&["m f=3 3"], 1));
        assert!(p.is_full());
        let c = p.take().expect("a chunk");
        assert_eq!(c.body, "m f=1 1\nm f=2 2\n");
        assert_eq!(c.completed, Kinds { raw: 2, windows: 0 });
        assert_eq!(p.lines(), 1);
    }

    #[test]
    fn a_line_longer_than_max_bytes_goes_alone() {
        let mut p = Pending::new(&cfg(100, 4));
        p.push(batch(&["long x=1 1", "s x=1 1"], 2));
        assert_eq!(p.take().expect("first").body, "long x=1 1\n");
        assert_eq!(p.take().expect("second").body, "s x=1 1\n");
    }

    #[test]
    fn a_missing_final_newline_is_added() {
        let mut p = Pending::new(&cfg(100, 1 << 20));
        p.push(LineBatch {
            buf: b"a x=1 1\na x=2 2".to_vec(),
            raw: 2,
            windows: 0,
            checkpoint: None,
        });
        p.push(batch(&["a x=3 3"], 1));
        assert_eq!(p.lines(), 3);
        assert_eq!(p.take().expect("chunk").body, "a x=1 1\na x=2 2\na x=3 3\n");
    }

    fn at(next: u64) -> Checkpoint {
        Checkpoint::new(next, Vec::new())
    }

    #[test]
    fn a_checkpoint_comes_out_with_the_chunk_that_completes_its_batch() {
        let mut p = Pending::new(&cfg(2, 1 << 20));
        let mut first = batch(&["a x=1 1", "a x=2 2", "a x=3 3"], 3);
        first.checkpoint = Some(at(3));
        assert_eq!(p.push(first), None);
        let mut second = batch(&["a x=4 4"], 1);
        second.checkpoint = Some(at(4));
        assert_eq!(p.push(second), None);
        // A checkpoint without lines rides on the last waiting batch.
        let empty = LineBatch {
            checkpoint: Some(at(5)),
            ..LineBatch::default()
        };
        assert_eq!(p.push(empty), None);
        let c = p.take().expect("first chunk");
        assert_eq!(c.lines(), 2);
        assert_eq!(
            c.checkpoint, None,
            "the first batch is not written whole yet"
        );
        let c = p.take().expect("second chunk");
        assert_eq!(
            c.checkpoint,
            Some(at(5)),
            "the latest checkpoint of what it completed"
        );
        assert!(p.is_empty());
        // On an empty buffer, a lone checkpoint is due at once.
        let empty = LineBatch {
            checkpoint: Some(at(6)),
            ..LineBatch::default()
        };
        assert_eq!(p.push(empty), Some(at(6)));
    }

    /// Chunks taken from any sequence of batches under any limits hold the
    /// same bytes in the same order, respect the limits (a line too long
    /// goes alone), count their lines right, and slice into their lines.
    #[test]
    fn chunks_are_the_input_cut_at_line_ends_within_the_limits() {
        use rand::{Rng as _, SeedableRng as _};
        let mut rng = rand::rngs::StdRng::seed_from_u64(20_261_129);
        for case in 0..300 {
            let max_lines = rng.random_range(1..12);
            let max_bytes = rng.random_range(1..200);
            let mut p = Pending::new(&cfg(max_lines, max_bytes));
            let (mut input, mut output, mut raw_in, mut raw_out) = (Vec::new(), Vec::new(), 0, 0);
            for _ in 0..rng.random_range(1..10) {
                let n = rng.random_range(1..8);
                let lines: Vec<String> = (0..n)
                    .map(|_| "x".repeat(rng.random_range(1..60)))
                    .collect();
                let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
                let raw = rng.random_range(0..=n);
                raw_in += raw;
                let b = batch(&refs, raw);
                input.extend_from_slice(&b.buf);
                p.push(b);
                while rng.random_bool(0.3) {
                    let Some(c) = p.take() else { break };
                    raw_out += check(&c, max_lines, max_bytes, case);
                    output.extend_from_slice(&c.body);
                }
            }
            while let Some(c) = p.take() {
                raw_out += check(&c, max_lines, max_bytes, case);
                output.extend_from_slice(&c.body);
            }
            assert_eq!(output, input, "case {case}");
            assert_eq!(raw_out, raw_in, "case {case}");
            assert_eq!(p.lines(), 0);
        }
    }

    fn check(c: &Chunk, max_lines: usize, max_bytes: usize, case: usize) -> usize {
        let text = String::from_utf8(c.body.to_vec()).expect("UTF-8");
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        assert_eq!(c.lines(), lines.len(), "case {case}");
        assert!(c.lines() >= 1 && c.lines() <= max_lines, "case {case}");
        assert!(c.body.len() <= max_bytes || c.lines() == 1, "case {case}");
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(c.slice(i..i + 1), line.as_bytes(), "case {case}");
        }
        assert_eq!(c.slice(0..c.lines()), c.body);
        c.completed.raw
    }

    #[tokio::test(start_paused = true)]
    async fn the_deadline_follows_the_oldest_line() {
        let mut p = Pending::new(&cfg(2, 1 << 20));
        assert!(p.deadline().is_none());
        let t0 = Instant::now();
        p.push(batch(&["a x=1 1"], 1));
        tokio::time::advance(Duration::from_millis(300)).await;
        p.push(batch(&["a x=2 2", "a x=3 3"], 2));
        assert_eq!(p.deadline(), Some(t0 + Duration::from_secs(1)));
        p.take();
        assert_eq!(
            p.deadline(),
            Some(t0 + Duration::from_secs(1)),
            "leftover keeps it"
        );
        p.take();
        assert!(p.deadline().is_none());
    }
}
