//! Synthetic Mixpanel raw exports (`kmdb generate --format mixpanel`, SPEC
//! §10): one file per day, `YYYY-MM-DD.json` (every K-th gzipped as
//! `.json.gz`), each line `{"event":…,"properties":{…}}`.
//!
//! The people and their sessions are those of the KM generator: Zipf-active
//! people browsing on devices with anonymous ids, signing in during a visit,
//! which Mixpanel records as `$identify` (device id → account), an older
//! project's `$create_alias`, or a `$merge` of both ids. Most events carry
//! an `$insert_id`; about 0.5 % of lines resend an earlier event (its very
//! bytes), in the same day's file or, for the last events of a day, at the
//! start of the next day's file, as Mixpanel's clients do when an
//! acknowledgement is lost. Times are in seconds in the older half of the
//! days and in milliseconds in the newer half (as Mixpanel's exports
//! changed); values include nested objects and arrays, `$`-prefixed
//! properties and nulls; about 0.7 % of lines are faults a loader must
//! count. Same seed, same bytes, as for KM.

use std::fs;
use std::io;
use std::path::Path;

use anyhow::{bail, Context, Result};

use super::lines::*;
use super::rng::*;
use super::sink::*;
use super::vocabulary::*;
use super::{
    Amount, GenerateOptions, GenerateSummary, DAY, HOUR, LINES_PER_PERSON, MAX_PEOPLE, MIN_PEOPLE,
    PROGRESS_STEP, START,
};
use crate::dates::Day;

/// A rough mean line length, to plan the days of [`Amount::Bytes`].
pub const MEAN_LINE_BYTES: u64 = 400;

/// At most this many day files (ten years).
const MAX_DAYS: u64 = 3_650;

/// Event lines kept for resends.
const RESEND_RING: usize = 64;

/// Lines that resend an earlier event, in parts per million...
const RESEND_PPM: u64 = 4_000;
/// ...and at the start of each day, up to this many resends of the last
/// events of the day before.
const NEXT_DAY_RESENDS: u64 = 4;

/// Events without an `$insert_id`: one in this many.
const NO_INSERT_ID_ONE_IN: u64 = 20;

/// Mixpanel's own events, now and then in place of a site's.
const MIXPANEL_EVENTS: &[&str] = &[
    "$mp_web_page_view",
    "$session_start",
    "$ae_session",
    "$campaign_delivery",
];
const LIBRARIES: &[&str] = &["web", "web", "web", "iphone", "android", "python", "ruby"];
const LIB_VERSIONS: &[&str] = &["2.45.0", "2.47.0", "4.9.1", "5.0.3", "4.10.0"];
const COUNTRY_CODES: &[&str] = &["US", "GB", "CA", "DE", "FR", "BR", "IN", "AU", "JP", "ES"];
const REGIONS: &[&str] = &[
    "California",
    "New York",
    "England",
    "Ontario",
    "Bavaria",
    "Île-de-France",
    "São Paulo",
    "Tokyo",
];

/// A line that a loader must reject or count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum MpFault {
    /// An empty or whitespace-only line.
    Blank,
    /// An event cut short.
    Truncated,
    /// A JSON array or text that is no JSON object.
    NotObject,
    /// `event` missing, null or a number.
    EventNotString,
    /// `properties` missing, null or a string.
    PropertiesNotObject,
    /// A `$merge` of one or three ids.
    MergeNotTwo,
    /// An event without `distinct_id`.
    NoDistinctId,
    /// `time` missing, a word or negative.
    BadTime,
    /// `$identify` of a device id with itself.
    SelfAlias,
    /// `$merge` of two numeric accounts.
    NumericMerge,
}

/// Each fault's share of lines, in parts per million (0.75 % in all).
const FAULTS: [(MpFault, u64); 10] = [
    (MpFault::Blank, 2_000),
    (MpFault::Truncated, 1_500),
    (MpFault::NotObject, 500),
    (MpFault::EventNotString, 500),
    (MpFault::PropertiesNotObject, 500),
    (MpFault::MergeNotTwo, 300),
    (MpFault::NoDistinctId, 1_000),
    (MpFault::BadTime, 500),
    (MpFault::SelfAlias, 300),
    (MpFault::NumericMerge, 400),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum MpKind {
    Event,
    /// `$identify`, `$create_alias` or `$merge`.
    Alias,
    /// An earlier event line again.
    Resend,
    Fault(MpFault),
}

/// How a sign-in is recorded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AliasStyle {
    Identify,
    CreateAlias,
    Merge,
}

