//! The fast path of the common line: staged in a buffer of fixed size with
//! copies of fixed size, then appended to the caller's buffer at once.
//!
//! A [`Stage`] writes what the general path writes for a line made only of
//! prepared keys of one [`KeySet`](super::KeySet), names and tag values that
//! need no escape, short decimal floats (those [`super::number`] writes
//! without `ryu`), integers, booleans and string values that need no escape.
//! It copies every prepared key as one block of [`BLOCK`] bytes and writes
//! numbers into blocks of their own, so no step calls `memcpy` for a few
//! bytes. Anything else — an escape, a float of another form, a text key, a
//! key of another set, a duplicate key, a line longer than the stage — makes
//! it give up (`None`), and the caller writes the line through the general
//! path, which stays the reference for every byte and every error.

use schemas::Timestamp;

use super::escape;
use super::prepared::{KeyRun, PreparedKey};

/// Bytes of a prepared key's block: its written form and `=`, padded.
pub(crate) const BLOCK: usize = 32;

/// Longest line staged; longer ones take the general path.
const ROOM: usize = 1024;

/// Bytes a float field may take as [`Stage::floats`] writes it: the
/// separator, the key's block and the value's block.
const FIELD: usize = 1 + 2 * BLOCK;

/// Decimals a short float may have, as in [`super::number`].
const POW10: [f64; 4] = [1.0, 10.0, 100.0, 1000.0];

