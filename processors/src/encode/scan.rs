//! Finding a key again in a line this encoder has written, for the
//! duplicate-key check: a Bloom filter first, then an exact search of the line.

/// The two filter bits (0..256) of a key's written form: one multiply over its
/// length and its first and last eight bytes (keys are the encoder's own short
/// names, not adversarial; a false "maybe" only costs a search).
#[inline]
pub(super) fn bloom_bits(key: &[u8]) -> [usize; 2] {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let words = match (key.first_chunk::<8>(), key.last_chunk::<8>()) {
        (Some(head), Some(tail)) => {
            u64::from_le_bytes(*head) ^ u64::from_le_bytes(*tail).rotate_left(29)
        }
        _ => key.iter().fold(0, |h, &b| (h << 8) | u64::from(b)),
    };
    let hash = (words ^ key.len() as u64).wrapping_mul(K);
    [(hash >> 56) as usize, ((hash >> 48) & 0xff) as usize]
}

/// Whether `line` (the tags and fields of a line as this encoder writes them,
/// from the separator after the measurement to the end of a complete tag or
/// field value) holds the tag or field key `key`, compared in written
/// (escaped) form.
///
/// In a name or tag value, a backslash and the byte after it never end the
/// part: they are an escape, a doubled backslash, or a backslash kept before an
/// ordinary character. In a string field value, a backslash always starts a
/// two-byte escape.
#[cold]
pub(super) fn has_key(line: &[u8], key: &[u8]) -> bool {
    let mut i = 0;
    let mut in_fields = false;
    while i < line.len() {
        in_fields |= line[i] == b' ';
        let key_start = i + 1;
        i = skip_name(line, key_start, b'=', b'=');
        if &line[key_start..i] == key {
            return true;
        }
        i += 1;
        i = if in_fields && line.get(i) == Some(&b'"') {
            skip_string(line, i)
        } else {
            skip_name(line, i, b',', b' ')
        };
    }
    false
}

/// The index of the first `stop` or `other_stop` at or after `i` that is not
/// escaped, or the end.
fn skip_name(line: &[u8], mut i: usize, stop: u8, other_stop: u8) -> usize {
    while let Some(&b) = line.get(i) {
        if b == b'\\' {
            i += 2;
        } else if b == stop || b == other_stop {
            return i;
        } else {
            i += 1;
        }
    }
    line.len()
}

/// The index just past the string value that starts (with its quote) at `i`.
fn skip_string(line: &[u8], mut i: usize) -> usize {
    i += 1;
    while let Some(&b) = line.get(i) {
        match b {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    line.len()
}

#[cfg(test)]
mod tests {
    use proptest::collection::vec;
    use proptest::prelude::*;

    use super::*;
    use crate::encode::{encode_point, escape};
    use crate::point::{FieldValue, Point};
    use schemas::Timestamp;

    fn written_key(key: &str) -> Vec<u8> {
        let mut buf = Vec::new();
        escape::name(&mut buf, key, escape::KEY);
        buf
    }

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![any::<String>(), r##"[a-c\\,= "#\n\r\t\x00é]{1,6}"##,]
    }

    proptest! {
        /// Every key of a written line is found, and nothing else is.
        #[test]
        fn finds_exactly_the_keys_of_a_line(
            measurement in text(),
            tags in vec((text(), text()), 0..4),
            fields in vec((text(), text()), 1..4),
            others in vec(text(), 0..4),
        ) {
            let mut point = Point::new(measurement, Timestamp::from_nanos(1));
            for (k, v) in tags {
                point = point.tag(k, v);
            }
            for (i, (k, v)) in fields.into_iter().enumerate() {
                let value = if i.is_multiple_of(2) {
                    FieldValue::String(v.into())
                } else {
                    FieldValue::Integer(-7)
                };
                point = point.field(k, value);
            }
            let mut buf = Vec::new();
            prop_assume!(encode_point(&point, &mut buf).is_ok());
            // Tags and fields: the line without its measurement and " <timestamp>\n".
            let end = buf.iter().rposition(|&b| b == b' ').expect("a timestamp");
            let mut measurement = Vec::new();
            escape::name(&mut measurement, &point.measurement, escape::MEASUREMENT);
            let line = &buf[measurement.len()..end];
            let mut keys: Vec<Vec<u8>> = Vec::new();
            for (k, v) in &point.tags {
                if !v.is_empty() {
                    keys.push(written_key(k));
                }
            }
            keys.extend(point.fields.iter().map(|(k, _)| written_key(k)));
            for key in &keys {
                prop_assert!(has_key(line, key), "{:?} in {:?}", key, line);
            }
            for other in others {
                let other = written_key(&other);
                prop_assert_eq!(has_key(line, &other), keys.contains(&other));
            }
        }
    }
}