/// The person browsing: a run of lines with one identity and a clock.
struct MpSession {
    identity: Identity,
    /// Sign-ins still to send, last first: (device or e-mail, account).
    aliases: Vec<(Identity, Identity)>,
    style: AliasStyle,
    login_in: u32,
    remaining: u32,
    t: i64,
}

/// Produces the lines of a Mixpanel export one at a time.
pub(super) struct MpGenerator {
    rng: Rng,
    seed: u64,
    people: Zipf,
    events: Zipf,
    event_names: Vec<String>,
    properties: Zipf,
    property_table: Vec<(String, Value)>,
    session: MpSession,
    /// Times in milliseconds (the newer files).
    millis: bool,
    /// The first and last second of the current day.
    day: (i64, i64),
    buf: Vec<u8>,
    /// Recent event lines (terminator included), for resends.
    ring: Vec<Vec<u8>>,
    ring_next: usize,
}

impl MpGenerator {
    pub(super) fn new(seed: u64, expected_lines: u64) -> MpGenerator {
        let people = (expected_lines / LINES_PER_PERSON).clamp(MIN_PEOPLE, MAX_PEOPLE) as usize;
        let event_names = (0..EVENT_COUNT)
            .map(|i| {
                EVENT_NAMES
                    .get(i)
                    .map_or_else(|| format!("event {}", i + 1), |s| s.to_string())
            })
            .collect();
        let property_table = (0..PROPERTY_COUNT)
            .map(|i| match PROPERTIES.get(i) {
                Some(&(name, value)) => (name.to_string(), value),
                None => (
                    format!("Custom {}", i + 1),
                    CUSTOM_VALUES[i % CUSTOM_VALUES.len()],
                ),
            })
            .collect();
        MpGenerator {
            rng: Rng::new(seed ^ 0x6d69_7870_616e_656c), // "mixpanel"
            seed,
            people: Zipf::new(people, zipf(8.0)),
            events: Zipf::new(EVENT_COUNT, steep_zipf(2.0)),
            event_names,
            properties: Zipf::new(PROPERTY_COUNT, zipf(2.0)),
            property_table,
            session: MpSession {
                identity: Identity::Blank,
                aliases: Vec::with_capacity(2),
                style: AliasStyle::Identify,
                login_in: 0,
                remaining: 0,
                t: START,
            },
            millis: false,
            day: (START, START + DAY - 1),
            buf: Vec::with_capacity(2048),
            ring: Vec::with_capacity(RESEND_RING),
            ring_next: 0,
        }
    }

    /// Starts the file of the day starting at `start`; `millis`: its times
    /// are in milliseconds.
    pub(super) fn start_day(&mut self, start: i64, millis: bool) {
        self.day = (start, start + DAY - 1);
        self.millis = millis;
        self.session.remaining = 0;
    }

    /// Resends that open a day's file: some of the previous day's last events.
    pub(super) fn day_opening_resends(&mut self) -> u64 {
        if self.ring.is_empty() {
            0
        } else {
            self.rng.below(NEXT_DAY_RESENDS + 1)
        }
    }

    /// A resend of one of the last events (the `back`-th last for a resend
    /// that opens a day, else any of them).
    pub(super) fn resend(&mut self, back: Option<usize>) -> (&[u8], MpKind) {
        let n = self.ring.len();
        let i = match back {
            Some(b) => (self.ring_next + n - 1 - b.min(n - 1)) % n,
            None => self.rng.below(n as u64) as usize,
        };
        (&self.ring[i], MpKind::Resend)
    }

    /// The next line (terminator included); `share` is how far into the day
    /// the file is, in `0.0..1.0`.
    pub(super) fn next(&mut self, share: f64) -> (&[u8], MpKind) {
        let roll = self.rng.below(1_000_000);
        if roll < RESEND_PPM && !self.ring.is_empty() {
            return self.resend(None);
        }
        self.buf.clear();
        let kind = match pick(roll - RESEND_PPM.min(roll)) {
            Some(fault) => {
                self.write_fault(fault);
                MpKind::Fault(fault)
            }
            None => self.write_record(share),
        };
        self.buf.push(b'\n');
        if kind == MpKind::Event {
            self.remember();
        }
        (&self.buf, kind)
    }

    /// Keeps the event just written for resends.
    fn remember(&mut self) {
        if self.ring.len() < RESEND_RING {
            self.ring.push(self.buf.clone());
            self.ring_next = self.ring.len() % RESEND_RING;
        } else {
            let slot = &mut self.ring[self.ring_next];
            slot.clear();
            slot.extend_from_slice(&self.buf);
            self.ring_next = (self.ring_next + 1) % RESEND_RING;
        }
    }

