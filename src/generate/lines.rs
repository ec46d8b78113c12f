//! The lines of a generated export: people, sessions, events, aliases and
//! the faults a loader must reject.

use super::rng::*;
use super::vocabulary::*;
use super::*;

/// Event names: the realistic ones, then `event N`.
pub(super) const EVENT_COUNT: usize = 120;
/// Property names: the realistic ones, then `Custom N`.
pub(super) const PROPERTY_COUNT: usize = 100;

/// How a property's values look.
#[derive(Clone, Copy)]
pub(super) enum Value {
    Choice(&'static [&'static str]),
    /// An integer below the bound, now and then as a string.
    Int(u64),
    /// An amount below the bound with up to two decimals: `49.99`, `3.5`, `12`.
    Money(u64),
    Bool,
    Path,
    Url,
    /// One to four words.
    Words,
    /// An eight-character code such as an order id.
    Code,
}

/// One generated line, terminator included.
pub(super) struct Line<'a> {
    pub(super) bytes: &'a [u8],
    #[cfg_attr(not(test), allow(dead_code))] // The tests tally kinds.
    pub(super) kind: Kind,
    /// `_t` if the line is a complete JSON object with a valid one.
    pub(super) timestamp: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Kind {
    Event,
    Properties,
    Alias,
    Fault(Fault),
}

/// A line that a loader must reject or count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Fault {
    /// An empty or whitespace-only line.
    Blank,
    /// A record cut short.
    Truncated,
    /// A bare JSON array.
    Array,
    /// Text that is not a JSON object.
    Garbage,
    MissingIdentity,
    /// `"_p":""`.
    EmptyIdentity,
    MissingTime,
    /// `_t` is a word.
    WordTime,
    NegativeTime,
    /// `_t` after the year 9999.
    FarFutureTime,
    /// Only `_p` and `_t`: nothing to record.
    Empty,
    /// An alias of an identity to itself.
    SelfAlias,
    /// An alias between two numeric user ids, which would merge two accounts.
    NumericAlias,
    /// An exact copy of the previous line.
    Duplicate,
}

/// Each fault's share of lines, in parts per million (1.4 % in all).
pub(super) const FAULTS: [(Fault, u64); 14] = [
    (Fault::Blank, 2_500),
    (Fault::Truncated, 1_500),
    (Fault::Array, 500),
    (Fault::Garbage, 500),
    (Fault::MissingIdentity, 1_000),
    (Fault::EmptyIdentity, 1_000),
    (Fault::MissingTime, 1_000),
    (Fault::WordTime, 500),
    (Fault::NegativeTime, 500),
    (Fault::FarFutureTime, 500),
    (Fault::Empty, 1_000),
    (Fault::SelfAlias, 1_000),
    (Fault::NumericAlias, 500),
    (Fault::Duplicate, 2_000),
];

/// How `_t` is written.
#[derive(Clone, Copy)]
pub(super) enum When {
    At(i64),
    Missing,
    Word,
    Negative,
    FarFuture,
}

/// A `_p` or `_p2` value.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Identity {
    /// An anonymous cookie: base64 of 20 bytes derived from the key.
    Cookie(u64),
    /// `name.surname123@example.com`, unique through the person's index.
    Email { person: u32, key: u64 },
    /// A numeric user id, written as a string or now and then as a JSON number.
    User(u64),
    /// `""`: a fault.
    Blank,
}

/// How a person identifies after signing up.
#[derive(Clone, Copy)]
pub(super) enum Account {
    Email,
    User,
    /// An e-mail address that the site later aliases to a numeric user id.
    EmailThenUser,
    /// Two numeric accounts used from one shared browser.
    SharedBrowser,
}

/// Everything about a person, derived from the seed and their index.
pub(super) struct Person {
    pub(super) index: u32,
    pub(super) key: u64,
    pub(super) account: Option<Account>,
    /// Browsers, each with its own cookie.
    pub(super) devices: u64,
}

