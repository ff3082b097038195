use std::fs;
use std::path::{Path, PathBuf};

use schemas::Timestamp;

use super::log::{Checkpoint, Limits, Log, WalError};
use super::record;

const LIMITS: Limits = Limits { segment_bytes: 256 };

fn topic(i: u64) -> String {
    format!("city/rabat/lighting/lamp-{i}/telemetry")
}

fn payload(i: u64) -> Vec<u8> {
    format!(r#"{{"powerConsumption": {i}}}"#).into_bytes()
}

/// Appends records `from..to`, committing every `every`.
fn write(log: &mut Log, from: u64, to: u64, every: u64) {
    for i in from..to {
        let lsn = log
            .append(
                Timestamp::from_secs(1_795_896_000 + i as i64),
                &topic(i),
                &payload(i),
            )
            .expect("append");
        assert_eq!(lsn, i);
        if (i + 1).is_multiple_of(every) {
            log.commit().expect("commit");
        }
    }
    log.commit().expect("commit");
}

fn replay_all(log: &Log) -> Vec<(u64, String, Vec<u8>)> {
    let mut replay = log.replay();
    let mut out = Vec::new();
    loop {
        let batch = replay.next_batch(5).expect("replay");
        if batch.is_empty() {
            return out;
        }
        out.extend(
            batch
                .into_iter()
                .map(|r| (r.lsn, r.topic, r.payload.to_vec())),
        );
    }
}

fn expected(range: std::ops::Range<u64>) -> Vec<(u64, String, Vec<u8>)> {
    range.map(|i| (i, topic(i), payload(i))).collect()
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    files.sort();
    files
}

/// The end offset of every record in a segment file.
fn record_ends(path: &Path) -> Vec<usize> {
    let data = fs::read(path).expect("segment");
    let base: u64 = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("numbered");
    let (mut off, mut lsn, mut ends) = (16, base, Vec::new());
    while off < data.len() {
        let (_, used) = record::decode(&data[off..], lsn).expect("clean log");
        off += used;
        lsn += 1;
        ends.push(off);
    }
    ends
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).expect("dir") {
        let path = entry.expect("entry").path();
        if path.file_name().is_some_and(|n| n != "lock") {
            fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
        }
    }
}

#[test]
fn records_survive_a_reopen_across_segments() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, rec) = Log::open(dir.path(), LIMITS).expect("open");
        assert_eq!((rec.replay_from, rec.replay_to), (0, 0));
        write(&mut log, 0, 20, 3);
        assert!(log.segments() > 3, "small segments roll");
    }
    let (log, rec) = Log::open(dir.path(), LIMITS).expect("reopen");
    assert_eq!((rec.replay_from, rec.replay_to), (0, 20));
    assert!(rec.truncated.is_none());
    assert_eq!(replay_all(&log), expected(0..20));
}

#[test]
fn a_second_process_cannot_open_the_same_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = Log::open(dir.path(), LIMITS).expect("open");
    assert!(matches!(
        Log::open(dir.path(), LIMITS),
        Err(WalError::Locked(_))
    ));
}

#[test]
fn a_checkpoint_removes_covered_segments_and_replay_starts_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = Log::open(dir.path(), LIMITS).expect("open");
        write(&mut log, 0, 20, 1);
        let before = log.segments();
        let removed = log
            .checkpoint(&Checkpoint::new(11, b"state at 11".to_vec()))
            .expect("checkpoint");
        assert!(removed > 0);
        assert_eq!(log.segments(), before - removed);
        assert_eq!(replay_all(&log), expected(11..20));
    }
    let (mut log, rec) = Log::open(dir.path(), LIMITS).expect("reopen");
    let cp = rec.checkpoint.expect("checkpoint read back");
    assert_eq!(cp.next, 11);
    assert_eq!(cp.windows, b"state at 11");
    assert_eq!((rec.replay_from, rec.replay_to), (11, 20));
    assert_eq!(replay_all(&log), expected(11..20));

    // Everything in the database: the log shrinks to an empty segment.
    log.checkpoint(&Checkpoint::new(20, Vec::new()))
        .expect("checkpoint");
    assert_eq!(log.segments(), 1);
    assert_eq!(log.bytes(), 16);
    assert!(replay_all(&log).is_empty());
    write(&mut log, 20, 22, 1);
    drop(log);
    let (log, rec) = Log::open(dir.path(), LIMITS).expect("reopen");
    assert_eq!((rec.replay_from, rec.replay_to), (20, 22));
    assert_eq!(replay_all(&log), expected(20..22));
}