    /// Picks a person and plans their visit: its length, identity and sign-in.
    fn start_session(&mut self, share: f64) {
        let person = Person::new(self.seed, self.people.sample(&mut self.rng) as u32);
        let mut length = 1;
        while length < 50 && self.rng.percent(80) {
            length += 1;
        }
        let device = person.cookie(self.rng.below(person.devices));
        let (first, last) = self.day;
        let around = first + ((last - first) as f64 * share) as i64;
        let t = around - HOUR + self.rng.below(2 * HOUR as u64) as i64;
        let session = &mut self.session;
        session.t = t.clamp(first, last);
        session.identity = device;
        session.aliases.clear();
        session.style = match self.rng.below(100) {
            0..=59 => AliasStyle::Identify,
            60..=84 => AliasStyle::CreateAlias,
            _ => AliasStyle::Merge,
        };
        if let Some(account) = person.account {
            match self.rng.below(100) {
                0..=34 => {}
                35..=44 => {
                    session.identity = match account {
                        Account::Email => person.email(),
                        Account::User | Account::EmailThenUser => person.user(0),
                        Account::SharedBrowser => person.user(self.rng.below(2)),
                    };
                }
                _ => {
                    match account {
                        Account::Email => session.aliases.push((device, person.email())),
                        Account::User => session.aliases.push((device, person.user(0))),
                        Account::EmailThenUser => {
                            session.aliases.push((person.email(), person.user(0)));
                            session.aliases.push((device, person.email()));
                        }
                        Account::SharedBrowser => {
                            let which = self.rng.below(2);
                            session.aliases.push((device, person.user(which)));
                        }
                    }
                    session.login_in = self.rng.below(length.into()) as u32;
                    length = length.max(session.login_in + session.aliases.len() as u32);
                }
            }
        }
        session.remaining = length;
    }

    /// The session's next record: a sign-in, else an event.
    fn write_record(&mut self, share: f64) -> MpKind {
        if self.session.remaining == 0 {
            self.start_session(share);
        }
        self.session.remaining -= 1;
        self.session.t = (self.session.t + self.rng.below(120) as i64).min(self.day.1);
        if !self.session.aliases.is_empty() {
            if self.session.login_in == 0 {
                let (from, to) = self.session.aliases.pop().expect("checked non-empty");
                let style = self.session.style;
                self.write_alias(style, from, to);
                self.session.identity = to;
                return MpKind::Alias;
            }
            self.session.login_in -= 1;
        }
        let identity = self.session.identity;
        self.write_event(Some(identity), true);
        MpKind::Event
    }

