//! A scanner for the common shape of a message: one flat JSON object whose
//! keys and strings hold no escapes and whose values are numbers, strings,
//! booleans or null. It reads the bytes in place, without allocating.
//!
//! It gives up (`None`) on anything else — escapes, control characters,
//! invalid UTF-8, nested arrays or objects, a number it cannot convert
//! exactly as `serde_json` does, any syntax error — and the caller then
//! parses the message with `serde_json`, which stays the reference for every
//! result and every error message. Whatever the scanner accepts, `serde_json`
//! accepts too, with the same keys and values in the same order.

use std::borrow::Cow;

use crate::json::Scalar;

/// Significands up to 2^53 convert to `f64` exactly.
const EXACT_SIGNIFICAND: u64 = 1 << 53;

/// The powers of ten that are exact in `f64`.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Marks, in eight bytes read little-endian, the bytes that end the text of a
/// string: a quote, a backslash or a control character. Only the lowest mark
/// is exact (a borrow can mark bytes above it), and only it is used.
#[inline]
fn special_bytes(word: u64) -> u64 {
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let is_quote = quote.wrapping_sub(ONES) & !quote;
    let is_backslash = backslash.wrapping_sub(ONES) & !backslash;
    let is_control = word.wrapping_sub(ONES * 0x20) & !word;
    (is_quote | is_backslash | is_control) & HIGHS
}

/// Past the JSON white space (space, tab, line feed, carriage return) at `pos`.
#[inline]
fn skip_whitespace(bytes: &[u8], mut pos: usize) -> usize {
    while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(pos) {
        pos += 1;
    }
    pos
}

/// Past the string that starts at `pos` (a quote), which must hold no escape
/// and no control character.
#[inline]
fn skip_string(bytes: &[u8], pos: usize) -> Option<usize> {
    if bytes.get(pos) != Some(&b'"') {
        return None;
    }
    let rest = bytes.get(pos + 1..)?;
    let stop = string_end(rest)?;
    (rest.get(stop) == Some(&b'"')).then_some(pos + stop + 2)
}

/// Past a key that starts at `pos` and the colon after it, to its value.
#[inline]
fn skip_key(bytes: &[u8], pos: usize) -> Option<usize> {
    let pos = skip_whitespace(bytes, skip_string(bytes, pos)?);
    if bytes.get(pos) != Some(&b':') {
        return None;
    }
    Some(skip_whitespace(bytes, pos + 1))
}

