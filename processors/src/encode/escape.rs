//! Escaping of names, tag values and string field values.
//!
//! Every byte that needs care is ASCII, so the input is walked byte by byte and
//! copied in runs: a string that needs no escaping is one `extend_from_slice`.

/// Which bytes need care in a measurement.
pub(super) const MEASUREMENT: u8 = 1;
/// Which bytes need care in a tag key, tag value or field key.
pub(super) const KEY: u8 = 2;
/// Which bytes need care in a string field value.
pub(super) const STRING: u8 = 4;

/// For each byte, the classes ([`MEASUREMENT`], [`KEY`], [`STRING`]) in which
/// it needs care.
const CLASS: [u8; 256] = class_table();

const fn class_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = MEASUREMENT | KEY;
        b += 1;
    }
    table[0x7f] = MEASUREMENT | KEY;
    table[b'\n' as usize] |= STRING;
    table[b'\r' as usize] |= STRING;
    table[b',' as usize] = MEASUREMENT | KEY;
    table[b' ' as usize] = MEASUREMENT | KEY;
    table[b'=' as usize] = KEY;
    table[b'\\' as usize] = MEASUREMENT | KEY | STRING;
    table[b'"' as usize] = STRING;
    table
}

pub(super) const fn needs_care(byte: u8, class: u8) -> bool {
    CLASS[byte as usize] & class != 0
}

/// Writes a measurement (`class` = [`MEASUREMENT`]) or a tag key, tag value or
/// field key (`class` = [`KEY`]).
///
/// Comma and space (and the equals sign for [`KEY`]) get a backslash; a control
/// character becomes an escaped space; a backslash is doubled when the reader
/// would otherwise take it and the next byte for an escape sequence. The caller
/// has rejected a trailing backslash.
pub(super) fn name(buf: &mut Vec<u8>, text: &str, class: u8) {
    let bytes = text.as_bytes();
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_care(b, class) {
            continue;
        }
        match b {
            b'\\' => {
                let before_escape = bytes.get(i + 1).is_some_and(|&n| needs_care(n, class));
                if before_escape {
                    buf.extend_from_slice(&bytes[run..=i]);
                    buf.push(b'\\');
                    run = i + 1;
                }
                // Otherwise the backslash reads back as itself: keep it in the run.
            }
            b',' | b' ' | b'=' => {
                buf.extend_from_slice(&bytes[run..i]);
                buf.push(b'\\');
                buf.push(b);
                run = i + 1;
            }
            _ => {
                // A control character: no escape exists for it.
                buf.extend_from_slice(&bytes[run..i]);
                buf.extend_from_slice(b"\\ ");
                run = i + 1;
            }
        }
    }
    buf.extend_from_slice(&bytes[run..]);
}

/// Writes a string field value, quotes included: double quote and backslash
/// get a backslash; newline and carriage return become a space.
pub(super) fn string(buf: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    buf.push(b'"');
    let mut run = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_care(b, STRING) {
            continue;
        }
        buf.extend_from_slice(&bytes[run..i]);
        match b {
            b'"' | b'\\' => {
                buf.push(b'\\');
                buf.push(b);
            }
            _ => buf.push(b' '),
        }
        run = i + 1;
    }
    buf.extend_from_slice(&bytes[run..]);
    buf.push(b'"');
}

/// What a name reads back as: `text` with every ASCII control character
/// replaced by a space.
#[cfg(test)]
pub(super) fn name_read_back(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_class_table_matches_the_documented_sets() {
        for b in 0..=255u8 {
            let c = char::from(b);
            let name_special = c.is_ascii_control() || matches!(c, ',' | ' ' | '\\');
            assert_eq!(needs_care(b, MEASUREMENT), name_special, "{b:#x}");
            assert_eq!(needs_care(b, KEY), name_special || c == '=', "{b:#x}");
            let string_special = matches!(c, '"' | '\\' | '\n' | '\r');
            assert_eq!(needs_care(b, STRING), string_special, "{b:#x}");
        }
    }
}