    /// Writes a faulty line (without terminator).
    fn write_fault(&mut self, fault: MpFault) {
        if self.session.remaining == 0 {
            self.start_session(0.5);
        }
        let identity = self.session.identity;
        match fault {
            MpFault::Blank => {
                if self.rng.percent(20) {
                    self.buf.extend_from_slice(b"  ");
                }
            }
            MpFault::Truncated => {
                self.write_event(Some(identity), true);
                // Never at the last byte: values hold no `}` there.
                let cut = 1 + self.rng.below(self.buf.len() as u64 - 2);
                self.buf.truncate(cut as usize);
            }
            MpFault::NotObject => {
                if self.rng.percent(50) {
                    self.buf.push(b'[');
                    self.write_event(Some(identity), true);
                    self.buf.push(b']');
                } else {
                    let garbage = self.rng.pick(GARBAGE);
                    self.buf.extend_from_slice(garbage.as_bytes());
                }
            }
            MpFault::EventNotString => {
                // `{"event":"NAME",…` (names hold no comma) with another
                // `event`, or none.
                self.write_event(Some(identity), true);
                let comma = self.buf.iter().position(|&b| b == b',').unwrap_or(1);
                let (instead, from): (&[u8], usize) = match self.rng.below(3) {
                    0 => (b"{\"event\":null", comma),
                    1 => (b"{\"event\":42", comma),
                    _ => (b"{", comma + 1),
                };
                self.buf.splice(..from, instead.iter().copied());
            }
            MpFault::PropertiesNotObject => {
                let name = self.rng.pick(EVENT_NAMES);
                self.buf.extend_from_slice(b"{\"event\":");
                push_string(&mut self.buf, name);
                let properties: &[u8] = match self.rng.below(3) {
                    0 => b",\"properties\":null}",
                    1 => b",\"properties\":\"time=1420070400\"}",
                    _ => b"}",
                };
                self.buf.extend_from_slice(properties);
            }
            MpFault::MergeNotTwo => {
                let device = identity;
                let other = Identity::User(10_000 + self.rng.below(1_000_000));
                self.open(MERGE_EVENT);
                self.write_time();
                push_key(&mut self.buf, "$distinct_ids");
                self.buf.push(b'[');
                self.write_identity(device);
                if self.rng.percent(50) {
                    self.buf.push(b',');
                    self.write_identity(other);
                    self.buf.push(b',');
                    self.write_identity(Identity::User(5));
                }
                self.buf.extend_from_slice(b"]}}");
            }
            MpFault::NoDistinctId => self.write_event(None, true),
            MpFault::BadTime => {
                let name = self.pick_event();
                self.open(&name);
                match self.rng.below(3) {
                    0 => {}
                    1 => {
                        push_key(&mut self.buf, "time");
                        push_string(&mut self.buf, "yesterday");
                    }
                    _ => {
                        push_key(&mut self.buf, "time");
                        push_i64(&mut self.buf, -1 - self.rng.below(2_000_000_000) as i64);
                    }
                }
                push_key(&mut self.buf, "distinct_id");
                self.write_identity(identity);
                self.buf.extend_from_slice(b"}}");
            }
            MpFault::SelfAlias => self.write_alias(AliasStyle::Identify, identity, identity),
            MpFault::NumericMerge => {
                let a = 10_000 + self.rng.below(1_000_000);
                let b = a + 1 + self.rng.below(1000);
                self.write_alias(AliasStyle::Merge, Identity::User(a), Identity::User(b));
            }
        }
    }

    /// An event name: mostly a site's, now and then one of Mixpanel's own.
    fn pick_event(&mut self) -> String {
        if self.rng.one_in(25) {
            self.rng.pick(MIXPANEL_EVENTS).to_string()
        } else {
            self.event_names[self.events.sample(&mut self.rng)].clone()
        }
    }

    /// `{"event":NAME,"properties":{` (the name needs no escaping).
    fn open(&mut self, name: &str) {
        self.buf.extend_from_slice(b"{\"event\":");
        push_string(&mut self.buf, name);
        self.buf.extend_from_slice(b",\"properties\":{");
    }

    /// `"time":T` in the file's unit.
    fn write_time(&mut self) {
        push_key(&mut self.buf, "time");
        let t = self.session.t;
        if self.millis {
            push_i64(&mut self.buf, t * 1000 + self.rng.below(1000) as i64);
        } else {
            push_i64(&mut self.buf, t);
        }
    }

    /// An identity as Mixpanel writes it: a device id
    /// (`14a9e0f5c6b1d4-0c8a9e5f3d2b1a-4e5f6a7b-13c680-14a9e0f5c6c2e2`), an
    /// e-mail, or an account id (now and then a JSON number).
    fn write_identity(&mut self, identity: Identity) {
        match identity {
            Identity::Cookie(key) => {
                let (a, b) = (mix64(key), mix64(key ^ GOLDEN_GAMMA));
                let hex = format!(
                    "\"{:014x}-{:014x}-{:08x}-{:06x}-{:014x}\"",
                    a >> 8,
                    b >> 8,
                    a & 0xffff_ffff,
                    b & 0xff_ffff,
                    (a >> 8) + 1
                );
                self.buf.extend_from_slice(hex.as_bytes());
            }
            other => push_identity(&mut self.buf, other, self.rng.one_in(8)),
        }
    }

