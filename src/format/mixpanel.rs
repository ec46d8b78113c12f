//! Mixpanel's raw event export (SPEC §10): day files `YYYY-MM-DD.json[l]`
//! (or `N.json[l]`, optionally gzip), one `{"event":…,"properties":{…}}`
//! a line. Each line becomes the KM record of §10's table, and from there
//! §3 decides as for KM; an event's `$insert_id` gives it a duplicate key.

use std::borrow::Cow;

use super::Format;
use crate::dates::Day;
use crate::record::{
    array_values, flat_object, full_object, is_json_number, Entry, Fields, Kind, Members, Reject,
    Texts, Value, View,
};
use crate::source::FileNames;

/// The Mixpanel format.
pub struct Mixpanel;

/// The one value of [`Mixpanel`].
pub static MIXPANEL: Mixpanel = Mixpanel;

/// The event names that are aliases (SPEC §10).
const CREATE_ALIAS: &str = "$create_alias";
const IDENTIFY: &str = "$identify";
const MERGE: &str = "$merge";

impl FileNames for Mixpanel {
    /// `YYYY-MM-DD.json`, `.jsonl`, optionally `.gz`: the day's number since
    /// 1970-01-01 (`2015-01-01.json` is 16436); `N.json[l][.gz]`: `N` (as
    /// for KM, `u64::MAX` when too large, so that the listing names it).
    fn revision_of(&self, name: &str) -> Option<(u64, bool)> {
        let (name, gzip) = match name.strip_suffix(".gz") {
            Some(stem) => (stem, true),
            None => (name, false),
        };
        let stem = name
            .strip_suffix(".jsonl")
            .or_else(|| name.strip_suffix(".json"))?;
        if !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()) {
            return Some((stem.parse().unwrap_or(u64::MAX), gzip));
        }
        let b = stem.as_bytes();
        let shaped = b.len() == 10
            && b[4] == b'-'
            && b[7] == b'-'
            && b.iter()
                .enumerate()
                .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
        if !shaped {
            return None;
        }
        // Years 1970 to 9999, real days only (`2015-02-30` is not one).
        let day = Day::parse(stem).ok()?;
        Some((u64::try_from(day.0).ok()?, gzip))
    }

    /// Any other name that starts with a digit or holds `.json` (in any
    /// case), such as `2015-1-1.json`, `2015-02-30.json`, `2015-01-01.JSON`,
    /// `2015-01-01.json.bz2`, `export.json` or `2015-01-01.csv`, is named in
    /// a warning; hidden files and names in subfolders are passed over.
    fn near_miss(&self, name: &str) -> bool {
        !name.starts_with('.')
            && !name.contains('/')
            && (name.starts_with(|c: char| c.is_ascii_digit())
                || name.to_ascii_lowercase().contains(".json"))
            && self.revision_of(name).is_none()
    }

    /// The files are in the source directory itself (no `revisions/`).
    fn folder(&self) -> Option<&'static str> {
        None
    }

    fn names(&self) -> &'static str {
        "YYYY-MM-DD.json[l][.gz] or N.json[l][.gz]"
    }

    /// A day file's revision number means nothing to its user: the rejects
    /// file names the file.
    fn rejects_name_files(&self) -> bool {
        true
    }
}

/// Whether a Mixpanel line's `properties` member was seen, and how.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Missing,
    Object,
    NotObject,
}

/// A Mixpanel line's members: the top-level `event` and `properties`, and
/// inside `properties` the members §10 routes; every other member of
/// `properties` goes to the record's properties as it is read.
struct MpMembers<'a, 't> {
    fields: Fields<'a, 't>,
    /// Reading the members of `properties`.
    inside: bool,
    properties: Shape,
    event: Option<Value<'a>>,
    distinct_id: Option<Value<'a>>,
    time: Option<Value<'a>>,
    /// Members that are properties of an event, but the identities of an
    /// alias: `alias`, `$anon_id`, `$identified_id`, `$distinct_ids`.
    alias: Option<Value<'a>>,
    anon_id: Option<Value<'a>>,
    identified_id: Option<Value<'a>>,
    distinct_ids: Option<Value<'a>>,
    insert_id: Option<Value<'a>>,
}

