//! The message stream of a fleet over a time range: each device ticks on
//! its own grid, its observations are rendered in its wire format, and
//! message faults (late, duplicate, malformed, out of range) are applied.
//!
//! # How a message is identified
//!
//! The service writes a message as a point whose series is its measurement
//! (the domain) and tags (commune, device, and lane for traffic), stamped
//! with its event time. Payload keys outside the contract are counted and
//! dropped, so no sequence number could reach the database. Instead every
//! message of a device (and lane) carries a distinct event time — whole
//! seconds on the device's own reporting grid — and the verifying oracle
//! identifies a message by **series + timestamp**: `(domain, commune,
//! device, lane, event_time)`, see [`Message::identity`]. The only
//! messages that share an identity are the copies of a
//! [`MessageFault::Duplicate`], which the database stores once. The `seq`
//! of a message numbers the stream (for logs and ordering), not the point.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use rand::Rng;
use schemas::attribute::Kind;
use schemas::{Domain, Format, Value};

use crate::fleet::Fleet;
use crate::format::{render, Link};
use crate::observation::Observation;
use crate::spec::FaultRates;

/// Mean length of a device's silence, in seconds.
const SILENCE_MEAN_S: f64 = 3600.0;

/// What went wrong with a message on purpose; in a manifest, its name in
/// snake case (`late`, `duplicate`, `malformed`, `out_of_range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageFault {
    /// Published 1 to 20 minutes after its event time; still valid.
    Late,
    /// A second copy of a message already published (same topic, payload
    /// and identity); the database keeps one point.
    Duplicate,
    /// Cut short: not valid JSON; the service must reject it (`invalid_json`).
    Malformed,
    /// One value outside its contract range; rejected (`out_of_range`).
    OutOfRange,
}

/// One message as published.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Position in the fleet's stream, from 0, unique.
    pub seq: u64,
    /// MQTT topic.
    pub topic: String,
    /// MQTT payload.
    pub payload: Vec<u8>,
    /// Wire format.
    pub format: Format,
    /// Device id.
    pub device: String,
    /// Event time of the reading it becomes (a traffic period's start), by
    /// the device's clock: the point's timestamp.
    pub event_time: DateTime<Utc>,
    /// When it is published.
    pub publish_at: DateTime<Utc>,
    /// A fault applied on purpose, if any.
    pub fault: Option<MessageFault>,
    /// What the payload says, in canonical values.
    pub observation: Observation,
}

impl Message {
    /// What identifies the point it becomes: series and timestamp.
    pub fn identity(&self) -> (Domain, &str, &str, Option<u32>, DateTime<Utc>) {
        let o = &self.observation;
        (o.domain, &o.commune, &o.device, o.lane, self.event_time)
    }

    /// Whether the service must accept it (every fault but a malformed or
    /// out-of-range one).
    pub fn valid(&self) -> bool {
        !matches!(
            self.fault,
            Some(MessageFault::Malformed | MessageFault::OutOfRange)
        )
    }
}

#[derive(Debug)]
enum What {
    Tick(usize),
    Deliver(Box<Message>),
}

/// An entry of the schedule; ordered by time, then ticks before
/// deliveries, then device index or delivery order.
#[derive(Debug)]
struct Scheduled {
    at: i64,
    order: (u8, u64),
    what: What,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: `BinaryHeap` is a max-heap, the schedule pops the earliest.
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

/// The messages of a fleet over `[from, to)`, in publication order: a
/// message is published at its event time (a traffic period's end plus a
/// few seconds), a late one up to 20 minutes after. Ticks fall in
/// `[from, to)`; late and duplicate copies of the last ticks may be
/// published after `to`.
#[derive(Debug)]
pub struct Messages<'f> {
    fleet: &'f mut Fleet,
    schedule: BinaryHeap<Scheduled>,
    ready: VecDeque<Message>,
    deliveries: u64,
    to: i64,
}

/// The first time ≥ `from` that is ≡ `phase` modulo `interval`.
fn first_tick(from: i64, interval: i64, phase: i64) -> i64 {
    from + (phase - from).rem_euclid(interval)
}

impl<'f> Messages<'f> {
    pub(crate) fn new(fleet: &'f mut Fleet, from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        let (from, to) = (from.timestamp(), to.timestamp());
        let schedule = fleet
            .devices
            .iter()
            .map(|d| Scheduled {
                at: first_tick(from, d.interval_s, d.phase_s),
                order: (0, d.index as u64),
                what: What::Tick(d.index),
            })
            .filter(|s| s.at < to)
            .collect();
        Self {
            fleet,
            schedule,
            ready: VecDeque::new(),
            deliveries: 0,
            to,
        }
    }