    /// An event with Mixpanel's default properties and 0-4 of the site's.
    fn write_event(&mut self, identity: Option<Identity>, insert_id: bool) {
        let name = self.pick_event();
        self.open(&name);
        self.write_time();
        if let Some(identity) = identity {
            push_key(&mut self.buf, "distinct_id");
            self.write_identity(identity);
        }
        if insert_id && !self.rng.one_in(NO_INSERT_ID_ONE_IN) {
            push_key(&mut self.buf, "$insert_id");
            let (a, b) = (self.rng.next_u64(), self.rng.next_u64());
            let id = format!("{a:016x}{:08x}", b >> 32);
            push_string(&mut self.buf, &id);
        }
        let lib = self.rng.pick(LIBRARIES);
        push_key(&mut self.buf, "mp_lib");
        push_string(&mut self.buf, lib);
        push_key(&mut self.buf, "$lib_version");
        push_string(&mut self.buf, self.rng.pick(LIB_VERSIONS));
        push_key(&mut self.buf, "$os");
        push_string(&mut self.buf, self.rng.pick(OPERATING_SYSTEMS));
        if lib == "web" {
            push_key(&mut self.buf, "$browser");
            push_string(&mut self.buf, self.rng.pick(BROWSERS));
            push_key(&mut self.buf, "$browser_version");
            push_u64(&mut self.buf, 40 + self.rng.below(80));
            push_key(&mut self.buf, "$current_url");
            self.buf.extend_from_slice(b"\"https://www.example.com");
            write_path(&mut self.rng, &mut self.buf);
            self.buf.push(b'"');
            push_key(&mut self.buf, "$referrer");
            if self.rng.percent(40) {
                // Mixpanel writes null for "none": the property is dropped.
                self.buf.extend_from_slice(b"null");
            } else {
                self.buf.extend_from_slice(b"\"https://www.");
                self.buf
                    .extend_from_slice(self.rng.pick(REFERRERS).as_bytes());
                self.buf.extend_from_slice(b".com/\"");
            }
            push_key(&mut self.buf, "$initial_referrer");
            push_string(&mut self.buf, "$direct");
            push_key(&mut self.buf, "$screen_width");
            push_u64(&mut self.buf, 320 + 16 * self.rng.below(160));
            push_key(&mut self.buf, "$screen_height");
            push_u64(&mut self.buf, 480 + 16 * self.rng.below(70));
        }
        push_key(&mut self.buf, "$city");
        push_string(&mut self.buf, self.rng.pick(CITIES));
        push_key(&mut self.buf, "$region");
        push_string(&mut self.buf, self.rng.pick(REGIONS));
        push_key(&mut self.buf, "mp_country_code");
        push_string(&mut self.buf, self.rng.pick(COUNTRY_CODES));
        let mut chosen = [usize::MAX; 4];
        for i in 0..self.rng.below(5) as usize {
            chosen[i] = self.write_property(&chosen[..i]);
        }
        match self.rng.below(100) {
            0..=2 => {
                push_key(&mut self.buf, "$experiments");
                self.buf.extend_from_slice(b"{\"");
                self.buf
                    .extend_from_slice(self.rng.pick(EXPERIMENTS).as_bytes());
                self.buf.extend_from_slice(b"\":");
                push_string(&mut self.buf, self.rng.pick(VARIANTS));
                self.buf.push(b'}');
            }
            3..=5 => {
                push_key(&mut self.buf, "Tags");
                self.buf.push(b'[');
                for i in 0..1 + self.rng.below(3) {
                    if i > 0 {
                        self.buf.push(b',');
                    }
                    push_string(&mut self.buf, self.rng.pick(WORDS));
                }
                self.buf.push(b']');
            }
            6 => {
                push_key(&mut self.buf, "Coupon");
                self.buf.extend_from_slice(b"null");
            }
            _ => {}
        }
        self.buf.extend_from_slice(b"}}");
    }

    /// A sign-in, as `style` records it.
    fn write_alias(&mut self, style: AliasStyle, from: Identity, to: Identity) {
        match style {
            AliasStyle::Identify => {
                self.open(IDENTIFY_EVENT);
                self.write_time();
                push_key(&mut self.buf, "distinct_id");
                self.write_identity(to);
                push_key(&mut self.buf, "$anon_id");
                self.write_identity(from);
                push_key(&mut self.buf, "$identified_id");
                self.write_identity(to);
            }
            AliasStyle::CreateAlias => {
                self.open(CREATE_ALIAS_EVENT);
                self.write_time();
                push_key(&mut self.buf, "distinct_id");
                self.write_identity(from);
                push_key(&mut self.buf, "alias");
                self.write_identity(to);
            }
            AliasStyle::Merge => {
                self.open(MERGE_EVENT);
                self.write_time();
                push_key(&mut self.buf, "distinct_id");
                self.write_identity(to);
                push_key(&mut self.buf, "$distinct_ids");
                self.buf.push(b'[');
                self.write_identity(from);
                self.buf.push(b',');
                self.write_identity(to);
                self.buf.push(b']');
            }
        }
        push_key(&mut self.buf, "mp_lib");
        push_string(&mut self.buf, self.rng.pick(LIBRARIES));
        self.buf.extend_from_slice(b"}}");
    }