/// Where the text of a string that starts `bytes` ends: at the first quote,
/// backslash or control character, eight bytes at a time while they last.
#[inline]
fn string_end(bytes: &[u8]) -> Option<usize> {
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let stops = special_bytes(u64::from_le_bytes(chunk.try_into().ok()?));
        if stops != 0 {
            return Some(at + (stops.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = bytes.get(at..)?;
    tail.iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
        .map(|i| at + i)
}

/// Where `byte` first occurs in `bytes`, looking at eight bytes at a time.
#[inline]
pub(crate) fn find_byte(bytes: &[u8], byte: u8) -> Option<usize> {
    let pattern = ONES * u64::from(byte);
    let mut at = 0;
    while let Some(chunk) = bytes.get(at..at + 8) {
        let Ok(chunk) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        let x = u64::from_le_bytes(chunk) ^ pattern;
        let hits = x.wrapping_sub(ONES) & !x & HIGHS;
        if hits != 0 {
            return Some(at + (hits.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = bytes.get(at..)?;
    tail.iter().position(|&b| b == byte).map(|i| at + i)
}

/// What follows in an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next<'a> {
    /// A key, whose value is to be read next.
    Key(&'a str),
    /// The closing brace.
    End,
}

/// A flat JSON object being read, one key and one value at a time.
///
/// Use: [`FlatObject::open`], then [`FlatObject::next_key`] and
/// [`FlatObject::value`] in turn until `next_key` gives [`Next::End`], then
/// [`FlatObject::close`]. Every step returns `None` when the input is not of
/// the shape the scanner reads.
#[derive(Debug)]
pub(crate) struct FlatObject<'a> {
    /// The whole payload, checked once to be UTF-8.
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    first: bool,
}

impl<'a> FlatObject<'a> {
    /// Starts at the opening brace, after any white space.
    pub(crate) fn open(payload: &'a [u8]) -> Option<Self> {
        Self::open_str(std::str::from_utf8(payload).ok()?)
    }

    /// [`FlatObject::open`] for text known to be UTF-8.
    pub(crate) fn open_str(text: &'a str) -> Option<Self> {
        let payload = text.as_bytes();
        let mut object = FlatObject {
            text,
            bytes: payload,
            pos: 0,
            first: true,
        };
        object.skip_whitespace();
        object.eat(b'{')?;
        Some(object)
    }

    /// Starts at the opening bracket of an array, after any white space:
    /// its first element is read next, with [`FlatObject::next_element`],
    /// and [`FlatObject::close`] follows its closing bracket.
    pub(crate) fn open_array_str(text: &'a str) -> Option<Self> {
        let mut array = FlatObject {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            first: true,
        };
        array.skip_whitespace();
        array.eat(b'[')?;
        Some(array)
    }

    /// The next key, or the end of the object.
    #[inline]
    pub(crate) fn next_key(&mut self) -> Option<Next<'a>> {
        self.skip_whitespace();
        match self.peek()? {
            b'}' => {
                self.pos += 1;
                return Some(Next::End);
            }
            b',' if !self.first => {
                self.pos += 1;
                self.skip_whitespace();
            }
            b'"' if self.first => {}
            _ => return None,
        }
        self.first = false;
        self.string().map(Next::Key)
    }

    /// The value of the key just read.
    #[inline]
    pub(crate) fn value(&mut self) -> Option<Scalar<'a>> {
        self.colon()?;
        self.scalar()
    }

    /// The colon after a key, and the white space around it.
    #[inline]
    pub(crate) fn colon(&mut self) -> Option<()> {
        self.skip_whitespace();
        self.eat(b':')?;
        self.skip_whitespace();
        Some(())
    }

    /// The first byte of the value that follows (after a [`FlatObject::colon`]).
    #[inline]
    pub(crate) fn peek_value(&self) -> Option<u8> {
        self.peek()
    }

    /// Where the scanner is, as an offset into the text.
    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    /// The text between two offsets.
    pub(crate) fn slice(&self, from: usize, to: usize) -> Option<&'a str> {
        self.text.get(from..to)
    }

    /// Enters a nested object (`{`) or array (`[`) whose value follows: its
    /// first key or element is read next. Returns what to give
    /// [`FlatObject::leave`] when it ends.
    #[inline]
    pub(crate) fn enter(&mut self, open: u8) -> Option<bool> {
        self.eat(open)?;
        Some(std::mem::replace(&mut self.first, true))
    }

    /// Back in the enclosing object or array, after the nested one ended
    /// ([`Next::End`], or `false` from [`FlatObject::next_element`]).
    #[inline]
    pub(crate) fn leave(&mut self, entered: bool) {
        self.first = entered;
    }

    /// Whether another element of the array entered follows (and is read
    /// next); `false` at its closing bracket.
    #[inline]
    pub(crate) fn next_element(&mut self) -> Option<bool> {
        self.skip_whitespace();
        match self.peek()? {
            b']' => {
                self.pos += 1;
                return Some(false);
            }
            b',' if !self.first => {
                self.pos += 1;
                self.skip_whitespace();
            }
            _ if self.first => {}
            _ => return None,
        }
        self.first = false;
        Some(true)
    }

    /// Skips a value of any kind, nested ones included, under the same rules
    /// as the rest: no escape, numbers that convert exactly, and at most 64
    /// levels of nesting counting `depth`, those the value is in (well below
    /// `serde_json`'s own limit). One loop
    /// over the bytes, which keeps the arrays and objects it is in as bits.
    pub(crate) fn skip_value(&mut self, mut depth: u32) -> Option<()> {
        let bytes = self.bytes;
        let mut pos = self.pos;
        // How many arrays and objects the loop is in, and which are arrays:
        // bit 0 for the innermost.
        let mut open: u32 = 0;
        let mut arrays: u64 = 0;
        loop {
            // A value starts at `pos`.
            match *bytes.get(pos)? {
                opening @ (b'{' | b'[') => {
                    if depth >= 64 {
                        return None;
                    }
                    let array = opening == b'[';
                    pos = skip_whitespace(bytes, pos + 1);
                    let empty = bytes.get(pos) == Some(if array { &b']' } else { &b'}' });
                    if empty {
                        pos += 1;
                    } else {
                        depth += 1;
                        open += 1;
                        arrays = arrays << 1 | u64::from(array);
                        if !array {
                            pos = skip_key(bytes, pos)?;
                        }
                        continue;
                    }
                }
                b'"' => pos = skip_string(bytes, pos)?,
                _ => {
                    self.pos = pos;
                    self.scalar()?;
                    pos = self.pos;
                }
            }
            // After a value: past the arrays and objects that end there, to
            // the next value.
            loop {
                if open == 0 {
                    self.pos = pos;
                    return Some(());
                }
                pos = skip_whitespace(bytes, pos);
                let array = arrays & 1 == 1;
                match *bytes.get(pos)? {
                    b',' => {
                        pos = skip_whitespace(bytes, pos + 1);
                        if !array {
                            pos = skip_key(bytes, pos)?;
                        }
                        break;
                    }
                    b']' if array => {}
                    b'}' if !array => {}
                    _ => return None,
                }
                pos += 1;
                depth -= 1;
                open -= 1;
                arrays >>= 1;
            }
        }
    }

    /// A string, number, boolean or null.
    #[inline]
    pub(crate) fn scalar(&mut self) -> Option<Scalar<'a>> {
        match self.peek()? {
            b'"' => self.string().map(|s| Scalar::Str(Cow::Borrowed(s))),
            b't' => self.literal(b"true").map(|()| Scalar::Bool(true)),
            b'f' => self.literal(b"false").map(|()| Scalar::Bool(false)),
            b'n' => self.literal(b"null").map(|()| Scalar::Null),
            b'-' | b'0'..=b'9' => self.number().map(Scalar::Number),
            _ => None,
        }
    }

    /// Checks that nothing but white space follows the closing brace.
    pub(crate) fn close(mut self) -> Option<()> {
        self.skip_whitespace();
        (self.pos == self.bytes.len()).then_some(())
    }

    #[inline]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    #[inline]
    fn skip_whitespace(&mut self) {
        self.pos = skip_whitespace(self.bytes, self.pos);
    }

    #[inline]
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.pos + word.len();
        (self.bytes.get(self.pos..end)? == word).then(|| self.pos = end)
    }

    /// A string with no escape and no control character.
    #[inline]
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        let rest = self.bytes.get(start..)?;
        let stop = string_end(rest)?;
        if rest.get(stop) != Some(&b'"') {
            return None;
        }
        let text = self.text.get(start..start + stop)?;
        self.pos = start + stop + 1;
        Some(text)
    }

    #[inline]
    fn digit(&self) -> Option<u8> {
        self.peek().filter(u8::is_ascii_digit).map(|b| b - b'0')
    }

    /// A number, as `serde_json` converts it: an integer of up to 20 digits
    /// (`u64`), converted with `as f64`; any other number only when its
    /// significand is at most 2^53 and its decimal exponent within ±22, where
    /// one multiplication or division by an exact power of ten is correctly
    /// rounded, as `serde_json` is with or without `float_roundtrip`.
    #[inline]
    fn number(&mut self) -> Option<f64> {
        let negative = self.eat(b'-').is_some();
        let mut significand: u64 = match self.digit()? {
            0 => {
                self.pos += 1;
                if self.digit().is_some() {
                    return None;
                }
                0
            }
            _ => self.digits(0)?.0,
        };
        let mut exponent: i32 = 0;
        let mut integer = true;
        if self.eat(b'.').is_some() {
            self.digit()?;
            let (s, count) = self.digits(significand)?;
            significand = s;
            exponent = -i32::try_from(count).ok()?;
            integer = false;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            let negative_exponent = match self.peek() {
                Some(b'-') => {
                    self.pos += 1;
                    true
                }
                Some(b'+') => {
                    self.pos += 1;
                    false
                }
                _ => false,
            };
            self.digit()?;
            let mut e: i32 = 0;
            while let Some(d) = self.digit() {
                e = e.checked_mul(10)?.checked_add(i32::from(d))?;
                self.pos += 1;
            }
            exponent = if negative_exponent {
                exponent.checked_sub(e)?
            } else {
                exponent.checked_add(e)?
            };
            integer = false;
        }
        let magnitude = if integer {
            significand as f64
        } else {
            if significand > EXACT_SIGNIFICAND {
                return None;
            }
            let pow = *POW10.get(exponent.unsigned_abs() as usize)?;
            if exponent >= 0 {
                significand as f64 * pow
            } else {
                significand as f64 / pow
            }
        };
        Some(if negative { -magnitude } else { magnitude })
    }

    /// Appends a run of digits to `significand`; gives the result and how
    /// many digits there were, or `None` when it overflows a `u64`.
    #[inline]
    fn digits(&mut self, mut significand: u64) -> Option<(u64, usize)> {
        let start = self.pos;
        while let Some(d) = self.digit() {
            significand = significand.checked_mul(10)?.checked_add(u64::from(d))?;
            self.pos += 1;
        }
        Some((significand, self.pos - start))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &str) -> Option<Vec<(&str, Scalar<'_>)>> {
        let mut object = FlatObject::open(text.as_bytes())?;
        let mut out = Vec::new();
        while let Next::Key(key) = object.next_key()? {
            out.push((key, object.value()?));
        }
        object.close()?;
        Some(out)
    }

    #[test]
    fn reads_the_common_shape() {
        let got = entries(
            " {\"a\" : \"x\",\"b\":1.5e2,\r\n\"c\":true,\"d\":false,\"e\":null,\"f\":-0,\"g\":\"é\"}\n",
        )
        .expect("common shape");
        assert_eq!(
            got,
            [
                ("a", Scalar::Str("x".into())),
                ("b", Scalar::Number(150.0)),
                ("c", Scalar::Bool(true)),
                ("d", Scalar::Bool(false)),
                ("e", Scalar::Null),
                ("f", Scalar::Number(-0.0)),
                ("g", Scalar::Str("é".into())),
            ]
        );
        assert_eq!(entries("{}"), Some(vec![]));
    }

    #[test]
    fn gives_up_on_anything_else() {
        for text in [
            r#"{"a\n":1}"#,
            r#"{"a":"\u0041"}"#,
            "{\"a\":\"\t\"}",
            r#"{"a":[1]}"#,
            r#"{"a":{}}"#,
            r#"{"a":01}"#,
            r#"{"a":1.}"#,
            r#"{"a":.5}"#,
            r#"{"a":+1}"#,
            r#"{"a":1e}"#,
            r#"{"a":1e309}"#,
            r#"{"a":1e23}"#,
            r#"{"a":0.1234567890123456789}"#,
            r#"{"a":123456789012345678901}"#,
            r#"{"a":tru}"#,
            r#"{"a":1,}"#,
            r#"{,"a":1}"#,
            r#"{"a":1,#b":2}"#,
            r#"{"a":1, x"b":2}"#,
            r#"{"a":1,"#,
            r#"{"a":1 "b":2}"#,
            r#"{"a" 1}"#,
            r#"{"a":1}x"#,
            "{\"a\":1}\x0c",
            r#"{"a":1"#,
            "[]",
            "",
        ] {
            assert_eq!(entries(text), None, "{text}");
        }
    }

    proptest::proptest! {
        #[test]
        fn eight_bytes_at_a_time_stop_where_one_at_a_time_does(
            bytes in proptest::array::uniform8(proptest::sample::select(
                &[b'"', b'\\', 0, 0x1f, 0x20, 0x21, b'a', 0x7f, 0x80, 0xe9, 0xff][..],
            )),
        ) {
            let stops = special_bytes(u64::from_le_bytes(bytes));
            let first = bytes.iter().position(|&b| b == b'"' || b == b'\\' || b < 0x20);
            let found = (stops != 0).then(|| (stops.trailing_zeros() / 8) as usize);
            proptest::prop_assert_eq!(found, first, "{:?}", bytes);
        }
    }

    proptest::proptest! {
        #[test]
        fn find_byte_finds_the_first(
            bytes in proptest::collection::vec(proptest::sample::select(&[b'/', b'a', 0, 0x2e, 0x2f ^ 0x80, 0xff][..]), 0..40),
        ) {
            let first = bytes.iter().position(|&b| b == b'/');
            proptest::prop_assert_eq!(find_byte(&bytes, b'/'), first);
        }
    }

    /// Where the value at the start of `text` ends, as [`FlatObject::skip_value`]
    /// finds it.
    fn skipped(text: &str) -> Option<usize> {
        let mut value = FlatObject {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            first: true,
        };
        value.skip_value(1)?;
        Some(value.offset())
    }

    /// JSON texts of every shape, nested up to four levels, with white
    /// space, escapes and control characters here and there.
    fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let whitespace = || prop_oneof![6 => Just(""), 1 => Just(" "), 1 => Just("\n ")];
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("false".to_owned()),
            "-?(0|[1-9][0-9]{0,3})(\\.[0-9]{1,3})?([eE][+-]?[0-9]{1,2})?",
            "\"[a-z_ é]{0,14}\"",
            "\"[a-z\\\\\"\t]{0,6}\"",
        ];
        leaf.prop_recursive(4, 40, 4, move |inner| {
            prop_oneof![
                (
                    prop::collection::vec((whitespace(), inner.clone()), 0..4),
                    whitespace()
                )
                    .prop_map(|(items, end)| {
                        let items: Vec<String> = items
                            .into_iter()
                            .map(|(ws, v)| format!("{ws}{v}"))
                            .collect();
                        format!("[{}{end}]", items.join(","))
                    }),
                (
                    prop::collection::vec(("\"[a-z_]{0,10}\"", whitespace(), inner), 0..4),
                    whitespace()
                )
                    .prop_map(|(entries, end)| {
                        let entries: Vec<String> = entries
                            .into_iter()
                            .map(|(k, ws, v)| format!("{ws}{k}{ws}:{ws}{v}"))
                            .collect();
                        format!("{{{}{end}}}", entries.join(","))
                    }),
            ]
        })
    }

    /// A JSON text with a few bytes put in or taken out somewhere.
    fn edited_json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        (
            json_text(),
            any::<prop::sample::Index>(),
            prop_oneof![
                3 => Just(""),
                1 => prop::sample::select(&[",", ":", "{", "}", "[", "]", "\"", " ", "1", "x"][..]),
            ],
            prop_oneof![3 => Just(0_usize), 1 => Just(1)],
            prop_oneof![3 => Just(""), 1 => Just(", 1"), 1 => Just("}")],
        )
            .prop_map(|(text, at, insert, cut, after)| {
                let at = (0..=at.index(text.len() + 1).min(text.len()))
                    .rev()
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(0);
                let end = ((at + cut).min(text.len())..=text.len())
                    .find(|&i| text.is_char_boundary(i))
                    .unwrap_or(text.len());
                format!("{}{insert}{}{after}", &text[..at], &text[end..])
            })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        #[test]
        fn skipped_values_end_where_serde_json_ends_them(text in edited_json_text()) {
            if let Some(end) = skipped(&text) {
                proptest::prop_assert!(
                    serde_json::from_str::<serde::de::IgnoredAny>(&text[..end]).is_ok(),
                    "{:?} skipped to {}",
                    text,
                    end
                );
                // Where what follows does not run on from the value.
                let mut values = serde_json::Deserializer::from_str(&text)
                    .into_iter::<serde::de::IgnoredAny>();
                if let Some(Ok(_)) = values.next() {
                    proptest::prop_assert_eq!(values.byte_offset(), end, "{:?}", text);
                }
            }
        }
    }

    /// The property above proves little unless many values are skipped.
    #[test]
    fn edited_values_are_often_skipped() {
        use proptest::strategy::{Strategy, ValueTree};
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy = edited_json_text();
        let mut count = 0;
        for _ in 0..1000 {
            let text = strategy.new_tree(&mut runner).expect("a case").current();
            count += usize::from(skipped(&text).is_some());
        }
        assert!((300..950).contains(&count), "{count} of 1000 skipped");
    }

    #[test]
    fn nesting_is_skipped_to_64_levels() {
        for (levels, skips) in [(63, true), (64, false)] {
            let text = format!(
                "{}1{}",
                "[{\"a\":".repeat(levels / 2),
                "}]".repeat(levels / 2)
            );
            let text = if levels % 2 == 1 {
                format!("[{text}]")
            } else {
                text
            };
            assert_eq!(skipped(&text).is_some(), skips, "{levels}");
        }
    }

    #[test]
    fn long_strings_are_read_whole() {
        let long = "x".repeat(37);
        for text in [
            format!("{long}é{long}"),
            long.clone(),
            "abcdefgh".to_owned(),
        ] {
            let object = format!(r#"{{"{text}":"{text}"}}"#);
            assert_eq!(
                entries(&object),
                Some(vec![(text.as_str(), Scalar::Str(text.as_str().into()))])
            );
            for bad in ["\\n", "\t", "\""] {
                let object = format!(r#"{{"k":"{text}{bad}{long}"}}"#);
                assert_eq!(entries(&object), None, "{object}");
            }
        }
    }

    #[test]
    fn numbers_convert_as_serde_json_does() {
        for text in [
            "0",
            "-0",
            "0.19",
            "229.4",
            "-40.5",
            "1e22",
            "9007199254740993",
            "18446744073709551615",
            "-9223372036854775809",
            "4.6e-3",
            "1E+2",
            "0.000001",
        ] {
            let object = format!(r#"{{"k":{text}}}"#);
            let got = entries(&object).expect("exact");
            let want: f64 = serde_json::from_str(text).expect("valid");
            assert_eq!(got, [("k", Scalar::Number(want))], "{text}");
            let Scalar::Number(n) = got[0].1 else {
                panic!("{text}: not a number");
            };
            assert_eq!(n.to_bits(), want.to_bits(), "{text}");
        }
    }
}