impl Person {
    pub(super) fn new(seed: u64, index: u32) -> Self {
        let key = mix64(seed ^ mix64(u64::from(index)));
        let account = match key % 100 {
            0..=49 => None,
            50..=71 => Some(Account::Email),
            72..=87 => Some(Account::User),
            88..=95 => Some(Account::EmailThenUser),
            _ => Some(Account::SharedBrowser),
        };
        let devices = match account {
            Some(Account::SharedBrowser) => 1,
            _ => 1 + (key >> 32) % 3,
        };
        Self {
            index,
            key,
            account,
            devices,
        }
    }

    pub(super) fn cookie(&self, device: u64) -> Identity {
        Identity::Cookie(mix64(self.key ^ (device + 1).wrapping_mul(GOLDEN_GAMMA)))
    }

    pub(super) fn email(&self) -> Identity {
        Identity::Email {
            person: self.index,
            key: self.key,
        }
    }

    /// The person's `which`-th numeric account (0 or 1): ids are unique across people.
    pub(super) fn user(&self, which: u64) -> Identity {
        Identity::User(10_000 + 2 * u64::from(self.index) + which)
    }
}

/// The person currently browsing: a run of lines with one identity and a clock.
pub(super) struct Session {
    pub(super) identity: Identity,
    /// `identity` as written in this session's records.
    pub(super) identity_json: Vec<u8>,
    /// Aliases sent on login, last first.
    pub(super) aliases: Vec<(Identity, Identity)>,
    /// Lines to go before the aliases are sent.
    pub(super) login_in: u32,
    /// Lines left in the session.
    pub(super) remaining: u32,
    pub(super) t: i64,
}

/// Produces the lines of an export one at a time.
pub(super) struct LineGenerator {
    pub(super) rng: Rng,
    pub(super) seed: u64,
    pub(super) people: Zipf,
    pub(super) events: Zipf,
    pub(super) event_names: Vec<String>,
    pub(super) properties: Zipf,
    pub(super) property_table: Vec<(String, Value)>,
    pub(super) session: Session,
    /// The current line; kept until the next so that it can be duplicated.
    pub(super) buf: Vec<u8>,
    /// Whether `buf` holds a record, which a duplicate may copy.
    pub(super) buf_is_record: bool,
    /// The valid `_t` of the line in `buf`.
    pub(super) buf_timestamp: Option<i64>,
}

impl LineGenerator {
    pub(super) fn new(seed: u64, expected_lines: u64) -> Self {
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
        let session = Session {
            identity: Identity::Blank,
            identity_json: Vec::new(),
            aliases: Vec::with_capacity(2),
            login_in: 0,
            remaining: 0,
            t: START,
        };
        let mut generator = Self {
            rng: Rng::new(seed),
            seed,
            people: Zipf::new(people, zipf(8.0)),
            events: Zipf::new(EVENT_COUNT, steep_zipf(2.0)),
            event_names,
            properties: Zipf::new(PROPERTY_COUNT, zipf(2.0)),
            property_table,
            session,
            buf: Vec::with_capacity(1024),
            buf_is_record: false,
            buf_timestamp: None,
        };
        generator.start_session(START);
        generator
    }