    /// A site property not among `taken`; returns its index.
    fn write_property(&mut self, taken: &[usize]) -> usize {
        let property = loop {
            let p = self.properties.sample(&mut self.rng);
            if !taken.contains(&p) {
                break p;
            }
        };
        let (name, value) = &self.property_table[property];
        push_key(&mut self.buf, name);
        let value = *value;
        write_value(&mut self.rng, &mut self.buf, value);
        property
    }
}

const IDENTIFY_EVENT: &str = "$identify";
const CREATE_ALIAS_EVENT: &str = "$create_alias";
const MERGE_EVENT: &str = "$merge";

fn pick(roll: u64) -> Option<MpFault> {
    let mut bound = 0;
    for (fault, ppm) in FAULTS {
        bound += ppm;
        if roll < bound {
            return Some(fault);
        }
    }
    None
}

/// A property value as JSON (proper JSON: Mixpanel writes no octal escapes).
fn write_value(rng: &mut Rng, buf: &mut Vec<u8>, value: Value) {
    if rng.one_in(300) {
        return push_string(buf, rng.pick(ESCAPED_VALUES));
    }
    match value {
        Value::Choice(options) => push_string(buf, rng.pick(options)),
        Value::Int(max) => push_u64(buf, rng.below(max)),
        Value::Money(max) => {
            let cents = rng.below(max * 100);
            push_u64(buf, cents / 100);
            if cents % 100 != 0 {
                buf.push(b'.');
                buf.extend_from_slice(&[
                    b'0' + (cents % 100 / 10) as u8,
                    b'0' + (cents % 10) as u8,
                ]);
            }
        }
        Value::Bool | Value::Path | Value::Url | Value::Words | Value::Code => {
            write_text_value(rng, buf, value, b"https")
        }
    }
}

/// Writes the export: day files from 2014-01-01 on in `opts.out`, as many
/// days as the amount fills at `opts.file_bytes` a day (1 to 3,650).
pub fn generate(opts: &GenerateOptions, progress: &mut dyn FnMut(u64)) -> Result<GenerateSummary> {
    prepare_dir(&opts.out)?;
    let (expected_lines, expected_bytes) = match opts.amount {
        Amount::Lines(n) => (n, n.saturating_mul(MEAN_LINE_BYTES)),
        Amount::Bytes(b) => (b / MEAN_LINE_BYTES, b),
    };
    let days = expected_bytes
        .div_ceil(opts.file_bytes.max(1))
        .clamp(1, MAX_DAYS);
    let mut lines = MpGenerator::new(opts.seed, expected_lines);
    let mut summary = GenerateSummary::default();
    let mut unreported = 0;
    let first_day = START.div_euclid(DAY);
    for d in 0..days {
        if opts.amount.reached(&summary) {
            break;
        }
        summary.files += 1;
        let gzip = opts
            .gzip_every
            .is_some_and(|k| k > 0 && summary.files % u64::from(k) == 0);
        let day = Day(first_day + d as i64);
        let name = format!("{day}.json{}", if gzip { ".gz" } else { "" });
        let mut file = RevisionFile::create_named(&opts.out, name, gzip)?;
        lines.start_day(day.seconds(), d >= days / 2);
        // Where this day ends: its share of the amount.
        let end = match opts.amount {
            Amount::Lines(n) => Amount::Lines(n * (d + 1) / days),
            Amount::Bytes(b) => Amount::Bytes(b / days * (d + 1)),
        };
        let end = if d + 1 == days { opts.amount } else { end };
        let start = summary;
        let mut write = |bytes: &[u8], summary: &mut GenerateSummary| -> Result<()> {
            file.write_bytes(bytes, None)?;
            summary.lines += 1;
            summary.bytes += bytes.len() as u64;
            unreported += bytes.len() as u64;
            if unreported >= PROGRESS_STEP {
                progress(std::mem::take(&mut unreported));
            }
            Ok(())
        };
        for back in (0..lines.day_opening_resends()).rev() {
            if end.reached(&summary) {
                break;
            }
            let (bytes, _) = lines.resend(Some(back as usize));
            write(bytes, &mut summary)?;
        }
        while !end.reached(&summary) {
            let share = day_share(end, &start, &summary);
            let (bytes, _) = lines.next(share);
            write(bytes, &mut summary)?;
        }
        file.finish()?;
    }
    if unreported > 0 {
        progress(unreported);
    }
    Ok(summary)
}