/// Two ASCII digits for each number below 100.
const DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0; 2]; 100];
    let mut i = 0;
    while i < 100 {
        pairs[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    pairs
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Whether any of the eight bytes of `word` is `byte`.
#[inline]
fn has_byte(word: u64, byte: u8) -> u64 {
    let x = word ^ (ONES * u64::from(byte));
    x.wrapping_sub(ONES) & !x & HIGHS
}

/// Whether `text` holds no byte that needs care in a name or tag value
/// (control characters, comma, space, equals sign, backslash): then it is
/// written as it is, and cannot end with a backslash.
#[inline]
fn plain_name(text: &[u8]) -> bool {
    let mut chunks = text.chunks_exact(8);
    for chunk in &mut chunks {
        let Ok(chunk) = <[u8; 8]>::try_from(chunk) else {
            return false;
        };
        let word = u64::from_le_bytes(chunk);
        // Any byte below 0x21: a control character or a space.
        let control = word.wrapping_sub(ONES * 0x21) & !word & HIGHS;
        let special = has_byte(word, b',')
            | has_byte(word, b'=')
            | has_byte(word, b'\\')
            | has_byte(word, 0x7f);
        if control | special != 0 {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| !escape::needs_care(b, escape::KEY))
}

/// Whether `text`, as a tag value, is written as it is (no byte needs an
/// escape, and it cannot end with a backslash): what the stage checks of
/// every tag value, for values checked once and kept.
pub(crate) fn plain_tag_value(text: &str) -> bool {
    plain_name(text.as_bytes())
}

/// A line being staged; see the [module](self) documentation.
#[derive(Debug)]
pub(crate) struct Stage {
    /// The line so far, then room for one more block.
    bytes: [u8; ROOM + BLOCK],
    len: usize,
    /// Whether a field is written.
    fields: bool,
    /// The set of the keys written, and their bits.
    set: u64,
    mask: u128,
    /// The last float written: its bits and where its text is (`to` is 0
    /// before the first).
    last_bits: u64,
    last_from: usize,
    last_to: usize,
    /// Cleared by the first step that gives up.
    ok: bool,
    /// The last timestamp written, and its text (`time_len` is 0 before
    /// the first): the lines of a batch of windows share their start.
    time: i64,
    time_text: [u8; BLOCK],
    time_len: usize,
}

impl Default for Stage {
    fn default() -> Self {
        Self::new()
    }
}

impl Stage {
    /// An empty stage.
    pub(crate) const fn new() -> Self {
        Self {
            bytes: [0; ROOM + BLOCK],
            len: 0,
            fields: false,
            set: 0,
            mask: 0,
            last_bits: 0,
            last_from: 0,
            last_to: 0,
            ok: true,
            time: 0,
            time_text: [0; BLOCK],
            time_len: 0,
        }
    }
}

/// A measurement checked once for [`Stage::start_named`]: when the stage can
/// take it, its text as one padded block.
#[derive(Debug, Clone)]
pub(crate) struct StagedName {
    block: [u8; BLOCK],
    /// 0 when the stage must check the text itself (and give up on it).
    len: u8,
}

impl StagedName {
    pub(crate) fn new(measurement: &str) -> Self {
        let bytes = measurement.as_bytes();
        let mut block = [0; BLOCK];
        // What `Stage::start` checks, and room for the block.
        let plain = bytes.first().is_some_and(|&b| b != b'#') && plain_name(bytes);
        let len = match block.get_mut(..bytes.len()) {
            Some(head) if plain => {
                head.copy_from_slice(bytes);
                bytes.len() as u8
            }
            _ => 0,
        };
        Self { block, len }
    }
}

impl Stage {
    /// As [`Stage::start`] with `measurement` checked once, in `name`.
    #[inline]
    pub(crate) fn start_named(&mut self, name: &StagedName, measurement: &str) {
        if name.len == 0 {
            self.start(measurement);
            return;
        }
        self.fields = false;
        self.set = 0;
        self.mask = 0;
        self.last_to = 0;
        self.ok = true;
        self.len = 0;
        if let Some(room) = self.room() {
            *room = name.block;
            self.len = usize::from(name.len);
        }
    }

    /// Starts a line with its measurement.
    #[inline]
    pub(crate) fn start(&mut self, measurement: &str) {
        self.len = 0;
        self.fields = false;
        self.set = 0;
        self.mask = 0;
        self.last_to = 0;
        let bytes = measurement.as_bytes();
        // The general path checks what is left: an empty measurement, a
        // comment, anything to escape.
        self.ok = bytes.first().is_some_and(|&b| b != b'#') && plain_name(bytes);
        if self.ok {
            self.ok = self.text(bytes).is_some();
        }
    }

    /// Copies `text` as it is.
    #[inline]
    fn text(&mut self, text: &[u8]) -> Option<()> {
        let end = self.len + text.len();
        self.bytes.get_mut(self.len..end)?.copy_from_slice(text);
        self.len = end;
        Some(())
    }

    /// The room for one block at the end of the line; `None` when the line
    /// is too long to stage.
    #[inline]
    fn room(&mut self) -> Option<&mut [u8; BLOCK]> {
        self.room_at(self.len)
    }

    /// The block at `at` (not past the end of the line's room).
    #[inline]
    fn room_at(&mut self, at: usize) -> Option<&mut [u8; BLOCK]> {
        if at > ROOM {
            return None;
        }
        let block = self.bytes.get_mut(at..at + BLOCK)?;
        <&mut [u8; BLOCK]>::try_from(block).ok()
    }

    /// Writes the separator and the prepared key (with its `=`), after
    /// checking it against the keys written.
    #[inline]
    fn key(&mut self, separator: u8, key: &PreparedKey) -> Option<()> {
        let (block, n) = key.block()?;
        let bit = key.bit();
        if bit == 0 || self.mask & bit != 0 || (self.set != key.set() && self.set != 0) {
            return None;
        }
        self.set = key.set();
        self.mask |= bit;
        let room = self.room()?;
        room[0] = separator;
        self.len += 1;
        let room = self.room()?;
        *room = *block;
        self.len += n;
        Some(())
    }

    fn separator(&self) -> u8 {
        if self.fields {
            b','
        } else {
            b' '
        }
    }

    /// Adds a tag; an empty value is left out, as on the general path.
    #[inline]
    pub(crate) fn tag(&mut self, key: &PreparedKey, value: &str) {
        self.ok = self.ok && !self.fields && self.try_tag(key, value, false).is_some();
    }

    /// As [`Stage::tag`] for a value [`plain_tag_value`] has found plain.
    #[inline]
    pub(crate) fn plain_tag(&mut self, key: &PreparedKey, value: &str) {
        self.ok = self.ok && !self.fields && self.try_tag(key, value, true).is_some();
    }

    #[inline]
    fn try_tag(&mut self, key: &PreparedKey, value: &str, plain: bool) -> Option<()> {
        let value = value.as_bytes();
        if value.is_empty() {
            // The key is checked all the same: let the general path do it.
            return key.block().map(|_| ());
        }
        if !plain && !plain_name(value) {
            return None;
        }
        self.key(b',', key)?;
        self.text(value)
    }

    /// Adds a float field.
    #[inline]
    pub(crate) fn float(&mut self, key: &PreparedKey, value: f64) {
        self.ok = self.ok && self.try_float(key, value).is_some();
    }

    #[inline]
    fn try_float(&mut self, key: &PreparedKey, value: f64) -> Option<()> {
        self.key(self.separator(), key)?;
        self.fields = true;
        self.float_value(value)
    }

    /// Writes a float value: a copy of the last one's text when it is the
    /// same, else a short decimal.
    #[inline]
    fn float_value(&mut self, value: f64) -> Option<()> {
        let bits = value.to_bits();
        let start = self.len;
        if self.last_to != 0 && bits == self.last_bits {
            // Aggregates repeat values: copy the text of the last one.
            let (from, n) = (self.last_from, self.last_to - self.last_from);
            let text = <[u8; BLOCK]>::try_from(self.bytes.get(from..from + BLOCK)?).ok()?;
            *self.room()? = text;
            self.len += n;
        } else {
            self.short_decimal(value)?;
        }
        self.last_bits = bits;
        self.last_from = start;
        self.last_to = self.len;
        Some(())
    }

    /// Adds float fields, `keys` with `values` in order, as as many calls of
    /// [`Stage::float`] would: the keys checked at once when they can be.
    #[inline]
    pub(crate) fn floats<const N: usize>(&mut self, keys: &KeyRun<N>, values: [f64; N]) {
        self.ok = self.ok && self.try_floats(keys, values).is_some();
    }

    #[inline]
    fn try_floats<const N: usize>(&mut self, run: &KeyRun<N>, values: [f64; N]) -> Option<()> {
        let bits = run.bits();
        if bits == 0
            || self.mask & bits != 0
            || (self.set != run.set() && self.set != 0)
            || self.len + N * FIELD > ROOM + BLOCK
        {
            // Key by key: the checks of each tell which gives up.
            for (key, value) in run.keys().iter().zip(values) {
                self.try_float(key, value)?;
            }
            return Some(());
        }
        self.set = run.set();
        self.mask |= bits;
        // Each value's text is made once, in `text`, and copied after its
        // key: the figures of a window often repeat a value.
        let mut text = [0; BLOCK];
        let (mut text_len, mut text_bits) = (0, None);
        let mut separator = self.separator();
        let mut value_at = self.len;
        for (key, value) in run.keys().iter().zip(values) {
            let bits = value.to_bits();
            if text_bits != Some(bits) {
                text_len = short_decimal_text(&mut text, value)?;
                text_bits = Some(bits);
            }
            let (block, n) = key.block()?;
            let start = self.len;
            let field = self.bytes.get_mut(start..start + FIELD)?;
            field[0] = separator;
            field.get_mut(1..=BLOCK)?.copy_from_slice(block);
            field.get_mut(1 + n..1 + n + BLOCK)?.copy_from_slice(&text);
            value_at = start + 1 + n;
            self.len = value_at + text_len;
            separator = b',';
        }
        if let Some(bits) = text_bits {
            self.fields = true;
            self.last_bits = bits;
            self.last_from = value_at;
            self.last_to = self.len;
        }
        Some(())
    }

    /// Writes `value` as [`super::number::float`] does when it finds it a
    /// short decimal; `None` for any other value.
    #[inline]
    fn short_decimal(&mut self, value: f64) -> Option<()> {
        let n = short_decimal_text(self.room()?, value)?;
        self.len += n;
        Some(())
    }

    /// Adds an integer field (`3i`).
    #[inline]
    pub(crate) fn integer(&mut self, key: &PreparedKey, value: i64) {
        self.ok = self.ok && self.try_integer(key, value).is_some();
    }

    fn try_integer(&mut self, key: &PreparedKey, value: i64) -> Option<()> {
        self.key(self.separator(), key)?;
        self.fields = true;
        if let Ok(digit @ 0..10) = u8::try_from(value) {
            // One digit, as the counts of most windows.
            let room = self.room()?;
            room[0] = b'0' + digit;
            room[1] = b'i';
            self.len += 2;
            return Some(());
        }
        self.signed(value)?;
        let room = self.room()?;
        room[0] = b'i';
        self.len += 1;
        Some(())
    }

    /// Writes an integer in decimal.
    #[inline]
    fn signed(&mut self, value: i64) -> Option<()> {
        let room = self.room()?;
        let mut at = 0;
        if value < 0 {
            room[0] = b'-';
            at = 1;
        }
        self.len += at + unsigned_text(room, at, value.unsigned_abs());
        Some(())
    }

    /// Adds a boolean field.
    #[inline]
    pub(crate) fn boolean(&mut self, key: &PreparedKey, value: bool) {
        self.ok = self.ok && self.try_boolean(key, value).is_some();
    }

    fn try_boolean(&mut self, key: &PreparedKey, value: bool) -> Option<()> {
        self.key(self.separator(), key)?;
        self.fields = true;
        let room = self.room()?;
        let text: &[u8] = if value { b"true" } else { b"false" };
        room[..text.len()].copy_from_slice(text);
        self.len += text.len();
        Some(())
    }

    /// Adds a string field.
    #[inline]
    pub(crate) fn string(&mut self, key: &PreparedKey, value: &str) {
        self.ok = self.ok && self.try_string(key, value).is_some();
    }

    fn try_string(&mut self, key: &PreparedKey, value: &str) -> Option<()> {
        let bytes = value.as_bytes();
        if bytes.iter().any(|&b| escape::needs_care(b, escape::STRING)) {
            return None;
        }
        self.key(self.separator(), key)?;
        self.fields = true;
        self.room()?[0] = b'"';
        self.len += 1;
        self.text(bytes)?;
        self.room()?[0] = b'"';
        self.len += 1;
        Some(())
    }

    /// Gives up on the line: the general path writes it.
    pub(crate) fn give_up(&mut self) {
        self.ok = false;
    }

    /// Ends the line with its timestamp; the whole line, or `None` when the
    /// general path must write it.
    #[inline]
    pub(crate) fn finish(&mut self, time: Timestamp) -> Option<&[u8]> {
        if !self.ok || !self.fields {
            return None;
        }
        let room = self.room()?;
        room[0] = b' ';
        self.len += 1;
        let time = time.as_nanos();
        if self.time_len != 0 && time == self.time {
            let text = self.time_text;
            *self.room()? = text;
            self.len += self.time_len;
        } else {
            let start = self.len;
            self.signed(time)?;
            self.time_text = *self.room_at(start)?;
            self.time = time;
            self.time_len = self.len - start;
        }
        self.room()?[0] = b'\n';
        self.len += 1;
        self.bytes.get(..self.len)
    }
}

/// Writes `value` at the start of `out` as [`super::number::float`] does
/// when it finds it a short decimal, and returns its length; `None` for any
/// other value.
#[inline]
fn short_decimal_text(out: &mut [u8; BLOCK], value: f64) -> Option<usize> {
    let magnitude = value.abs();
    // Also refuses NaN, which the general path reports.
    if magnitude.is_nan() || magnitude >= 1_073_741_824.0 {
        return None;
    }
    let negative = value.is_sign_negative();
    if magnitude < 100_000.0 {
        // One try in thousandths stands for the four of `large_decimal_text`: a
        // value that reads back from fewer decimals reads back from three
        // (its thousandths are then a multiple of ten to the missing
        // decimals: the same decimal, whose nearest double is the value), so
        // when this try fails every try fails, and when it succeeds the
        // fewest decimals are three less the thousandths' trailing zeros.
        let m = (magnitude * 1000.0 + 0.5) as i64;
        if m as f64 / 1000.0 != magnitude {
            return None;
        }
        if let Ok(thousandths) = u32::try_from(m) {
            if thousandths < 100_000_000 {
                return Some(thousandths_text(out, thousandths, negative));
            }
        }
    }
    large_decimal_text(out, magnitude, negative)
}

/// [`short_decimal_text`] for a magnitude from 10^5 up (and below 2^30):
/// rarer, so kept out of the way of the common case.
#[cold]
#[inline(never)]
fn large_decimal_text(out: &mut [u8; BLOCK], magnitude: f64, negative: bool) -> Option<usize> {
    for (decimals, &scale) in POW10.iter().enumerate() {
        // Round half up; the product is below 2^40, so adding 0.5 is exact,
        // and the conversions to and from `i64` (cheaper than `u64`) are too.
        let m = (magnitude * scale + 0.5) as i64;
        if m as f64 / scale != magnitude {
            continue;
        }
        return Some(decimal(out, m as u64, decimals, negative));
    }
    None
}

/// Writes `m` thousandths (below 10^8) as [`decimal`] writes them with the
/// fewest decimals that keep the value (one zero when it is whole), the sign
/// first when `negative`; returns the length.
///
/// The eight digits are made at once ([`eight_digits`]): the last three are
/// the decimals, the five before the whole part, shown from its first digit
/// that is not zero (or from the units). The decimals' trailing zeros are
/// left out by the length alone.
#[inline]
fn thousandths_text(out: &mut [u8; BLOCK], m: u32, negative: bool) -> usize {
    const ZEROS: u64 = ONES * b'0' as u64;
    let sign = usize::from(negative);
    out[0] = b'-';
    let digits = eight_digits(m);
    // Leading zero digits are the zero bytes at the low end (8 for zero),
    // trailing ones those at the high end (8 for zero).
    let skip = ((digits.trailing_zeros() / 8) as usize).min(4);
    let decimals = 3 - ((digits.leading_zeros() / 8) as usize).min(3);
    let text = digits | ZEROS;
    let whole = 5 - skip;
    put_word(out, sign, text >> (8 * skip));
    out[sign + whole] = b'.';
    put_word(out, sign + whole + 1, text >> 40);
    sign + whole + 1 + decimals.max(1)
}

/// Writes `n` in decimal at `at` in `out` (at most 12 bytes in), eight
/// digits at a time ([`eight_digits`]); returns how many digits.
#[inline]
fn unsigned_text(out: &mut [u8; BLOCK], at: usize, n: u64) -> usize {
    const ZEROS: u64 = ONES * b'0' as u64;
    const E8: u64 = 100_000_000;
    // The digits in groups of eight, the first group without its leading
    // zeros (but for one digit of zero): at most 20 digits, three groups.
    let (first, rest) = if n < E8 {
        (n, [0, 0, 0])
    } else if n < E8 * E8 {
        (n / E8, [1, n % E8, 0])
    } else {
        (n / (E8 * E8), [2, n / E8 % E8, n % E8])
    };
    // Below 10^8 by the division, for the `u32`s.
    let word = |group: u64| eight_digits(u32::try_from(group).unwrap_or(0));
    let digits = word(first);
    let skip = ((digits.trailing_zeros() / 8) as usize).min(7);
    put_word(out, at, (digits | ZEROS) >> (8 * skip));
    let mut end = at + 8 - skip;
    for &group in &rest[1..=rest[0] as usize] {
        put_word(out, end, word(group) | ZEROS);
        end += 8;
    }
    end - at
}

/// How many decimal digits `n` has (one for zero).
#[inline]
fn digit_count(mut n: u64) -> usize {
    let mut digits = 1;
    while n >= 10_000 {
        n /= 10_000;
        digits += 4;
    }
    if n >= 1000 {
        digits + 3
    } else if n >= 100 {
        digits + 2
    } else if n >= 10 {
        digits + 1
    } else {
        digits
    }
}

/// Writes the last `count` digits of `n` (with leading zeros) so that they
/// end at `end`.
#[inline]
fn write_digits(out: &mut [u8; BLOCK], end: usize, mut n: u64, count: usize) {
    let mut at = end;
    let stop = end.saturating_sub(count);
    while at >= stop + 2 {
        let pair = DIGIT_PAIRS[(n % 100) as usize];
        n /= 100;
        at -= 2;
        if let Some(slot) = out.get_mut(at..at + 2) {
            slot.copy_from_slice(&pair);
        }
    }
    if at > stop {
        if let Some(slot) = out.get_mut(at - 1) {
            *slot = b'0' + (n % 10) as u8;
        }
    }
}

/// The eight decimal digits of `n` (below 10^8, with leading zeros), one a
/// byte, the first digit in the lowest byte: as they are written, read as a
/// little-endian word. Each digit is its value (0 to 9), not yet ASCII.
///
/// Both halves of four digits are split into pairs, then the pairs into
/// digits, in one multiplication each: `x · 10486 >> 20` is `x / 100` for
/// `x` below 10^4, `x · 103 >> 10` is `x / 10` for `x` below 100, and no
/// lane's product reaches the next lane.
#[inline]
fn eight_digits(n: u32) -> u64 {
    debug_assert!(n < 100_000_000);
    let halves = u64::from(n / 10_000) | (u64::from(n % 10_000) << 32);
    let hundreds = ((halves * 10_486) >> 20) & 0x0000_007F_0000_007F;
    let pairs = hundreds | ((halves - 100 * hundreds) << 16);
    let tens = ((pairs * 103) >> 10) & 0x000F_000F_000F_000F;
    tens | ((pairs - 10 * tens) << 8)
}

/// Eight bytes of `word`, little-endian, at `at` in `out`.
#[inline]
fn put_word(out: &mut [u8; BLOCK], at: usize, word: u64) {
    if let Some(slot) = out.get_mut(at..at + 8) {
        slot.copy_from_slice(&word.to_le_bytes());
    }
}

/// Writes `m · 10^-decimals` with at least one digit before the point and,
/// with no decimals, `.0` after it; returns the length.
#[inline]
fn decimal(out: &mut [u8; BLOCK], m: u64, decimals: usize, negative: bool) -> usize {
    let sign = usize::from(negative);
    out[0] = b'-';
    match u32::try_from(m) {
        Ok(small) if small < 100_000_000 && decimals < 8 => {
            return short_decimal_digits(out, small, decimals, sign);
        }
        _ => {}
    }
    let digits = digit_count(m).max(decimals + 1);
    let whole = digits - decimals;
    if decimals == 0 {
        write_digits(out, sign + whole, m, whole);
        out[sign + whole] = b'.';
        out[sign + whole + 1] = b'0';
        return sign + whole + 2;
    }
    let scale = [1, 10, 100, 1000][decimals];
    write_digits(out, sign + whole, m / scale, whole);
    out[sign + whole] = b'.';
    write_digits(out, sign + whole + 1 + decimals, m % scale, decimals);
    sign + whole + 1 + decimals
}

/// [`decimal`] for `m` below 10^8 with fewer than eight decimals, after the
/// sign (`sign` bytes of it, at most one, already written): all eight digits
/// made at once ([`eight_digits`]), the leading zeros before the digits kept
/// shifted out, the point put in between the whole part and the decimals.
#[inline]
fn short_decimal_digits(out: &mut [u8; BLOCK], m: u32, decimals: usize, sign: usize) -> usize {
    const ZEROS: u64 = ONES * b'0' as u64;
    let digits = eight_digits(m);
    // Leading zero digits are the zero bytes at the low end (8 for zero);
    // at least one digit is kept before the point.
    let leading = (digits.trailing_zeros() / 8) as usize;
    let skip = leading.min(7 - decimals);
    let text = digits | ZEROS;
    let whole = 8 - skip - decimals;
    put_word(out, sign, text >> (8 * skip));
    out[sign + whole] = b'.';
    if decimals == 0 {
        out[sign + whole + 1] = b'0';
        return sign + whole + 2;
    }
    put_word(out, sign + whole + 1, text >> (8 * (8 - decimals)));
    sign + whole + 1 + decimals
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::encode::number;

    fn staged(value: f64) -> Option<Vec<u8>> {
        let mut out = [b'x'; BLOCK];
        let n = short_decimal_text(&mut out, value)?;
        Some(out[..n].to_vec())
    }

    /// What `staged` stages, and whether the general path finds it a short
    /// decimal: the same text, and the same values.
    fn same_as_general_path(value: f64) -> Result<(), TestCaseError> {
        let mut want = Vec::new();
        let short = number::short_decimal(&mut want, value);
        match staged(value) {
            Some(got) => {
                prop_assert!(short, "{value} staged, not short for the general path");
                prop_assert_eq!(
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want)
                );
            }
            None => prop_assert!(!short, "{value} not staged"),
        }
        Ok(())
    }

    #[test]
    fn digits_are_counted_and_written() {
        for n in [0, 9, 10, 99, 100, 12_345, 99_999_999, u64::MAX] {
            assert_eq!(digit_count(n), n.to_string().len());
            let mut out = [b'x'; BLOCK];
            let count = digit_count(n);
            write_digits(&mut out, count, n, count);
            assert_eq!(&out[..count], n.to_string().as_bytes());
        }
    }

    /// `m · 10^-decimals` as `decimal` must write it, by plain formatting.
    fn reference(m: u64, decimals: usize, negative: bool) -> String {
        let sign = if negative { "-" } else { "" };
        if decimals == 0 {
            return format!("{sign}{m}.0");
        }
        let scale = 10_u64.pow(decimals as u32);
        format!("{sign}{}.{:0decimals$}", m / scale, m % scale)
    }

    #[test]
    fn eight_digits_are_the_digits_in_writing_order() {
        for n in [
            0, 1, 9, 10, 99, 100, 1234, 9999, 10_000, 12_345_678, 99_999_999,
        ] {
            let digits = eight_digits(n).to_le_bytes().map(|d| b'0' + d);
            assert_eq!(&digits[..], format!("{n:08}").as_bytes());
        }
    }

    #[test]
    fn integers_of_every_length_are_written_in_full() {
        let mut values: Vec<u64> = (0..1_000).collect();
        for digits in 1..=19 {
            let power = 10_u64.pow(digits);
            values.extend([power - 1, power, power + 1, power / 3, power / 7 * 5]);
        }
        values.extend([u64::MAX, u64::MAX - 1, 1_795_896_000_000_000_000]);
        for n in values {
            for at in [0, 1, 12] {
                let mut out = [b'x'; BLOCK];
                let len = unsigned_text(&mut out, at, n);
                assert_eq!(&out[at..at + len], n.to_string().as_bytes());
                assert!(out[..at].iter().all(|&b| b == b'x'));
            }
        }
    }

    #[test]
    fn decimals_of_every_length_are_written_in_full() {
        let mut values: Vec<u64> = (0..2_000).collect();
        for digits in 1..=13 {
            let power = 10_u64.pow(digits);
            values.extend([power - 1, power, power + 1, power / 3, power / 7 * 5]);
        }
        for m in values {
            for decimals in 0..=3 {
                for negative in [false, true] {
                    let mut out = [b'x'; BLOCK];
                    let n = decimal(&mut out, m, decimals, negative);
                    let got = String::from_utf8_lossy(&out[..n]);
                    assert_eq!(got, reference(m, decimals, negative), "{m} {decimals}");
                }
            }
        }
    }

    /// Keys `a`..`f` of one set and `x` of another, for the whole process.
    fn test_keys() -> (&'static [PreparedKey], &'static PreparedKey) {
        use crate::encode::KeySet;
        use std::sync::LazyLock;
        static SET: LazyLock<KeySet> =
            LazyLock::new(|| KeySet::new(["a", "b", "c", "d", "e", "f"]));
        static OTHER: LazyLock<KeySet> = LazyLock::new(|| KeySet::new(["x"]));
        (SET.keys(), &OTHER.keys()[0])
    }

    /// The line staged with `measurement` and `before` (keys and values, one
    /// call each), then `values` under `run`: with one call of `floats`, or
    /// one call of `float` per key.
    fn staged_run(
        measurement: &str,
        before: &[(&PreparedKey, f64)],
        run: &KeyRun<4>,
        values: [f64; 4],
        at_once: bool,
    ) -> Option<Vec<u8>> {
        let mut stage = Stage::default();
        stage.start(measurement);
        for &(key, value) in before {
            stage.float(key, value);
        }
        if at_once {
            stage.floats(run, values);
        } else {
            for (key, value) in run.keys().iter().zip(values) {
                stage.float(key, value);
            }
        }
        stage.finish(Timestamp::from_nanos(7)).map(<[u8]>::to_vec)
    }

    /// Floats staged before a run, the run and its values.
    type Case<'a> = (&'a [(&'a PreparedKey, f64)], &'a KeyRun<4>, [f64; 4]);

    #[test]
    fn a_measurement_checked_once_stages_as_its_text_does() {
        let (keys, _) = test_keys();
        let long = "m".repeat(BLOCK + 1);
        let cases = [
            "lighting",
            "traffic_1m",
            "",
            "#comment",
            "a b",
            "a,b",
            "a=b",
            "tab\t",
            "été",
            &long[..BLOCK - 1],
            &long[..BLOCK],
            &long,
        ];
        let mut stage = Stage::default();
        for measurement in cases {
            let mut lines = Vec::new();
            for named in [false, true] {
                if named {
                    stage.start_named(&StagedName::new(measurement), measurement);
                } else {
                    stage.start(measurement);
                }
                stage.float(&keys[0], 1.5);
                lines.push(stage.finish(Timestamp::from_nanos(7)).map(<[u8]>::to_vec));
            }
            assert_eq!(lines[0], lines[1], "{measurement:?}");
        }
    }

    #[test]
    fn timestamps_are_written_whether_repeated_or_not() {
        let (keys, _) = test_keys();
        let mut stage = Stage::default();
        for time in [
            7,
            7,
            1_795_896_000_000_000_000,
            7,
            -5,
            -5,
            0,
            i64::MIN,
            i64::MAX,
            0,
        ] {
            stage.start("m");
            stage.integer(&keys[0], 1);
            let line = stage
                .finish(Timestamp::from_nanos(time))
                .map(<[u8]>::to_vec);
            assert_eq!(
                line,
                Some(format!("m a=1i {time}\n").into_bytes()),
                "{time}"
            );
        }
    }

    #[test]
    fn integers_are_staged_with_their_suffix() {
        let (keys, _) = test_keys();
        for value in [
            0,
            1,
            9,
            10,
            11,
            99,
            255,
            256,
            -1,
            -9,
            -10,
            i64::MAX,
            i64::MIN,
        ] {
            let mut stage = Stage::default();
            stage.start("m");
            stage.integer(&keys[0], value);
            let line = stage.finish(Timestamp::from_nanos(7)).map(<[u8]>::to_vec);
            assert_eq!(
                line,
                Some(format!("m a={value}i 7\n").into_bytes()),
                "{value}"
            );
        }
    }

    #[test]
    fn a_run_of_floats_stages_what_one_float_at_a_time_does() {
        let (keys, other) = test_keys();
        let first: &'static [PreparedKey; 4] = keys[..4].try_into().expect("four keys");
        let last: &'static [PreparedKey; 4] = keys[2..].try_into().expect("four keys");
        let (first, last) = (KeyRun::new(first), KeyRun::new(last));
        let cases: [Case<'_>; 7] = [
            (&[], &first, [1.5, 1.5, 1.5, 1.5]),
            (&[], &first, [0.25, -3.0, 12.125, 0.25]),
            (&[(&keys[5], 2.5)], &first, [2.5, 1.0, 2.5, 7.0]),
            // A key written twice, a key of another set, a value the stage
            // does not write: the general path takes the line either way.
            (&[(&keys[3], 1.0)], &first, [1.0; 4]),
            (&[(other, 1.0)], &last, [1.0; 4]),
            (&[], &last, [1.0, f64::NAN, 1.0, 1.0]),
            (&[], &last, [1.0, 1e-7, 1.0, 1.0]),
        ];
        // Lines of every length up to the stage's end, and a little past.
        let long = "m".repeat(ROOM + 8);
        for (before, run, values) in cases {
            for len in (1..=8).chain(ROOM - 8 * FIELD..=ROOM + 8) {
                let measurement = &long[..len];
                let one_by_one = staged_run(measurement, before, run, values, false);
                let at_once = staged_run(measurement, before, run, values, true);
                assert_eq!(at_once, one_by_one, "{len} bytes of measurement");
            }
        }
        assert_eq!(
            staged_run("m", &[], &first, [0.25, -3.0, 12.125, 0.25], true).as_deref(),
            Some(&b"m a=0.25,b=-3.0,c=12.125,d=0.25 7\n"[..])
        );
    }

    #[test]
    fn plain_names_of_every_length_find_any_byte_to_escape() {
        for n in 1..=20 {
            assert!(plain_name(&vec![b'a'; n]), "{n} bytes");
            for at in 0..n {
                for bad in [b' ', b',', b'=', b'\\', 0x7f, b'\n', 0] {
                    let mut text = vec![b'a'; n];
                    text[at] = bad;
                    assert!(!plain_name(&text), "{n} bytes, {bad:#x} at {at}");
                }
            }
        }
    }

    #[test]
    fn plain_names_are_those_needing_no_escape() {
        for text in [
            "",
            "rabat",
            "lamp-rabat-00017",
            "été-7",
            "abcdefghijklmnop",
            "!abcdefg!",
        ] {
            assert!(plain_name(text.as_bytes()), "{text}");
        }
        for text in [
            "a b",
            "abcdefg hij",
            "a,b",
            "a=b",
            "a\\",
            "abcdefgh\x7f",
            "abcdefghi\n",
            "\t",
        ] {
            assert!(!plain_name(text.as_bytes()), "{text:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        #[test]
        fn short_decimals_are_written_as_the_general_path_writes_them(
            m in any::<i64>(),
            decimals in 0..5i32,
            magnitude in 0..36u32,
        ) {
            let m = m % (1_i64 << magnitude).max(1);
            same_as_general_path(m as f64 / 10f64.powi(decimals))?;
        }

        #[test]
        fn any_float_is_staged_as_the_general_path_writes_it(
            value in prop::num::f64::ANY
        ) {
            same_as_general_path(value)?;
        }

        #[test]
        fn floats_around_the_thousandths_limit_are_staged_alike(
            value in -200_000.0..200_000.0f64,
            decimals in 0..5i32,
        ) {
            let scale = 10f64.powi(decimals);
            same_as_general_path(value)?;
            same_as_general_path((value * scale).round() / scale)?;
        }

        #[test]
        fn plain_names_need_no_escape(text in r"[a-c\\,= !\n\x1f\x7fé-]{0,20}") {
            let mut escaped = Vec::new();
            escape::name(&mut escaped, &text, escape::KEY);
            let plain = escaped == text.as_bytes() && !text.ends_with('\\');
            prop_assert_eq!(plain_name(text.as_bytes()), plain && !text.contains('\\'));
        }
    }
}