    /// Generates the next line; `now` is where the export's clock stands.
    pub(super) fn next(&mut self, now: i64) -> Line<'_> {
        let roll = self.rng.below(1_000_000);
        let fault = match pick_fault(roll) {
            Some(Fault::Duplicate) if self.buf_is_record => {
                // The previous line is still in `buf`.
                return Line {
                    bytes: &self.buf,
                    kind: Kind::Fault(Fault::Duplicate),
                    timestamp: self.buf_timestamp,
                };
            }
            Some(Fault::Duplicate) => None, // nothing to copy: a record instead
            fault => fault,
        };
        self.buf.clear();
        let (kind, timestamp) = match fault {
            Some(fault) => (Kind::Fault(fault), self.write_fault(fault)),
            None => self.write_record(now),
        };
        let ending: &[u8] = if self.rng.one_in(500) { b"\r\n" } else { b"\n" };
        self.buf.extend_from_slice(ending);
        self.buf_is_record = !matches!(kind, Kind::Fault(_));
        self.buf_timestamp = timestamp;
        Line {
            bytes: &self.buf,
            kind,
            timestamp,
        }
    }

    /// Picks a person and plans their visit: its length, identity and login.
    pub(super) fn start_session(&mut self, now: i64) {
        let rank = self.people.sample(&mut self.rng);
        let person = Person::new(self.seed, rank as u32);
        let mut length = 1;
        while length < 50 && self.rng.percent(80) {
            length += 1;
        }
        let cookie = person.cookie(self.rng.below(person.devices));
        let mut identity = cookie;
        let session = &mut self.session;
        session.aliases.clear();
        session.t = match self.rng.below(1000) {
            0 => START + self.rng.below(SPAN as u64) as i64, // a straggler from anywhere
            1..=250 => now - 3 * DAY + self.rng.below(6 * DAY as u64) as i64,
            _ => now - 6 * HOUR + self.rng.below(12 * HOUR as u64) as i64,
        };
        if let Some(account) = person.account {
            match self.rng.below(100) {
                0..=34 => {} // browses anonymously
                35..=44 => {
                    // Logged in already on this browser.
                    identity = match account {
                        Account::Email => person.email(),
                        Account::User | Account::EmailThenUser => person.user(0),
                        Account::SharedBrowser => person.user(self.rng.below(2)),
                    };
                }
                _ => {
                    // Logs in during the visit: the site aliases the cookie to the account.
                    match account {
                        Account::Email => session.aliases.push((cookie, person.email())),
                        Account::User => session.aliases.push((cookie, person.user(0))),
                        Account::EmailThenUser => {
                            session.aliases.push((person.email(), person.user(0)));
                            session.aliases.push((cookie, person.email()));
                        }
                        Account::SharedBrowser => {
                            session
                                .aliases
                                .push((cookie, person.user(self.rng.below(2))));
                        }
                    }
                    session.login_in = self.rng.below(length.into()) as u32;
                    length = length.max(session.login_in + session.aliases.len() as u32);
                }
            }
        }
        session.remaining = length;
        self.set_identity(identity);
    }

    /// Writes the session's next record: an alias at login, else an event or a property set.
    pub(super) fn write_record(&mut self, now: i64) -> (Kind, Option<i64>) {
        if self.session.remaining == 0 {
            self.start_session(now);
        }
        self.session.remaining -= 1;
        self.session.t += self.rng.below(120) as i64;
        let t = self.session.t;
        if !self.session.aliases.is_empty() {
            if self.session.login_in == 0 {
                let (from, to) = self.session.aliases.pop().expect("checked non-empty");
                let timestamp = self.write_alias(from, to, t);
                self.set_identity(to);
                return (Kind::Alias, timestamp);
            }
            self.session.login_in -= 1;
        }
        let identity = self.session.identity;
        if self.rng.percent(20) {
            let count = 1 + self.rng.below(4) as usize;
            (
                Kind::Properties,
                self.write_object(None, Some(identity), When::At(t), count),
            )
        } else {
            (Kind::Event, self.write_event(Some(identity), When::At(t)))
        }
    }

    /// Writes a faulty line (without terminator) and returns its valid `_t`, if any.
    pub(super) fn write_fault(&mut self, fault: Fault) -> Option<i64> {
        let identity = self.session.identity;
        let t = self.session.t;
        match fault {
            Fault::Blank => {
                if self.rng.percent(20) {
                    self.buf.extend_from_slice(b"  ");
                }
                None
            }
            Fault::Truncated => {
                self.write_event(Some(identity), When::At(t));
                // Never keeps the closing brace: values contain none.
                let cut = 1 + self.rng.below(self.buf.len() as u64 - 2);
                self.buf.truncate(cut as usize);
                None
            }
            Fault::Array => {
                self.buf.push(b'[');
                self.write_event(Some(identity), When::At(t));
                self.buf.push(b']');
                None
            }
            Fault::Garbage => {
                let garbage = self.rng.pick(GARBAGE);
                self.buf.extend_from_slice(garbage.as_bytes());
                None
            }
            Fault::MissingIdentity => self.write_event(None, When::At(t)),
            Fault::EmptyIdentity => self.write_event(Some(Identity::Blank), When::At(t)),
            Fault::MissingTime => self.write_event(Some(identity), When::Missing),
            Fault::WordTime => self.write_event(Some(identity), When::Word),
            Fault::NegativeTime => self.write_event(Some(identity), When::Negative),
            Fault::FarFutureTime => self.write_event(Some(identity), When::FarFuture),
            Fault::Empty => self.write_object(None, Some(identity), When::At(t), 0),
            Fault::SelfAlias => self.write_alias(identity, identity, t),
            Fault::NumericAlias => {
                let a = 10_000 + self.rng.below(1_000_000);
                let b = a + 1 + self.rng.below(1000);
                self.write_alias(Identity::User(a), Identity::User(b), t)
            }
            Fault::Duplicate => unreachable!("duplicates are copies of the previous line"),
        }
    }

    /// Writes an event with 0–5 properties.
    pub(super) fn write_event(&mut self, identity: Option<Identity>, when: When) -> Option<i64> {
        let name = self.events.sample(&mut self.rng);
        let count = match self.rng.below(100) {
            0..=14 => 0,
            15..=39 => 1,
            40..=64 => 2,
            65..=79 => 3,
            80..=91 => 4,
            _ => 5,
        };
        self.write_object(Some(name), identity, when, count)
    }

    /// Writes a record: `_n` (event index) if given, `_p` if given, `_t` and `count`
    /// properties. As in KM's exports, the reserved keys come last, first or amid the
    /// properties.
    pub(super) fn write_object(
        &mut self,
        name: Option<usize>,
        identity: Option<Identity>,
        when: When,
        count: usize,
    ) -> Option<i64> {
        let reserved_at = match self.rng.below(10) {
            0..=4 => count,
            5..=8 => 0,
            _ => self.rng.below(count as u64 + 1) as usize,
        };
        let mut timestamp = None;
        let mut chosen = [usize::MAX; 5];
        self.buf.push(b'{');
        for i in 0..=count {
            if i == reserved_at {
                if let Some(name) = name {
                    push_key(&mut self.buf, "_n");
                    push_string(&mut self.buf, &self.event_names[name]);
                }
                if let Some(identity) = identity {
                    push_key(&mut self.buf, "_p");
                    self.write_identity(identity);
                }
                timestamp = self.write_time(when);
            }
            if i < count {
                chosen[i] = self.write_property(&chosen[..i]);
            }
        }
        self.buf.push(b'}');
        timestamp
    }

    /// Writes an alias record, with `_p` or `_p2` first.
    pub(super) fn write_alias(&mut self, from: Identity, to: Identity, t: i64) -> Option<i64> {
        let ((key1, id1), (key2, id2)) = if self.rng.percent(50) {
            (("_p", from), ("_p2", to))
        } else {
            (("_p2", to), ("_p", from))
        };
        self.buf.push(b'{');
        push_key(&mut self.buf, key1);
        let start = self.buf.len();
        self.write_identity(id1);
        let end = self.buf.len();
        push_key(&mut self.buf, key2);
        if id1 == id2 {
            // A self alias repeats the very same bytes.
            self.buf.extend_from_within(start..end);
        } else {
            self.write_identity(id2);
        }
        let timestamp = self.write_time(When::At(t));
        self.buf.push(b'}');
        timestamp
    }

    /// Writes `"_t":…` (unless missing) and returns the timestamp if it is valid.
    pub(super) fn write_time(&mut self, when: When) -> Option<i64> {
        if let When::Missing = when {
            return None;
        }
        push_key(&mut self.buf, "_t");
        let buf = &mut self.buf;
        match when {
            When::At(t) => {
                match self.rng.below(1000) {
                    0..=24 => {
                        push_i64(buf, t);
                        buf.extend_from_slice(
                            self.rng
                                .pick(&[".5", ".25", ".125", ".75", ".0", ".999"])
                                .as_bytes(),
                        );
                    }
                    25..=34 => {
                        buf.push(b'"');
                        push_i64(buf, t);
                        buf.push(b'"');
                    }
                    _ => push_i64(buf, t),
                }
                return (0..YEAR_10000).contains(&t).then_some(t);
            }
            When::Word => push_string(
                buf,
                self.rng
                    .pick(&["yesterday", "now", "NaN", "", "1400000000abc"]),
            ),
            When::Negative => push_i64(buf, -1 - self.rng.below(2_000_000_000) as i64),
            When::FarFuture => push_i64(buf, YEAR_10000 + self.rng.below(1 << 40) as i64),
            When::Missing => unreachable!(),
        }
        None
    }

    /// Writes an identity; the session's own comes rendered already.
    pub(super) fn write_identity(&mut self, identity: Identity) {
        if identity == self.session.identity {
            self.buf.extend_from_slice(&self.session.identity_json);
        } else {
            push_identity(&mut self.buf, identity, self.rng.one_in(8));
        }
    }

    /// Switches the session to `identity`, choosing once how a numeric id is written.
    pub(super) fn set_identity(&mut self, identity: Identity) {
        let session = &mut self.session;
        session.identity = identity;
        session.identity_json.clear();
        push_identity(&mut session.identity_json, identity, self.rng.one_in(8));
    }

    /// Writes a Zipf-chosen property not among `taken` and returns its index.
    pub(super) fn write_property(&mut self, taken: &[usize]) -> usize {
        let property = loop {
            let p = self.properties.sample(&mut self.rng);
            if !taken.contains(&p) {
                break p;
            }
        };
        let (name, value) = &self.property_table[property];
        push_key(&mut self.buf, name);
        let value = *value;
        self.write_value(value);
        property
    }

    pub(super) fn write_value(&mut self, value: Value) {
        let rng = &mut self.rng;
        let buf = &mut self.buf;
        // KM quirks: JSON-escaped control characters, and octal escapes that are not JSON.
        if rng.one_in(300) {
            return push_string(buf, rng.pick(ESCAPED_VALUES));
        }
        if rng.one_in(3000) {
            return push_string(buf, rng.pick(OCTAL_VALUES));
        }
        match value {
            Value::Choice(options) => push_string(buf, rng.pick(options)),
            Value::Int(max) if rng.one_in(10) => {
                buf.push(b'"');
                push_u64(buf, rng.below(max));
                buf.push(b'"');
            }
            Value::Int(max) => push_u64(buf, rng.below(max)),
            Value::Money(max) => {
                let cents = rng.below(max * 100);
                push_u64(buf, cents / 100);
                match cents % 100 {
                    0 => {}
                    c if c % 10 == 0 => {
                        buf.push(b'.');
                        push_u64(buf, c / 10);
                    }
                    c => {
                        buf.push(b'.');
                        buf.extend_from_slice(&[b'0' + (c / 10) as u8, b'0' + (c % 10) as u8]);
                    }
                }
            }
            Value::Bool | Value::Path | Value::Url | Value::Words | Value::Code => {
                write_text_value(rng, buf, value, b"http")
            }
        }
    }
}