impl<'a, 't> MpMembers<'a, 't> {
    fn new(texts: &'t mut Texts, len: usize) -> MpMembers<'a, 't> {
        MpMembers {
            fields: Fields::new(texts, len),
            inside: false,
            properties: Shape::Missing,
            event: None,
            distinct_id: None,
            time: None,
            alias: None,
            anon_id: None,
            identified_id: None,
            distinct_ids: None,
            insert_id: None,
        }
    }

    /// The KM record of the line (SPEC §10's table), then §3's decision,
    /// and the event's `$insert_id` (see [`keyed`]).
    fn into_entry(self) -> Result<(Entry, Option<Value<'a>>), Reject> {
        let MpMembers {
            mut fields,
            properties,
            event,
            distinct_id,
            time,
            alias,
            anon_id,
            identified_id,
            distinct_ids,
            insert_id,
            ..
        } = self;
        let event = match event {
            Some(Value::Str(name)) if properties == Shape::Object && !name.is_empty() => name,
            _ => {
                fields.abandon();
                return Err(Reject::Malformed);
            }
        };
        let (identity, other) = match &*event {
            CREATE_ALIAS => (distinct_id, alias),
            IDENTIFY => (anon_id, identified_id),
            MERGE => match distinct_ids.as_ref().and_then(two_items) {
                Some((a, b)) => (Some(a), Some(b)),
                None => {
                    fields.abandon();
                    return Err(Reject::Malformed);
                }
            },
            _ => (distinct_id, None),
        };
        let is_alias = matches!(&*event, CREATE_ALIAS | IDENTIFY | MERGE);
        if is_alias {
            // An alias record is `_p`, `_p2` and `_t`, nothing else.
            fields.drop_properties();
            if let Some(other) = other {
                fields.other(other);
            }
        } else {
            fields.name(Value::Str(event));
        }
        if let Some(identity) = identity {
            fields.identity(identity);
        }
        if let Some(time) = time {
            fields.time(in_seconds(time));
        }
        let entry = fields.into_entry()?;
        Ok((entry, insert_id))
    }
}

