//! The reader of native objects in their common shape, through the scanner
//! of [`crate::scan`]: the keys are checked by the same [`State::entry`], in
//! the same order, as on the general path.

use super::entry::State;
use super::{uplink_key, Read};
use crate::rejection::Fault;
use crate::scan::{FlatObject, Next};

/// Reads a native object's keys into `state`, or `None` when the object is
/// not of the shape the scanner reads; `state` must then be reset and the
/// object read by the general path.
pub(super) fn read(payload: &[u8], state: &mut State<'_, '_>) -> Option<Result<Read, Fault>> {
    let mut object = FlatObject::open(payload)?;
    while let Next::Key(key) = object.next_key()? {
        if let Some(format) = uplink_key(key) {
            return Some(Ok(Read::Uplink(format)));
        }
        let value = object.value()?;
        if let Err(fault) = state.entry(key, &value) {
            return Some(Err(fault));
        }
    }
    object.close()?;
    Some(Ok(Read::Object))
}