/// How far into its day a file is, in `0.0..1.0`: the part of the day's
/// amount (up to `end`) written since it started at `start`.
fn day_share(end: Amount, start: &GenerateSummary, now: &GenerateSummary) -> f64 {
    let (done, all) = match end {
        Amount::Lines(n) => (now.lines - start.lines, n.saturating_sub(start.lines)),
        Amount::Bytes(b) => (now.bytes - start.bytes, b.saturating_sub(start.bytes)),
    };
    (done as f64 / all.max(1) as f64).min(1.0)
}

/// Creates `dir` or checks that it holds no export yet.
fn prepare_dir(dir: &Path) -> Result<()> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty; refusing to write an export over another one",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::io::Read;

    use super::*;
    use crate::format::{Format, Outcome, MIXPANEL};
    use crate::record::{Kind, Reject};

    fn options(out: &Path, amount: Amount) -> GenerateOptions {
        GenerateOptions {
            out: out.to_owned(),
            amount,
            seed: 7,
            gzip_every: Some(3),
            file_bytes: 200_000,
        }
    }

    /// `(file name, content)` of every file of an export, by name.
    fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let path = e.unwrap().path();
                let mut content = Vec::new();
                let file = fs::File::open(&path).unwrap();
                if path.extension().is_some_and(|e| e == "gz") {
                    flate2::read::MultiGzDecoder::new(file)
                        .read_to_end(&mut content)
                        .unwrap();
                } else {
                    io::BufReader::new(file).read_to_end(&mut content).unwrap();
                }
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, content)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn same_seed_same_bytes_and_exact_lines() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let first = generate(&options(a.path(), Amount::Lines(5_000)), &mut |_| {}).unwrap();
        let mut reported = 0;
        let second = generate(&options(b.path(), Amount::Lines(5_000)), &mut |n| {
            reported += n
        })
        .unwrap();
        assert_eq!(first, second);
        assert_eq!(reported, second.bytes);
        assert_eq!(first.lines, 5_000);
        assert_eq!(files(a.path()), files(b.path()));
        let names: Vec<String> = files(a.path()).into_iter().map(|f| f.0).collect();
        assert_eq!(names.len() as u64, first.files);
        assert_eq!(names[0], "2014-01-01.json");
        assert_eq!(names[2], "2014-01-03.json.gz");
        let lines: usize = files(a.path())
            .iter()
            .map(|(_, c)| c.iter().filter(|&&b| b == b'\n').count())
            .sum();
        assert_eq!(lines, 5_000);
        generate(
            &GenerateOptions {
                seed: 8,
                ..options(c.path(), Amount::Lines(5_000))
            },
            &mut |_| {},
        )
        .unwrap();
        assert_ne!(files(a.path()), files(c.path()));
        let err = generate(&options(a.path(), Amount::Lines(10)), &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");
    }

    #[test]
    fn bytes_are_met_and_days_fill_evenly() {
        let dir = tempfile::tempdir().unwrap();
        let opts = GenerateOptions {
            gzip_every: None,
            ..options(dir.path(), Amount::Bytes(2_000_000))
        };
        let summary = generate(&opts, &mut |_| {}).unwrap();
        assert!(
            summary.bytes >= 2_000_000 && summary.bytes < 2_002_000,
            "{summary:?}"
        );
        assert_eq!(summary.files, 10);
        for (name, content) in files(dir.path()) {
            let len = content.len() as f64;
            assert!((180_000.0..222_000.0).contains(&len), "{name}: {len}");
        }
    }

    /// Every line is what the generator says it is, as kmdb reads it; times
    /// are seconds in the older half, milliseconds in the newer; resends
    /// repeat earlier events of the same day or, opening a file, of the day
    /// before.
    #[test]
    fn lines_are_what_kmdb_reads() {
        let mut lines = MpGenerator::new(3, 200_000);
        let mut counts: HashMap<MpKind, u64> = HashMap::new();
        let (mut bytes, mut total, mut keyed, mut events) = (0u64, 0u64, 0u64, 0u64);
        let mut late_resends = 0;
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        let (mut nested, mut nulls) = (0, 0);
        for d in 0..20i64 {
            let start = START + d * DAY;
            lines.start_day(start, d >= 10);
            for back in (0..lines.day_opening_resends()).rev() {
                let (line, _) = lines.resend(Some(back as usize));
                assert!(seen.contains(line));
                let Outcome::Record(r) = MIXPANEL.parse_line(&line[..line.len() - 1]) else {
                    panic!("a resend is an event");
                };
                assert_eq!(r.t().div_euclid(DAY), start / DAY - 1, "the day before");
                late_resends += 1;
            }
            for i in 0..10_000 {
                let (line, kind) = lines.next(i as f64 / 10_000.0);
                let line = line.to_vec();
                *counts.entry(kind).or_default() += 1;
                bytes += line.len() as u64;
                total += 1;
                let text = line.strip_suffix(b"\n").expect("terminated");
                let outcome = MIXPANEL.parse_line(text);
                match (kind, &outcome) {
                    (MpKind::Event, Outcome::Record(r)) => {
                        assert_eq!(r.kind(), Kind::Event);
                        assert_eq!(r.t().div_euclid(DAY), start / DAY, "in its day");
                        let time = std::str::from_utf8(text).unwrap();
                        let digits = time.split("\"time\":").nth(1).unwrap();
                        let digits = digits.split(',').next().unwrap();
                        assert_eq!(digits.len(), if d >= 10 { 13 } else { 10 }, "{time}");
                        events += 1;
                        let mut texts = crate::record::Texts::default();
                        let text = std::str::from_utf8(text).unwrap();
                        let entry = MIXPANEL.classify(text, &mut texts).unwrap();
                        keyed += u64::from(entry.duplicate_key().is_some());
                        nested += u64::from(text.contains(":{\"") || text.contains(":[\""));
                        nulls += u64::from(text.contains(":null"));
                        seen.insert(line.clone());
                    }
                    (MpKind::Alias, Outcome::Record(r)) => assert_eq!(r.kind(), Kind::Alias),
                    (MpKind::Resend, Outcome::Record(r)) => {
                        assert_eq!(r.kind(), Kind::Event);
                        assert!(seen.contains(&line), "a resend repeats an event");
                    }
                    (MpKind::Fault(MpFault::Blank), Outcome::Blank) => {}
                    (MpKind::Fault(f), Outcome::Rejected(reason)) => {
                        let want = match f {
                            MpFault::NoDistinctId => Reject::NoIdentity,
                            MpFault::BadTime => Reject::BadTimestamp,
                            MpFault::SelfAlias => Reject::SelfAlias,
                            MpFault::NumericMerge => Reject::NumericAlias,
                            _ => Reject::Malformed,
                        };
                        assert_eq!(*reason, want, "{f:?}: {}", String::from_utf8_lossy(text));
                    }
                    _ => panic!(
                        "{kind:?} read as {outcome:?}: {}",
                        String::from_utf8_lossy(text)
                    ),
                }
            }
        }
        let share = |k: MpKind| *counts.get(&k).unwrap_or(&0) as f64 / total as f64 * 100.0;
        let faults: f64 = FAULTS.iter().map(|&(f, _)| share(MpKind::Fault(f))).sum();
        println!(
            "{total} lines, {:.0} bytes a line: events {:.2} %, aliases {:.2} %, resends {:.2} % (+{late_resends} opening a day), faults {faults:.2} %",
            bytes as f64 / total as f64,
            share(MpKind::Event),
            share(MpKind::Alias),
            share(MpKind::Resend),
        );
        assert!((88.0..96.0).contains(&share(MpKind::Event)));
        assert!((3.0..8.0).contains(&share(MpKind::Alias)));
        assert!((0.3..0.5).contains(&share(MpKind::Resend)));
        assert!((0.6..0.9).contains(&faults));
        assert!(late_resends > 10);
        assert!((0.93..0.97).contains(&(keyed as f64 / events as f64)));
        assert!(nested > events / 50 && nulls > events / 10);
        assert!((300.0..500.0).contains(&(bytes as f64 / total as f64)));
    }

    /// `fixtures/generated-mixpanel` is `kmdb generate --format mixpanel
    /// --out fixtures/generated-mixpanel --lines 2000 --seed 1
    /// --gzip-every 3 --file-size 80KB`: the generator must still write
    /// those bytes (gzip files compared decompressed). After a deliberate
    /// change to the generator, write the sample again.
    #[test]
    fn writes_the_committed_sample_again() {
        let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/generated-mixpanel");
        let dir = tempfile::tempdir().unwrap();
        let opts = GenerateOptions {
            out: dir.path().to_owned(),
            amount: Amount::Lines(2000),
            seed: 1,
            gzip_every: Some(3),
            file_bytes: 80_000,
        };
        generate(&opts, &mut |_| {}).unwrap();
        let (got, want) = (files(dir.path()), files(&sample));
        let names = |f: &[(String, Vec<u8>)]| f.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&got), names(&want));
        for ((name, a), (_, b)) in got.iter().zip(&want) {
            assert!(a == b, "{name} differs from the committed sample");
        }
    }
}