/// `entry` (classified into `texts`) with its duplicate key when it is an
/// event with an `$insert_id` that is not null or empty.
fn keyed(
    classified: Result<(Entry, Option<Value<'_>>), Reject>,
    texts: &Texts,
) -> Result<Entry, Reject> {
    let (entry, insert_id) = classified?;
    let id = insert_id.as_ref().and_then(Value::text).unwrap_or("");
    if entry.kind() != Kind::Event || id.is_empty() {
        return Ok(entry);
    }
    match entry.view(texts) {
        View::Event {
            identity, name, t, ..
        } => Ok(entry.with_duplicate_key(duplicate_key(id, identity, name, t))),
        _ => Ok(entry),
    }
}

impl<'a> Members<'a> for MpMembers<'a, '_> {
    /// `properties.time` is read whole (it is parsed as a number), and
    /// `$distinct_ids` (its two items are found in its text).
    fn read_whole(&self, key: &str) -> bool {
        self.inside && (key == "time" || key == "$distinct_ids")
    }

    #[inline]
    fn member(&mut self, key: Cow<'a, str>, value: Value<'a>) {
        if !self.inside {
            match &*key {
                "event" => self.event = Some(value),
                "properties" => self.properties = Shape::NotObject,
                _ => {}
            }
            return;
        }
        let saved = match &*key {
            "time" => return self.time = Some(value),
            "distinct_id" => return self.distinct_id = Some(value),
            "$insert_id" => &mut self.insert_id,
            "alias" => &mut self.alias,
            "$anon_id" => &mut self.anon_id,
            "$identified_id" => &mut self.identified_id,
            "$distinct_ids" => &mut self.distinct_ids,
            _ => return self.fields.member(&key, &value),
        };
        *saved = Some(value.clone());
        self.fields.member(&key, &value);
    }

    #[inline]
    fn enter(&mut self, key: &str) -> bool {
        if self.inside || key != "properties" {
            return false;
        }
        // A second `properties` adds its members to the first's, a key
        // repeated there taking the later value (as a repeated key does).
        self.inside = true;
        self.properties = Shape::Object;
        true
    }

    #[inline]
    fn leave(&mut self) {
        self.inside = false;
    }
}

/// The two items of a `$distinct_ids` array; `None` unless it is an array
/// of exactly two.
fn two_items<'a>(value: &Value<'a>) -> Option<(Value<'a>, Value<'a>)> {
    let Value::Other(text) = value else {
        return None;
    };
    let items = array_values(text)?;
    let [a, b]: [Value<'_>; 2] = items.try_into().ok()?;
    Some((owned(a), owned(b)))
}

/// A value that borrows nothing.
fn owned(value: Value<'_>) -> Value<'static> {
    let own = |s: Cow<'_, str>| Cow::Owned(s.into_owned());
    match value {
        Value::Null => Value::Null,
        Value::Str(s) => Value::Str(own(s)),
        Value::Number(s) => Value::Number(own(s)),
        Value::Other(s) => Value::Other(own(s)),
    }
}

/// `properties.time` in seconds: a number (or numeric string) above 10^11
/// is in milliseconds and is divided by 1000, exactly, on its decimal text
/// (the truncation and §3's range check follow in [`Value::timestamp`]).
fn in_seconds(time: Value<'_>) -> Value<'_> {
    let (Value::Number(text) | Value::Str(text)) = &time else {
        return time;
    };
    if !above_10_11(text) {
        return time;
    }
    let b = text.as_bytes();
    if let Cow::Borrowed(s) = text {
        // The common case, integer milliseconds: drop the last three digits.
        if b[0] != b'0' && b.iter().all(u8::is_ascii_digit) {
            return Value::Number(Cow::Borrowed(&s[..s.len() - 3]));
        }
    }
    let (mantissa, exp) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().ok()),
        None => (&text[..], Some(0)),
    };
    match exp.and_then(|e| e.checked_sub(3)) {
        Some(exp) => Value::Number(Cow::Owned(format!("{mantissa}e{exp}"))),
        None => time,
    }
}

/// True when `text` is a JSON number strictly above 10^11 (exactly, on its
/// decimal text: `100000000000` is not, `100000000000.5` is).
fn above_10_11(text: &str) -> bool {
    if !is_json_number(text) || text.starts_with('-') {
        return false;
    }
    let (mantissa, exp) = match text.split_once(['e', 'E']) {
        Some((m, e)) => match e.parse::<i64>() {
            Ok(e) => (m, e),
            Err(_) => return !e.starts_with('-'), // a huge exponent
        },
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // The value is 0.DIGITS × 10^point once leading zeros are gone.
    let digits = format!("{int}{frac}");
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return false;
    }
    let zeros = (digits.len() - significant.len()) as i64;
    let Some(point) = (int.len() as i64).checked_add(exp).map(|p| p - zeros) else {
        return exp > 0;
    };
    point > 12 || (point == 12 && significant.trim_end_matches('0') != "1")
}

/// The duplicate key of an event (SPEC §10): its `$insert_id` value, its
/// identity as the record names it, its name and `t`, hashed with XXH3
/// (64 bits), one field after the other, each hash seeding the next.
pub fn duplicate_key(insert_id: &str, identity: &str, name: &str, t: i64) -> u64 {
    use twox_hash::XxHash3_64;
    let h = XxHash3_64::oneshot_with_seed(t as u64, insert_id.as_bytes());
    let h = XxHash3_64::oneshot_with_seed(h, identity.as_bytes());
    XxHash3_64::oneshot_with_seed(h, name.as_bytes())
}

impl Format for Mixpanel {
    /// As for KM, the flat reader fails on octal escapes and blank lines:
    /// a line it reads needs no decoding once its `\r` is dropped.
    fn classify_plain(&self, line: &str, texts: &mut Texts) -> Option<Result<Entry, Reject>> {
        let text = line.strip_suffix('\r').unwrap_or(line);
        let mut members = MpMembers::new(texts, text.len());
        match flat_object(text, &mut members) {
            Some(()) => Some(keyed(members.into_entry(), texts)),
            None => {
                members.fields.abandon();
                None
            }
        }
    }

    fn classify(&self, text: &str, texts: &mut Texts) -> Result<Entry, Reject> {
        match self.classify_plain(text, texts) {
            Some(classified) => classified,
            None => self.classify_full(text, texts),
        }
    }

    fn classify_full(&self, text: &str, texts: &mut Texts) -> Result<Entry, Reject> {
        let mut members = MpMembers::new(texts, text.len());
        if full_object(text, &mut members).is_none() {
            members.fields.abandon();
            return Err(Reject::Malformed);
        }
        keyed(members.into_entry(), texts)
    }

    fn alias_markers(&self) -> &'static [&'static [u8]] {
        &[b"$identify", b"$create_alias", b"$merge"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::Outcome;
    use crate::record::{Record, MAX_UNIX_SECONDS};

    fn classify(text: &str) -> Result<Record, Reject> {
        MIXPANEL.classify_record(text)
    }

    /// A record as owned parts: kind, identity, t, name or other, properties.
    type Parts = (Kind, String, i64, String, Vec<(String, String)>);

    fn parts(text: &str) -> Result<Parts, Reject> {
        let r = classify(text)?;
        let second = match r.view() {
            View::Event { name, .. } => name,
            View::Alias { other, .. } => other,
            View::PropertySet { .. } => "",
        };
        let props = r.props().iter().map(|(k, v)| (k.into(), v.into()));
        Ok((
            r.kind(),
            r.identity().into(),
            r.t(),
            second.into(),
            props.collect(),
        ))
    }

    fn props(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A line of `event` with the members `props` (JSON text) in `properties`.
    fn line(event: &str, props: &str) -> String {
        format!(r#"{{"event":{event},"properties":{{{props}}}}}"#)
    }

    /// The duplicate key of a line's record.
    fn key(text: &str) -> Option<u64> {
        let mut texts = Texts::default();
        MIXPANEL.classify(text, &mut texts).ok()?.duplicate_key()
    }

    #[test]
    fn day_files_are_numbered_by_their_day() {
        for (name, revision, gzip) in [
            ("2015-01-01.json", 16436, false),
            ("2015-01-01.jsonl", 16436, false),
            ("2015-01-01.json.gz", 16436, true),
            ("2015-01-01.jsonl.gz", 16436, true),
            ("1970-01-01.json", 0, false),
            ("2016-02-29.json", 16860, false),
            ("9999-12-31.json", 2_932_896, false),
            ("12.json", 12, false),
            ("12.jsonl.gz", 12, true),
            ("007.jsonl", 7, false),
        ] {
            assert_eq!(MIXPANEL.revision_of(name), Some((revision, gzip)), "{name}");
        }
        assert_eq!(
            MIXPANEL.revision_of("99999999999999999999999.json"),
            Some((u64::MAX, false))
        );
        for bad in [
            "2015-02-30.json",
            "2015-02-29.json",
            "2015-13-01.json",
            "2015-00-10.json",
            "2015-1-1.json",
            "1969-12-31.json",
            "2015-01-01.JSON",
            "2015-01-01.json.bz2",
            "2015-01-01.json.gz.part",
            "2015-01-01.gz",
            "sub/2015-01-01.json",
            " 2015-01-01.json",
            "2015-01-01 .json",
            "+015-01-01.json",
            "2015_01_01.json",
            "20150101x.json",
            ".json",
            "index.csv",
        ] {
            assert_eq!(MIXPANEL.revision_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn near_misses_are_named() {
        for name in [
            "2015-02-30.json",
            "2015-1-1.json",
            "2015-01-01.JSON",
            "2015-01-01.json.bz2",
            "2015-01-01.json.gz.part",
            "2015-01-01.csv",
            "export.json",
            "mixpanel-2015-01-01.jsonl",
            "1969-12-31.json",
        ] {
            assert!(MIXPANEL.near_miss(name), "{name}");
        }
        for name in [
            "2015-01-01.json",
            "12.jsonl.gz",
            "README",
            "manifest.csv",
            ".2015-01-01.json.swp",
            "2015/2015-01-01.json",
        ] {
            assert!(!MIXPANEL.near_miss(name), "{name}");
        }
    }

    #[test]
    fn an_event_and_its_properties() {
        let text = line(
            r#""Viewed Page""#,
            r#""time":1420070400,"distinct_id":"dev-1","$insert_id":"a1","$browser":"Chrome","mp_lib":"web","n":12,"f":3.50,"ok":true"#,
        );
        assert_eq!(
            parts(&text),
            Ok((
                Kind::Event,
                "dev-1".into(),
                1420070400,
                "Viewed Page".into(),
                props(&[
                    ("$insert_id", "a1"),
                    ("$browser", "Chrome"),
                    ("mp_lib", "web"),
                    ("n", "12"),
                    ("f", "3.50"),
                    ("ok", "true")
                ]),
            ))
        );
        // `event` after `properties`, other top-level members ignored.
        let text = r#"{"properties":{"time":5,"distinct_id":"u","a":"b"},"x":{"y":1},"event":"e"}"#;
        assert_eq!(
            parts(text),
            Ok((Kind::Event, "u".into(), 5, "e".into(), props(&[("a", "b")])))
        );
        // An event needs no properties.
        assert_eq!(
            parts(&line(r#""e""#, r#""time":5,"distinct_id":"u","gone":null"#)),
            Ok((Kind::Event, "u".into(), 5, "e".into(), Vec::new()))
        );
    }

    #[test]
    fn dollar_and_reserved_km_keys_are_properties() {
        let text = line(
            r#""e""#,
            r#""$os":"Mac","_p":"not me","_n":"x","_t":1,"_p2":"y","alias":"z","$anon_id":"c","$identified_id":"d","$distinct_ids":["c","d"],"time":5,"distinct_id":"u""#,
        );
        let (kind, identity, t, name, got) = parts(&text).unwrap();
        assert_eq!(
            (kind, identity.as_str(), t, name.as_str()),
            (Kind::Event, "u", 5, "e")
        );
        assert_eq!(
            got,
            props(&[
                ("$os", "Mac"),
                ("_p", "not me"),
                ("_n", "x"),
                ("_t", "1"),
                ("_p2", "y"),
                ("alias", "z"),
                ("$anon_id", "c"),
                ("$identified_id", "d"),
                ("$distinct_ids", r#"["c","d"]"#)
            ])
        );
    }

    #[test]
    fn nested_values_are_compact_and_nulls_drop() {
        let text = r#"{"event":"e","properties":{"time":5,"distinct_id":"u","obj":{ "a" : [1, 2, {"b": null}] },"arr":[ "x" ,"y"],"empty":{},"nul":null,"s":"v"}}"#;
        assert_eq!(
            parts(text).unwrap().4,
            props(&[
                ("obj", r#"{"a":[1,2,{"b":null}]}"#),
                ("arr", r#"["x","y"]"#),
                ("empty", "{}"),
                ("s", "v")
            ])
        );
    }

    #[test]
    fn aliases() {
        let alias = |event: &str, props: &str| parts(&line(event, props));
        assert_eq!(
            alias(
                r#""$create_alias""#,
                r#""time":7,"distinct_id":"cookie","alias":"a@b.c","mp_lib":"web","$insert_id":"i""#
            ),
            Ok((Kind::Alias, "cookie".into(), 7, "a@b.c".into(), Vec::new()))
        );
        assert_eq!(
            alias(
                r#""$identify""#,
                r#""time":7,"distinct_id":"a@b.c","$anon_id":"cookie","$identified_id":"a@b.c""#
            ),
            Ok((Kind::Alias, "cookie".into(), 7, "a@b.c".into(), Vec::new()))
        );
        assert_eq!(
            alias(
                r#""$merge""#,
                r#""time":7,"distinct_id":"x","$distinct_ids":["cookie", 1234]"#
            ),
            Ok((Kind::Alias, "cookie".into(), 7, "1234".into(), Vec::new()))
        );
        // Then SPEC §3 decides.
        assert_eq!(
            alias(
                r#""$create_alias""#,
                r#""time":7,"distinct_id":"12","alias":34"#
            ),
            Err(Reject::NumericAlias)
        );
        assert_eq!(
            alias(r#""$merge""#, r#""time":7,"$distinct_ids":["a","a"]"#),
            Err(Reject::SelfAlias)
        );
        assert_eq!(
            alias(r#""$identify""#, r#""time":7,"$identified_id":"a""#),
            Err(Reject::NoIdentity)
        );
        assert_eq!(
            alias(r#""$merge""#, r#""time":7,"$distinct_ids":[null,"a"]"#),
            Err(Reject::NoIdentity)
        );
        assert_eq!(
            alias(
                r#""$identify""#,
                r#""distinct_id":"a","$anon_id":"c","$identified_id":"a""#
            ),
            Err(Reject::BadTimestamp)
        );
        // Without its other identity an alias line is an empty record: its
        // other members are not properties.
        assert_eq!(
            alias(r#""$identify""#, r#""time":7,"$anon_id":"c","x":"y""#),
            Err(Reject::Empty)
        );
        assert_eq!(
            alias(
                r#""$create_alias""#,
                r#""time":7,"distinct_id":"c","alias":null"#
            ),
            Err(Reject::Empty)
        );
    }

    #[test]
    fn a_merge_needs_exactly_two_ids() {
        for ids in [
            r#"["a"]"#,
            r#"["a","b","c"]"#,
            "[]",
            r#""a,b""#,
            r#"{"a":"b"}"#,
            "null",
            "2",
        ] {
            let text = line(r#""$merge""#, &format!(r#""time":7,"$distinct_ids":{ids}"#));
            assert_eq!(classify(&text), Err(Reject::Malformed), "{ids}");
        }
        let text = line(r#""$merge""#, r#""time":7"#);
        assert_eq!(classify(&text), Err(Reject::Malformed));
    }

    #[test]
    fn malformed_lines() {
        for bad in [
            "not json",
            "[1,2]",
            r#""string""#,
            r#"{"event":"e","properties":{"time":1,"distinct_id":"u"}"#,
            r#"{"event":"e","properties":{"time":1,"distinct_id":"u"}} x"#,
            // no string event
            r#"{"properties":{"time":1,"distinct_id":"u"}}"#,
            r#"{"event":null,"properties":{"time":1,"distinct_id":"u"}}"#,
            r#"{"event":5,"properties":{"time":1,"distinct_id":"u"}}"#,
            r#"{"event":["e"],"properties":{"time":1,"distinct_id":"u"}}"#,
            r#"{"event":{"e":1},"properties":{"time":1,"distinct_id":"u"}}"#,
            r#"{"event":"","properties":{"time":1,"distinct_id":"u"}}"#,
            // properties not an object
            r#"{"event":"e"}"#,
            r#"{"event":"e","properties":null}"#,
            r#"{"event":"e","properties":"time=1"}"#,
            r#"{"event":"e","properties":[1]}"#,
            r#"{"event":"e","properties":{"time":1,"distinct_id":"u"},"properties":2}"#,
            "{}",
        ] {
            assert_eq!(classify(bad), Err(Reject::Malformed), "{bad}");
        }
    }

    #[test]
    fn identities_and_times_follow_section_3() {
        let t = |time: &str| {
            classify(&line(
                r#""e""#,
                &format!(r#""time":{time},"distinct_id":"u""#),
            ))
            .map(|r| r.t())
        };
        assert_eq!(t("1420070400"), Ok(1420070400));
        assert_eq!(t("1420070400.9"), Ok(1420070400));
        assert_eq!(t(r#""1420070400""#), Ok(1420070400));
        // Above 10^11: milliseconds, divided by 1000 and truncated.
        assert_eq!(t("100000000000"), Ok(100_000_000_000));
        assert_eq!(t("100000000000.0"), Ok(100_000_000_000));
        assert_eq!(t("1e11"), Ok(100_000_000_000));
        assert_eq!(t("100000000000.5"), Ok(100_000_000));
        assert_eq!(t("100000000001"), Ok(100_000_000));
        assert_eq!(t("1420070400123"), Ok(1420070400));
        assert_eq!(t("1420070400999.9"), Ok(1420070400));
        assert_eq!(t(r#""1420070400123""#), Ok(1420070400));
        assert_eq!(t(r#""1420070400123.5""#), Ok(1420070400));
        assert_eq!(t("1.420070400123e12"), Ok(1420070400));
        assert_eq!(t("1420070400123E0"), Ok(1420070400));
        assert_eq!(t("0.1420070400123e13"), Ok(1420070400));
        assert_eq!(t("253402300799999"), Ok(MAX_UNIX_SECONDS));
        assert_eq!(t("0"), Ok(0));
        for bad in [
            "253402300800000",
            "-1",
            "-1420070400123",
            "1e999",
            "1e99999999999999999999",
            r#""yesterday""#,
            "null",
            "true",
            "[1420070400]",
        ] {
            assert_eq!(t(bad), Err(Reject::BadTimestamp), "{bad}");
        }
        let no_time = line(r#""e""#, r#""distinct_id":"u""#);
        assert_eq!(classify(&no_time), Err(Reject::BadTimestamp));
        for id in ["", r#""""#, "null"] {
            let props = if id.is_empty() {
                r#""time":1"#.to_string()
            } else {
                format!(r#""time":1,"distinct_id":{id}"#)
            };
            assert_eq!(
                classify(&line(r#""e""#, &props)),
                Err(Reject::NoIdentity),
                "{id}"
            );
        }
        let numeric = classify(&line(r#""e""#, r#""time":1,"distinct_id":1234"#));
        assert_eq!(numeric.map(|r| r.identity().to_owned()), Ok("1234".into()));
    }

    #[test]
    fn the_boundary_of_milliseconds() {
        for (text, above) in [
            ("100000000000", false),
            ("99999999999.99", false),
            ("100000000000.000", false),
            ("1.0e11", false),
            ("10e10", false),
            ("100000000000.001", true),
            ("100000000001", true),
            ("1.00000000001e11", true),
            ("1e12", true),
            ("0.0", false),
            ("-1e12", false),
            ("1e-5", false),
            ("1e99999999999999999999", true),
            ("x", false),
        ] {
            assert_eq!(above_10_11(text), above, "{text}");
        }
    }

    #[test]
    fn duplicate_keys() {
        let with = |props: &str| key(&line(r#""e""#, props));
        let base = with(r#""time":5,"distinct_id":"u","$insert_id":"abc","x":1"#);
        assert!(base.is_some());
        // Other properties and their order do not matter; the time's unit
        // does not either.
        assert_eq!(
            with(r#""$insert_id":"abc","distinct_id":"u","time":5000000000000e-12,"y":2"#),
            base
        );
        for other in [
            r#""time":6,"distinct_id":"u","$insert_id":"abc""#,
            r#""time":5,"distinct_id":"v","$insert_id":"abc""#,
            r#""time":5,"distinct_id":"u","$insert_id":"abd""#,
        ] {
            assert_ne!(with(other), base, "{other}");
        }
        assert_ne!(
            key(&line(
                r#""f""#,
                r#""time":5,"distinct_id":"u","$insert_id":"abc""#
            )),
            base
        );
        // The fields are not run together: ("ab", "c") is not ("a", "bc").
        assert_ne!(
            with(r#""time":5,"distinct_id":"ab","$insert_id":"c""#),
            with(r#""time":5,"distinct_id":"a","$insert_id":"bc""#)
        );
        for none in [
            r#""time":5,"distinct_id":"u""#,
            r#""time":5,"distinct_id":"u","$insert_id":null"#,
            r#""time":5,"distinct_id":"u","$insert_id":"""#,
        ] {
            assert_eq!(with(none), None, "{none}");
        }
        // A number is its text; aliases have no key.
        assert_eq!(
            with(r#""time":5,"distinct_id":"u","$insert_id":12"#),
            with(r#""time":5,"distinct_id":"u","$insert_id":"12""#)
        );
        let alias = line(
            r#""$create_alias""#,
            r#""time":5,"distinct_id":"u","alias":"v","$insert_id":"abc""#,
        );
        assert_eq!(key(&alias), None);
        // Pinned: keys are stored in the state store, so the hash may never
        // change. XXH3's reference value for the empty input, seed 0, first.
        assert_eq!(
            twox_hash::XxHash3_64::oneshot_with_seed(0, b""),
            0x2d06_8005_38d3_94c2
        );
        assert_eq!(duplicate_key("abc", "u", "e", 5), 0xe504_a27d_d5cd_1f0b);
    }

    #[test]
    fn a_repeated_properties_object_adds_to_the_first() {
        let text = r#"{"event":"e","properties":{"time":5,"distinct_id":"u","a":1,"b":2},"properties":{"a":3,"distinct_id":"w"}}"#;
        assert_eq!(
            parts(text),
            Ok((
                Kind::Event,
                "w".into(),
                5,
                "e".into(),
                props(&[("a", "3"), ("b", "2")])
            ))
        );
    }

    #[test]
    fn flat_and_full_readers_agree() {
        for text in [
            r#"{"event":"e","properties":{"time":5,"distinct_id":"u","$insert_id":"i","a":"b\"c","n":-1.5e3,"t":true,"z":null}}"#,
            r#"{"event":"$identify","properties":{"time":5,"distinct_id":"u","$anon_id":"c","$identified_id":"u"}}"#,
            r#"{"event":"$create_alias","properties":{"time":1420070400123,"distinct_id":"c","alias":"u"}}"#,
            r#"{"properties":{},"event":"e"}"#,
            r#"{"event":"e","properties":{"time":5,"distinct_id":"u"},"extra":"x"}"#,
        ] {
            let (mut a, mut b) = (Texts::default(), Texts::default());
            let mut flat = MpMembers::new(&mut a, text.len());
            assert!(flat_object(text, &mut flat).is_some(), "{text}");
            let flat = keyed(flat.into_entry(), &a);
            let mut full = MpMembers::new(&mut b, text.len());
            assert!(full_object(text, &mut full).is_some(), "{text}");
            let full = keyed(full.into_entry(), &b);
            assert_eq!(
                format!("{:?}", flat.map(|e| (e.view(&a), e.duplicate_key()))),
                format!("{:?}", full.map(|e| (e.view(&b), e.duplicate_key()))),
                "{text}"
            );
        }
        // Left to sonic-rs: whitespace, nested values, an object nested in
        // an ignored member.
        for text in [
            r#"{ "event":"e","properties":{}}"#,
            r#"{"event":"e","properties":{"a":[1]}}"#,
            r#"{"event":"e","properties":{"a":{}}}"#,
            r#"{"event":"e","x":{},"properties":{}}"#,
        ] {
            let mut texts = Texts::default();
            let mut flat = MpMembers::new(&mut texts, text.len());
            assert!(flat_object(text, &mut flat).is_none(), "{text}");
        }
    }

    #[test]
    fn lines_are_decoded_first() {
        let raw = br#"{"event":"Caf\303\251","properties":{"time":5,"distinct_id":"Frigidman\231","k":"\303\251"}}"#;
        let Outcome::Record(r) = MIXPANEL.parse_line(raw) else {
            panic!("a record");
        };
        assert_eq!(
            r.view(),
            View::Event {
                identity: "Frigidman™",
                t: 5,
                name: "Café",
                props: r.props(),
            }
        );
        assert_eq!(r.props().iter().collect::<Vec<_>>(), [("k", "é")]);
        assert!(matches!(MIXPANEL.parse_line(b"  \r"), Outcome::Blank));
    }
}