pub(super) fn pick_fault(roll: u64) -> Option<Fault> {
    let mut bound = 0;
    for (fault, ppm) in FAULTS {
        bound += ppm;
        if roll < bound {
            return Some(fault);
        }
    }
    None
}

/// The values both generators write alike: a boolean, a path, a URL of
/// `scheme`, words, a code. Other values are the caller's.
pub(super) fn write_text_value(rng: &mut Rng, buf: &mut Vec<u8>, value: Value, scheme: &[u8]) {
    match value {
        Value::Bool => buf.extend_from_slice(if rng.percent(50) { b"true" } else { b"false" }),
        Value::Path => {
            buf.push(b'"');
            write_path(rng, buf);
            buf.push(b'"');
        }
        Value::Url => {
            buf.push(b'"');
            buf.extend_from_slice(scheme);
            buf.extend_from_slice(b"://www.example.com");
            write_path(rng, buf);
            buf.push(b'"');
        }
        Value::Words => {
            buf.push(b'"');
            for i in 0..1 + rng.below(4) {
                if i > 0 {
                    buf.push(b' ');
                }
                buf.extend_from_slice(rng.pick(WORDS).as_bytes());
            }
            buf.push(b'"');
        }
        Value::Code => {
            buf.push(b'"');
            let code = rng.next_u64();
            for shift in (0..40).step_by(5) {
                buf.push(b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789"[(code >> shift) as usize & 31]);
            }
            buf.push(b'"');
        }
        Value::Choice(_) | Value::Int(_) | Value::Money(_) => {
            unreachable!("choices, integers and money are the caller's")
        }
    }
}

/// Writes a site path such as `/pricing` or `/blog/post-17`.
pub(super) fn write_path(rng: &mut Rng, buf: &mut Vec<u8>) {
    buf.extend_from_slice(rng.pick(PATHS).as_bytes());
    if rng.percent(30) {
        buf.extend_from_slice(b"/post-");
        push_u64(buf, rng.below(500));
    }
}

// ---------------------------------------------------------------------------
// JSON and number formatting

/// Writes an identity as a JSON string, or a numeric user id as a number if `as_number`.
pub(super) fn push_identity(buf: &mut Vec<u8>, identity: Identity, as_number: bool) {
    match identity {
        Identity::Cookie(key) => {
            buf.push(b'"');
            push_cookie(buf, key);
            buf.push(b'"');
        }
        Identity::Email { person, key } => {
            buf.push(b'"');
            buf.extend_from_slice(
                FIRST_NAMES[(key % FIRST_NAMES.len() as u64) as usize].as_bytes(),
            );
            if key & (1 << 20) != 0 {
                buf.push(b'.');
                buf.extend_from_slice(
                    LAST_NAMES[((key >> 24) % LAST_NAMES.len() as u64) as usize].as_bytes(),
                );
            }
            push_u64(buf, u64::from(person));
            buf.push(b'@');
            buf.extend_from_slice(
                DOMAINS[((key >> 40) % DOMAINS.len() as u64) as usize].as_bytes(),
            );
            buf.push(b'"');
        }
        Identity::User(id) if as_number => push_u64(buf, id),
        Identity::User(id) => {
            buf.push(b'"');
            push_u64(buf, id);
            buf.push(b'"');
        }
        Identity::Blank => buf.extend_from_slice(b"\"\""),
    }
}

/// Writes `"key":`, preceded by a comma unless it is the object's first key.
pub(super) fn push_key(buf: &mut Vec<u8>, key: &str) {
    if buf.last() != Some(&b'{') {
        buf.push(b',');
    }
    push_string(buf, key);
    buf.push(b':');
}

/// Writes a string that needs no escaping (or whose escapes are in place already).
pub(super) fn push_string(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    buf.extend_from_slice(s.as_bytes());
    buf.push(b'"');
}

/// Writes a number in decimal, two digits at a time.
pub(super) fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    const PAIRS: [u8; 200] = {
        let mut pairs = [0; 200];
        let mut i = 0;
        while i < 100 {
            pairs[2 * i] = b'0' + (i / 10) as u8;
            pairs[2 * i + 1] = b'0' + (i % 10) as u8;
            i += 1;
        }
        pairs
    };
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        start -= 2;
        digits[start..start + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        start -= 2;
        digits[start..start + 2].copy_from_slice(&PAIRS[n as usize * 2..n as usize * 2 + 2]);
    } else {
        start -= 1;
        digits[start] = b'0' + n as u8;
    }
    buf.extend_from_slice(&digits[start..]);
}

pub(super) fn push_i64(buf: &mut Vec<u8>, n: i64) {
    if n < 0 {
        buf.push(b'-');
    }
    push_u64(buf, n.unsigned_abs());
}

/// Writes an anonymous cookie: standard base64 of 20 bytes derived from `key`.
pub(super) fn push_cookie(buf: &mut Vec<u8>, key: u64) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bytes = [0u8; 24];
    for (i, chunk) in bytes.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&mix64(key.wrapping_add(i as u64)).to_le_bytes());
    }
    for chunk in bytes[..20].chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            let c = if i <= chunk.len() {
                ALPHABET[(n >> (18 - 6 * i)) as usize & 63]
            } else {
                b'='
            };
            buf.push(c);
        }
    }
}

// ---------------------------------------------------------------------------
// Randomness