    fn later(&mut self, at: i64, message: Message) {
        self.deliveries += 1;
        self.schedule.push(Scheduled {
            at,
            order: (1, self.deliveries),
            what: What::Deliver(Box::new(message)),
        });
    }

    fn tick(&mut self, index: usize, tick: i64) {
        let Some(at) = DateTime::from_timestamp(tick, 0) else {
            return;
        };
        let rates = self.fleet.spec.faults;
        let device = &mut self.fleet.devices[index];
        let next = tick + device.interval_s;
        if next < self.to {
            self.schedule.push(Scheduled {
                at: next,
                order: (0, index as u64),
                what: What::Tick(index),
            });
        }
        let observations = device.observe(at);
        let interval = device.interval_s as f64;
        if device.silent.step(
            &mut device.transport,
            at,
            interval,
            rates.silent,
            SILENCE_MEAN_S,
        ) {
            return;
        }
        for obs in observations {
            self.publish(index, tick, at, obs);
        }
    }

    /// Renders one observation of a device, applies its fault, and queues it.
    fn publish(&mut self, index: usize, tick: i64, at: DateTime<Utc>, mut obs: Observation) {
        let rates = self.fleet.spec.faults;
        let device = &mut self.fleet.devices[index];
        obs.time = obs.time.shifted(device.skew_s);
        let fault = draw_fault(&mut device.transport, &rates);
        if fault == Some(MessageFault::OutOfRange) {
            break_a_value(&mut obs);
        }
        device.f_cnt = device.f_cnt.wrapping_add(1);
        let token = device.transport.random::<u128>();
        let channel = device.transport.random_range(0..8);
        let (format, dev_eui, f_cnt, sf) = (
            device.format,
            device.dev_eui.clone(),
            device.f_cnt,
            device.spreading_factor,
        );
        let id = device.id.clone();
        let delay = device.transport.random_range(60..=1200);
        let copy_after = device.transport.random_range(0..=30);
        let link = Link {
            dev_eui,
            f_cnt,
            sent_at: at,
            gateways: self.fleet.receptions(index),
            token,
            spreading_factor: sf,
            channel,
        };
        let (topic, mut payload) = render(&obs, format, &link);
        if fault == Some(MessageFault::Malformed) {
            payload.truncate(payload.len() / 2);
        }
        let message = Message {
            seq: 0,
            topic,
            payload,
            format,
            device: id,
            event_time: obs.time.event_time(),
            publish_at: at,
            fault,
            observation: obs,
        };
        match fault {
            Some(MessageFault::Late) => {
                let publish = tick + delay;
                let message = Message {
                    publish_at: at + TimeDelta::seconds(delay),
                    ..message
                };
                self.later(publish, message);
            }
            Some(MessageFault::Duplicate) => {
                let copy = Message {
                    publish_at: at + TimeDelta::seconds(copy_after),
                    ..message.clone()
                };
                self.later(tick + copy_after, copy);
                self.ready.push_back(Message {
                    fault: None,
                    ..message
                });
            }
            _ => self.ready.push_back(message),
        }
    }

    fn number(&mut self, mut message: Message) -> Message {
        message.seq = self.fleet.next_seq;
        self.fleet.next_seq += 1;
        message
    }
}

/// Draws the fault of one message; the faults exclude each other.
fn draw_fault(rng: &mut impl Rng, rates: &FaultRates) -> Option<MessageFault> {
    let draw: f64 = rng.random();
    let mut bound = 0.0;
    [
        (rates.malformed, MessageFault::Malformed),
        (rates.out_of_range, MessageFault::OutOfRange),
        (rates.late, MessageFault::Late),
        (rates.duplicate, MessageFault::Duplicate),
    ]
    .into_iter()
    .find(|(rate, _)| {
        bound += rate;
        draw < bound
    })
    .map(|(_, fault)| fault)
}

/// Puts the first bounded number of an observation out of its range.
fn break_a_value(obs: &mut Observation) {
    let broken = obs
        .values
        .iter()
        .find_map(|(attribute, v)| match (attribute.kind(), v) {
            (Kind::Number { min, max }, Value::Number(_)) => {
                let bad = if max < f64::MAX {
                    max * 1.5 + 1.0
                } else {
                    min - 1.0
                };
                Some((attribute, bad))
            }
            _ => None,
        });
    if let Some((attribute, bad)) = broken {
        obs.values.set(attribute, Value::Number(bad));
    }
}

impl Iterator for Messages<'_> {
    type Item = Message;

    fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(message) = self.ready.pop_front() {
                return Some(self.number(message));
            }
            let entry = self.schedule.pop()?;
            match entry.what {
                What::Tick(index) => self.tick(index, entry.at),
                What::Deliver(message) => return Some(self.number(*message)),
            }
        }
    }
}
