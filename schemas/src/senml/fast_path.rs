//! The reader of packs in their common shape, through the scanner of
//! [`crate::scan`]: an array of flat records, no escape anywhere, numbers
//! that convert exactly, every known label at most once and of its JSON
//! type, no `bver` later than this service reads, no label ending in `_`.
//! Records go to the [`Resolver`] in the same order and with the same values
//! as from [`super::record::parse`]; anything else is declined, and the
//! whole pack is then read again by `serde_json`, which stays the reference
//! for every result and every fault.

use super::record::{Label, Record, MAX_VERSION};
use super::Resolver;
use crate::json::Scalar;
use crate::scan::{FlatObject, Next};

/// Reads a pack, feeding each record to the resolver; `None` when the pack
/// is not of the shape the scanner reads, after which the resolver holds
/// some of its records and must be replaced.
pub(super) fn read<'a>(text: &'a str, resolver: &mut Resolver<'a, '_>) -> Option<()> {
    let mut pack = FlatObject::open_array_str(text)?;
    let mut index = 0;
    while pack.next_element()? {
        let entered = pack.enter(b'{')?;
        let record = record(&mut pack)?;
        pack.leave(entered);
        resolver.push(index, record);
        index += 1;
    }
    pack.close()
}

/// One record whose opening brace was just read, up to its closing brace.
#[inline]
fn record<'a>(s: &mut FlatObject<'a>) -> Option<Record<'a>> {
    let mut record = Record::default();
    let mut seen = 0_u16;
    while let Next::Key(key) = s.next_key()? {
        let Some(label) = Label::parse(key) else {
            // Not understood: refused when mandatory, else skipped (in the
            // pack and the record, so two levels deep).
            if key.ends_with('_') {
                return None;
            }
            s.colon()?;
            s.skip_value(2)?;
            continue;
        };
        if seen & label.bit() != 0 {
            return None;
        }
        seen |= label.bit();
        let value = s.value()?;
        if let (Label::Bver, Scalar::Number(version)) = (label, &value) {
            if *version > MAX_VERSION {
                return None;
            }
        }
        record.set(label, value).ok()?;
    }
    Some(record)
}
