//! Topic levels: which source a topic belongs to and who it names.

use crate::domain::Domain;
use crate::rejection::{Fault, Reason};

/// The longest identifier a topic level may hold.
pub const MAX_ID_LEN: usize = 64;

/// A parsed topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic<'a> {
    /// `city/{commune}/{domain}/{device}/telemetry`
    Native {
        /// Commune level.
        commune: &'a str,
        /// Domain level.
        domain: Domain,
        /// Device level.
        device: &'a str,
    },
    /// `v3/{application}[@{tenant}]/devices/{device}/up`
    TheThingsStack {
        /// Application id.
        application: &'a str,
        /// Tenant, absent on the open-source edition.
        tenant: Option<&'a str>,
        /// Device id.
        device: &'a str,
    },
    /// `application/{application}/device/{dev_eui}/event/up`
    ChirpStack {
        /// Application id (a UUID in ChirpStack v4).
        application: &'a str,
        /// Device EUI.
        dev_eui: &'a str,
    },
}

/// The bytes an identifier may hold: `[A-Za-z0-9_.:-]`.
const ID_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-');
        b += 1;
    }
    table
};

/// Whether `s` is a valid identifier: `[A-Za-z0-9_.:-]{1,64}`.
#[inline]
pub fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_ID_LEN
        && s.bytes().fold(true, |ok, b| ok & ID_BYTES[usize::from(b)])
}

/// Checks an identifier, naming what it is in the fault.
pub fn check_id<'a>(what: &str, s: &'a str) -> Result<&'a str, Fault> {
    if is_valid_id(s) {
        Ok(s)
    } else {
        Err(Fault::new(
            Reason::InvalidValue,
            format!("{what} {s:?} must match [A-Za-z0-9_.:-]{{1,64}}"),
        ))
    }
}

fn level<'a>(what: &str, s: &'a str) -> Result<&'a str, Fault> {
    check_id(what, s).map_err(|f| Fault::new(Reason::InvalidTopic, f.message))
}

impl<'a> Topic<'a> {
    /// Parses and validates a topic.
    pub fn parse(topic: &'a str) -> Result<Topic<'a>, Fault> {
        let levels = split_levels(topic);
        match levels {
            [Some("city"), Some(commune), Some(domain), Some(device), Some("telemetry"), None, None] =>
            {
                let domain = Domain::parse(domain).ok_or_else(|| {
                    Fault::new(
                        Reason::InvalidTopic,
                        format!("domain level {domain:?} is not lighting, waste or traffic"),
                    )
                })?;
                Ok(Topic::Native {
                    commune: level("commune level", commune)?,
                    domain,
                    device: level("device level", device)?,
                })
            }
            [Some("v3"), Some(app), Some("devices"), Some(device), Some("up"), None, None] => {
                let (application, tenant) = match app.split_once('@') {
                    Some((a, t)) => (a, Some(level("tenant level", t)?)),
                    None => (app, None),
                };
                Ok(Topic::TheThingsStack {
                    application: level("application level", application)?,
                    tenant,
                    device: level("device level", device)?,
                })
            }
            [Some("application"), Some(app), Some("device"), Some(eui), Some("event"), Some("up"), None] => {
                Ok(Topic::ChirpStack {
                    application: level("application level", app)?,
                    dev_eui: level("device EUI level", eui)?,
                })
            }
            _ => Err(Fault::new(
                Reason::InvalidTopic,
                "topic matches none of city/{commune}/{domain}/{device}/telemetry, \
                 v3/{application}[@{tenant}]/devices/{device}/up, \
                 application/{application}/device/{dev_eui}/event/up",
            )),
        }
    }
}

/// The first seven levels of a topic, as `topic.split('/')` gives them,
/// found in one pass over the bytes.
fn split_levels(topic: &str) -> [Option<&str>; 7] {
    let mut levels = [None; 7];
    let mut rest = Some(topic);
    for level in &mut levels {
        let Some(r) = rest else { break };
        if let Some(i) = crate::scan::find_byte(r.as_bytes(), b'/') {
            *level = r.get(..i);
            rest = r.get(i + 1..);
        } else {
            *level = Some(r);
            rest = None;
        }
    }
    levels
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case("city/rabat/lighting/lamp-1/telemetry", Topic::Native { commune: "rabat", domain: Domain::Lighting, device: "lamp-1" })]
    #[case("city/berkane/waste/bin:12.a_b/telemetry", Topic::Native { commune: "berkane", domain: Domain::Waste, device: "bin:12.a_b" })]
    #[case("v3/rabat-waste@ttn/devices/bin-rabat-agdal-017/up", Topic::TheThingsStack { application: "rabat-waste", tenant: Some("ttn"), device: "bin-rabat-agdal-017" })]
    #[case("v3/rabat-waste/devices/bin-1/up", Topic::TheThingsStack { application: "rabat-waste", tenant: None, device: "bin-1" })]
    #[case("application/6f1e8e3c-0b7a-4c44-9e55-0e4f1b2d9a10/device/70b3d57ed0051a2f/event/up", Topic::ChirpStack { application: "6f1e8e3c-0b7a-4c44-9e55-0e4f1b2d9a10", dev_eui: "70b3d57ed0051a2f" })]
    fn valid_topics(#[case] topic: &str, #[case] expected: Topic<'_>) {
        assert_eq!(Topic::parse(topic), Ok(expected));
    }

    #[rstest]
    #[case("city/rabat/parking/p-1/telemetry", "domain level \"parking\"")]
    #[case("city/rabat/lighting/lamp 1/telemetry", "device level \"lamp 1\"")]
    #[case("city//lighting/lamp-1/telemetry", "commune level \"\"")]
    #[case("city/rabat/lighting/lamp-1/telemetry/extra", "matches none")]
    #[case("city/rabat/lighting/lamp-1", "matches none")]
    #[case("v3/app@/devices/d/up", "tenant level \"\"")]
    #[case("", "matches none")]
    fn invalid_topics_name_the_level(#[case] topic: &str, #[case] needle: &str) {
        let f = Topic::parse(topic).expect_err("invalid");
        assert_eq!(f.reason, Reason::InvalidTopic);
        assert!(f.message.contains(needle), "{}", f.message);
    }

    proptest::proptest! {
        #[test]
        fn levels_are_split_as_split_does(topic in "[a-z/é@ ]{0,20}") {
            let mut parts = topic.split('/');
            let expected: [Option<&str>; 7] = std::array::from_fn(|_| parts.next());
            proptest::prop_assert_eq!(split_levels(&topic), expected);
        }

        #[test]
        fn ids_are_checked_as_the_pattern_says(s in "[A-Za-z0-9_.:/@é -]{0,70}") {
            let expected = !s.is_empty()
                && s.len() <= MAX_ID_LEN
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
            proptest::prop_assert_eq!(is_valid_id(&s), expected);
        }
    }

    #[test]
    fn long_ids_are_rejected() {
        let long = "a".repeat(65);
        assert!(!is_valid_id(&long));
        assert!(is_valid_id(&long[..64]));
    }
}
