//! Numbers as line protocol writes them.

use std::io::Write as _;

/// Writes a finite float in plain decimal notation with a decimal point, with
/// the shortest digits that read back to the same value.
///
/// Sensor values mostly have a few decimals (`41.8`, `0.35`, `118.0`): those are
/// found exactly by [`short_decimal`]. Others go through `ryu`, which uses an
/// exponent below 1e-5 and from 1e16 up; those rare values go through the
/// standard library's `Display`, which prints the shortest digits too but never
/// with an exponent.
#[inline]
pub(super) fn float(buf: &mut Vec<u8>, value: f64) {
    debug_assert!(value.is_finite());
    if short_decimal(buf, value) {
        return;
    }
    let mut ryu = ryu::Buffer::new();
    let text = ryu.format_finite(value).as_bytes();
    if text.contains(&b'e') {
        plain(buf, value);
    } else {
        buf.extend_from_slice(text);
    }
}

/// Most decimals [`short_decimal`] tries.
const MAX_DECIMALS: usize = 3;
const POW10: [f64; MAX_DECIMALS + 1] = [1.0, 10.0, 100.0, 1000.0];
const POW10_INT: [u64; MAX_DECIMALS + 1] = [1, 10, 100, 1000];

/// Writes `value` if it is below 2^30 in magnitude and reads back exactly from
/// at most [`MAX_DECIMALS`] decimals; returns whether it did.
///
/// Why the text is exact and the shortest: for `m < 2^53` and `k ≤ 22`, both
/// `m` and `10^k` are exact doubles, so `m / 10^k` in floating point is the
/// double nearest to the decimal `m·10^-k`, which is what parsing that decimal
/// gives; the check `m / 10^k == |value|` thus proves the text reads back.
/// Below 2^30 the spacing of doubles (≤ 2^-22) is far below `10^-k`, so at
/// most one `m` fits for each `k`, and rounding `|value|·10^k` (error < 2^-8)
/// finds it; trying `k` upwards gives the fewest digits, the same text as
/// `ryu` (tested against it).
#[inline]
pub(super) fn short_decimal(buf: &mut Vec<u8>, value: f64) -> bool {
    let magnitude = value.abs();
    if magnitude >= 1_073_741_824.0 {
        return false;
    }
    for (decimals, (&scale, &int_scale)) in POW10.iter().zip(&POW10_INT).enumerate() {
        // Round half up; the product is below 2^40, so adding 0.5 is exact.
        let m = (magnitude * scale + 0.5) as u64;
        if m as f64 / scale != magnitude {
            continue;
        }
        if value.is_sign_negative() {
            buf.push(b'-');
        }
        let mut digits = itoa::Buffer::new();
        buf.extend_from_slice(digits.format(m / int_scale).as_bytes());
        buf.push(b'.');
        if decimals == 0 {
            buf.push(b'0');
        } else {
            let fraction = digits.format(m % int_scale).as_bytes();
            buf.resize(buf.len() + decimals - fraction.len(), b'0');
            buf.extend_from_slice(fraction);
        }
        return true;
    }
    false
}

#[cold]
fn plain(buf: &mut Vec<u8>, value: f64) {
    let start = buf.len();
    // Writing into a `Vec<u8>` cannot fail.
    let _ = write!(buf, "{value}");
    if !buf[start..].contains(&b'.') {
        buf.extend_from_slice(b".0");
    }
}

/// Writes an integer field value, with its `i` suffix.
pub(super) fn integer(buf: &mut Vec<u8>, value: i64) {
    buf.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    buf.push(b'i');
}

/// Writes a timestamp (nanoseconds since the epoch).
pub(super) fn timestamp(buf: &mut Vec<u8>, nanos: i64) {
    buf.extend_from_slice(itoa::Buffer::new().format(nanos).as_bytes());
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn written(value: f64) -> String {
        let mut buf = Vec::new();
        float(&mut buf, value);
        String::from_utf8(buf).expect("UTF-8")
    }

    fn same_as_ryu(value: f64) -> Result<(), TestCaseError> {
        let text = written(value);
        prop_assert_eq!(text.parse::<f64>().map(f64::to_bits), Ok(value.to_bits()));
        let mut ryu = ryu::Buffer::new();
        let expected = ryu.format_finite(value);
        if !expected.contains('e') {
            prop_assert_eq!(text, expected);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]

        /// Decimals with few digits: the shortcut's own ground.
        #[test]
        fn short_decimals_are_written_as_ryu_writes_them(
            m in any::<i64>(),
            decimals in 0..6i32,
            magnitude in 0..40u32,
        ) {
            let m = m % (1_i64 << magnitude.min(62)).max(1);
            same_as_ryu(m as f64 / 10f64.powi(decimals))?;
        }

        #[test]
        fn any_float_is_written_as_ryu_writes_it(
            value in prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO
        ) {
            same_as_ryu(value)?;
        }

        #[test]
        fn floats_near_the_limit_are_written_as_ryu_writes_them(
            value in -1.1e9..1.1e9f64
        ) {
            same_as_ryu(value)?;
        }
    }
}