#[test]
fn a_corrupt_checkpoint_replays_everything_that_is_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = Log::open(dir.path(), LIMITS).expect("open");
        write(&mut log, 0, 10, 1);
        log.checkpoint(&Checkpoint::new(4, vec![1, 2, 3]))
            .expect("checkpoint");
    }
    let path = dir.path().join("checkpoint");
    let mut data = fs::read(&path).expect("checkpoint file");
    data[12] ^= 0x40;
    fs::write(&path, data).expect("write");
    let (log, rec) = Log::open(dir.path(), LIMITS).expect("reopen");
    assert!(rec.checkpoint.is_none());
    let problem = rec.checkpoint_problem.expect("reported");
    assert!(problem.contains("checksum"), "{problem}");
    let replayed = replay_all(&log);
    assert_eq!(replayed.last().map(|r| r.0), Some(9));
    assert!(
        replayed.first().is_some_and(|r| r.0 <= 4),
        "nothing after the lost checkpoint is skipped"
    );
}

#[test]
fn a_checkpoint_past_the_log_continues_numbering_there() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = Log::open(dir.path(), LIMITS).expect("open");
        write(&mut log, 0, 6, 1);
        log.checkpoint(&Checkpoint::new(6, Vec::new()))
            .expect("checkpoint");
    }
    // The tail is lost after the checkpoint was written.
    for f in segment_files(dir.path()) {
        fs::write(&f, b"").expect("empty");
    }
    let (mut log, rec) = Log::open(dir.path(), LIMITS).expect("reopen");
    assert_eq!((rec.replay_from, rec.replay_to), (6, 6));
    assert_eq!(log.next_lsn(), 6);
    write(&mut log, 6, 8, 1);
    assert_eq!(replay_all(&log), expected(6..8));
}

/// The model test: cut or corrupt the log at every byte offset of every
/// segment; recovery yields exactly the records before the damage (a
/// prefix of what was committed), and the log takes appends after it.
#[test]
fn damage_at_any_offset_recovers_exactly_a_prefix() {
    const N: u64 = 10;
    let clean = tempfile::tempdir().expect("tempdir");
    {
        let (mut log, _) = Log::open(clean.path(), LIMITS).expect("open");
        write(&mut log, 0, N, 2);
    }
    let files = segment_files(clean.path());
    assert!(files.len() >= 3, "the test needs several segments");
    let ends: Vec<Vec<usize>> = files.iter().map(|f| record_ends(f)).collect();
    let before: Vec<u64> = ends
        .iter()
        .scan(0_u64, |n, e| {
            let first = *n;
            *n += e.len() as u64;
            Some(first)
        })
        .collect();

    let mut cases = 0;
    for (k, file) in files.iter().enumerate() {
        let len = fs::metadata(file).expect("meta").len() as usize;
        for offset in 0..len {
            for damage in ["truncate", "flip"] {
                let dir = tempfile::tempdir().expect("tempdir");
                copy_dir(clean.path(), dir.path());
                let target = dir.path().join(file.file_name().expect("name"));
                let mut data = fs::read(&target).expect("read");
                if damage == "truncate" {
                    data.truncate(offset);
                } else {
                    data[offset] ^= 0xa5;
                }
                fs::write(&target, &data).expect("write");

                let kept = before[k] + ends[k].iter().filter(|e| **e <= offset).count() as u64;
                let (mut log, rec) = Log::open(dir.path(), LIMITS).unwrap_or_else(|e| {
                    panic!("{damage} at {offset} of {}: {e}", target.display())
                });
                let clean_cut = damage == "truncate"
                    && k == files.len() - 1
                    && (offset == 16 || ends[k].contains(&offset));
                assert!(
                    clean_cut || rec.truncated.is_some(),
                    "{damage} at {offset} of segment {k} went unnoticed"
                );
                assert_eq!(
                    replay_all(&log),
                    expected(0..kept),
                    "{damage} at {offset} of segment {k}"
                );
                write(&mut log, kept, kept + 1, 1);
                drop(log);
                let (log, _) = Log::open(dir.path(), LIMITS).expect("reopen");
                assert_eq!(
                    replay_all(&log),
                    expected(0..kept + 1),
                    "append after {damage} at {offset} of segment {k}"
                );
                cases += 1;
            }
        }
    }
    assert!(cases > 500, "{cases} cases");
}
