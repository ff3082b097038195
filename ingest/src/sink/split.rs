//! Isolating the lines a database refuses: a refused range of lines is cut
//! in halves and each half sent again, until every refused range is a single
//! line. The other lines are all written; re-sending a line that was already
//! written (InfluxDB 1.x writes the good points of a "partial write") only
//! overwrites the same point.

use std::ops::Range;

/// Ranges of lines still to send, and the single lines refused so far.
#[derive(Debug)]
pub struct Split<E> {
    /// Ranges to send, the next one last.
    todo: Vec<Range<usize>>,
    refused: Vec<(usize, E)>,
}

/// What the database said about a range of lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict<E> {
    /// Written.
    Accepted,
    /// Refused because of its content (400, 422) or its size (413).
    Refused(E),
}

impl<E> Split<E> {
    /// Starts with all `lines` lines as one range.
    pub fn new(lines: usize) -> Self {
        let mut todo = Vec::new();
        if lines > 0 {
            todo.push(0..lines);
        }
        Self {
            todo,
            refused: Vec::new(),
        }
    }

    /// The next range to send, in line order; `None` when done.
    pub fn next_range(&self) -> Option<Range<usize>> {
        self.todo.last().cloned()
    }

    /// Records the verdict on the range [`Split::next_range`] returned.
    pub fn record(&mut self, verdict: Verdict<E>) {
        let Some(range) = self.todo.pop() else {
            return;
        };
        match verdict {
            Verdict::Accepted => {}
            Verdict::Refused(e) if range.len() == 1 => self.refused.push((range.start, e)),
            Verdict::Refused(_) => {
                let mid = range.start + range.len() / 2;
                self.todo.push(mid..range.end);
                self.todo.push(range.start..mid);
            }
        }
    }

    /// The refused lines with the reason given for each, in line order.
    pub fn into_refused(self) -> Vec<(usize, E)> {
        self.refused
    }
}

/// Runs a split to its end with a database given as a function of a range
/// of lines; returns the refused lines.
pub fn isolate<E>(
    lines: usize,
    mut send: impl FnMut(Range<usize>) -> Verdict<E>,
) -> Vec<(usize, E)> {
    let mut split = Split::new(lines);
    while let Some(range) = split.next_range() {
        let verdict = send(range);
        split.record(verdict);
    }
    split.into_refused()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database that refuses any range holding one of `bad`, and records
    /// the lines it wrote.
    fn run(lines: usize, bad: &[usize]) -> (Vec<usize>, Vec<usize>, usize) {
        let mut written = Vec::new();
        let mut calls = 0;
        let refused = isolate(lines, |r| {
            calls += 1;
            if bad.iter().any(|b| r.contains(b)) {
                Verdict::Refused(format!("bad line in {r:?}"))
            } else {
                written.extend(r);
                Verdict::Accepted
            }
        });
        (
            refused.into_iter().map(|(i, _)| i).collect(),
            written,
            calls,
        )
    }

    #[test]
    fn isolates_exactly_the_bad_lines() {
        for (lines, bad) in [
            (1, vec![0]),
            (2, vec![1]),
            (7, vec![0, 6]),
            (100, vec![37]),
            (100, vec![3, 4, 5, 99]),
            (13, (0..13).collect()),
            (1000, vec![0, 1, 500, 998, 999]),
        ] {
            let (refused, written, _) = run(lines, &bad);
            assert_eq!(refused, bad, "{lines} lines");
            let good: Vec<usize> = (0..lines).filter(|i| !bad.contains(i)).collect();
            assert_eq!(written, good, "every good line is written once, in order");
        }
    }

    #[test]
    fn a_clean_batch_is_sent_once() {
        let (refused, written, calls) = run(50, &[]);
        assert!(refused.is_empty());
        assert_eq!(written.len(), 50);
        assert_eq!(calls, 1);
    }

    #[test]
    fn one_bad_line_costs_logarithmically_many_requests() {
        let (_, _, calls) = run(4096, &[1234]);
        assert!(calls <= 2 * 12 + 1, "{calls} requests");
    }

    #[test]
    fn nothing_to_split() {
        let (refused, written, calls) = run(0, &[]);
        assert!(refused.is_empty() && written.is_empty());
        assert_eq!(calls, 0);
    }

    #[test]
    fn the_reason_of_each_line_is_kept() {
        let refused = isolate(4, |r| {
            if r.contains(&2) {
                Verdict::Refused(r.len())
            } else {
                Verdict::Accepted
            }
        });
        assert_eq!(refused, vec![(2, 1)]);
    }
}
