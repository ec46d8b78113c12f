//! KissMetrics' Data Export (SPEC §1-3): revision files `N.json[.gz]`
//! (in `revisions/` or not), and lines whose `_p`, `_p2`, `_n` and `_t` are
//! the identity, the other identity of an alias, the event name and the
//! time; every other member is a property.

use std::borrow::Cow;

use super::Format;
use crate::record::{flat_object, full_object, Entry, Fields, Members, Reject, Texts, Value};
use crate::source::FileNames;

/// The KissMetrics format.
pub struct Km;

/// The one value of [`Km`].
pub static KM: Km = Km;

impl FileNames for Km {
    /// `N` of a file named `N.json` or `N.json.gz`, and whether it is gzip.
    /// An `N` too large for a `u64` is `u64::MAX`, so that the listing names
    /// the file instead of it being skipped.
    fn revision_of(&self, name: &str) -> Option<(u64, bool)> {
        let (stem, gzip) = match name.strip_suffix(".json.gz") {
            Some(stem) => (stem, true),
            None => (name.strip_suffix(".json")?, false),
        };
        if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some((stem.parse().unwrap_or(u64::MAX), gzip))
    }

    /// True for a name that looks meant as a revision file but is not one
    /// (`1.JSON`, `1.jsonl`, `2.json.bz2`, `3.json.gz.part`): such files are
    /// not imported, and the import says so rather than leave them out
    /// silently.
    fn near_miss(&self, name: &str) -> bool {
        name.starts_with(|c: char| c.is_ascii_digit())
            && !name.contains('/')
            && name.to_ascii_lowercase().contains(".json")
            && self.revision_of(name).is_none()
    }

    fn folder(&self) -> Option<&'static str> {
        Some("revisions")
    }

    fn names(&self) -> &'static str {
        "N.json or N.json.gz"
    }

    fn rejects_name_files(&self) -> bool {
        // The revision number is the file's own name.
        false
    }
}

/// A KM line's members, routed to the record's parts.
struct KmMembers<'a, 't>(Fields<'a, 't>);

impl<'a> Members<'a> for KmMembers<'a, '_> {
    /// `_t` is read whole: it is parsed as a number.
    fn read_whole(&self, key: &str) -> bool {
        key == "_t"
    }

    #[inline]
    fn member(&mut self, key: Cow<'a, str>, value: Value<'a>) {
        match &*key {
            "_p" => self.0.identity(value),
            "_p2" => self.0.other(value),
            "_n" => self.0.name(value),
            "_t" => self.0.time(value),
            _ => self.0.member(&key, &value),
        }
    }
}

impl Format for Km {
    /// The flat reader fails on every octal escape (`\303` is not a JSON
    /// escape) and on blank lines, so a line it reads needs no decoding once
    /// its `\r` is dropped: the common line skips the decoder's scan.
    fn classify_plain(&self, line: &str, texts: &mut Texts) -> Option<Result<Entry, Reject>> {
        let text = line.strip_suffix('\r').unwrap_or(line);
        let mut fields = KmMembers(Fields::new(texts, text.len()));
        match flat_object(text, &mut fields) {
            Some(()) => Some(fields.0.into_entry()),
            None => {
                fields.0.abandon();
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
        let mut fields = KmMembers(Fields::new(texts, text.len()));
        if full_object(text, &mut fields).is_none() {
            fields.0.abandon();
            return Err(Reject::Malformed);
        }
        fields.0.into_entry()
    }

    fn alias_markers(&self) -> &'static [&'static [u8]] {
        &[b"_p2"]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{full_object, Kind, Record, View, KEPT, MAX_CHARS, MAX_UNIX_SECONDS};

    fn classify(text: &str) -> Result<Record, Reject> {
        KM.classify_record(text)
    }

    #[test]
    fn revision_names_on_s3() {
        assert_eq!(KM.revision_of("12.json"), Some((12, false)));
        assert_eq!(KM.revision_of("007.json.gz"), Some((7, true)));
        for bad in [
            "README",
            "x.json",
            ".json",
            "1.json.bak",
            "1.JSON",
            "sub/1.json",
            "-1.json",
        ] {
            assert_eq!(KM.revision_of(bad), None, "{bad}");
        }
        // Named by check_revisions, not skipped.
        assert_eq!(
            KM.revision_of("99999999999999999999999.json"),
            Some((u64::MAX, false))
        );
    }

    #[test]
    fn revision_names() {
        assert_eq!(KM.revision_of("12.json"), Some((12, false)));
        assert_eq!(KM.revision_of("12.json.gz"), Some((12, true)));
        for bad in [
            "x.json",
            ".json",
            "12.jsonl",
            "12.json.bz2",
            "-1.json",
            "1 .json",
        ] {
            assert_eq!(KM.revision_of(bad), None, "{bad}");
        }
    }

    #[test]
    fn near_misses() {
        for name in [
            "1.JSON",
            "1.jsonl",
            "2.json.bz2",
            "3.json.gz.part",
            "4.Json.gz",
        ] {
            assert!(KM.near_miss(name), "{name}");
        }
        for name in [
            "1.json",
            "1.json.gz",
            "index.csv",
            "status.csv",
            "README",
            "x1.json",
            "1/2.json",
        ] {
            assert!(!KM.near_miss(name), "{name}");
        }
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

    fn prop_values(text: &str) -> Vec<(String, String)> {
        parts(text).expect("a record").4
    }

    #[test]
    fn event_with_properties() {
        let r = parts(
            r#"{"_n":"signed up","_p":"a@b.c","_t":1400000000,"Plan":"gold","n":12,"f":3.50,"ok":true,"x":null}"#,
        );
        assert_eq!(
            r,
            Ok((
                Kind::Event,
                "a@b.c".into(),
                1400000000,
                "signed up".into(),
                props(&[("Plan", "gold"), ("n", "12"), ("f", "3.50"), ("ok", "true")]),
            ))
        );
    }

    #[test]
    fn property_set_and_empty() {
        assert_eq!(
            parts(r#"{"_p":"x","_t":5,"_q":"y"}"#),
            Ok((
                Kind::PropertySet,
                "x".into(),
                5,
                "".into(),
                props(&[("_q", "y")])
            ))
        );
        assert_eq!(classify(r#"{"_p":"x","_t":5}"#), Err(Reject::Empty));
        assert_eq!(
            classify(r#"{"_p":"x","_t":5,"a":null}"#),
            Err(Reject::Empty)
        );
    }

    #[test]
    fn identity_rules() {
        assert_eq!(classify(r#"{"_t":5,"a":1}"#), Err(Reject::NoIdentity));
        assert_eq!(
            classify(r#"{"_p":null,"_t":5,"a":1}"#),
            Err(Reject::NoIdentity)
        );
        assert_eq!(
            classify(r#"{"_p":"","_t":5,"a":1}"#),
            Err(Reject::NoIdentity)
        );
        // Checked before the timestamp.
        assert_eq!(
            classify(r#"{"_p":"","_t":"never"}"#),
            Err(Reject::NoIdentity)
        );
        match parts(r#"{"_p":100004,"_t":5,"a":1}"#) {
            Ok((Kind::PropertySet, identity, ..)) => assert_eq!(identity, "100004"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timestamps() {
        let t = |s: &str| {
            classify(&format!(r#"{{"_p":"x","_t":{s},"a":1}}"#)).map(|r| {
                assert_eq!(r.kind(), Kind::PropertySet);
                r.t()
            })
        };
        assert_eq!(t("1400000000"), Ok(1400000000));
        assert_eq!(t("1400000000.75"), Ok(1400000000));
        assert_eq!(t(r#""1400000000""#), Ok(1400000000));
        assert_eq!(t(r#""1400000000.5""#), Ok(1400000000));
        assert_eq!(t("0"), Ok(0));
        assert_eq!(t("253402300799"), Ok(MAX_UNIX_SECONDS));
        assert_eq!(t("253402300799.9"), Ok(MAX_UNIX_SECONDS));
        assert_eq!(t("1.4e9"), Ok(1400000000));
        for bad in [
            "253402300800",
            "-1",
            r#""yesterday""#,
            r#"" 1400000000""#,
            r#""NaN""#,
            r#""inf""#,
            "true",
            "null",
            "[1]",
            "1e999",
            "99999999999999999999999",
        ] {
            assert_eq!(t(bad), Err(Reject::BadTimestamp), "{bad}");
        }
        assert_eq!(classify(r#"{"_p":"x","a":1}"#), Err(Reject::BadTimestamp));
    }

    #[test]
    fn aliases() {
        assert_eq!(
            parts(r#"{"_p":"cookie","_p2":"a@b.c","_t":7}"#),
            Ok((Kind::Alias, "cookie".into(), 7, "a@b.c".into(), Vec::new()))
        );
        assert_eq!(
            classify(r#"{"_p":"a","_p2":"a","_t":7}"#),
            Err(Reject::SelfAlias)
        );
        assert_eq!(
            classify(r#"{"_p":"12","_p2":34,"_t":7}"#),
            Err(Reject::NumericAlias)
        );
        assert_eq!(
            classify(r#"{"_p":"12","_p2":"34a","_t":7}"#).map(|r| r.kind()),
            Ok(Kind::Alias)
        );
        // An alias wins over an event name, and has no properties.
        let r = classify(r#"{"_p":"a","_p2":"b","_n":"e","_t":7,"x":1}"#).unwrap();
        assert_eq!(r.kind(), Kind::Alias);
        assert!(r.props().is_empty());
    }

    #[test]
    fn malformed() {
        for bad in [
            "this is not json at all",
            "[1,2,3]",
            "{\"_p\":\"x\",\"_t\":1",
            "{\"_p\":\"x\",\"_t\":1}}",
            "{\"_p\":\"x\",\"_t\":1} trailing",
            "\"string\"",
            "{\"_p\":\"x\" \"_t\":1}",
            "{\"a\":[1,2,}",
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":tru}",
            "{\"a\":\"\\x\"}",
            "{\"a\":1,}",
        ] {
            assert_eq!(classify(bad), Err(Reject::Malformed), "{bad}");
        }
        assert_eq!(classify("  {} "), Err(Reject::NoIdentity));
        assert_eq!(classify("{}"), Err(Reject::NoIdentity));
    }

    #[test]
    fn values_are_compact_and_cut() {
        let long = "é".repeat(300);
        let line =
            format!(r#"{{"_p":"x","_t":1,"arr":[1, "two" , {{"three": 3}}],"{long}":"{long}"}}"#);
        let props = prop_values(&line);
        assert_eq!(props[0].1, r#"[1,"two",{"three":3}]"#);
        assert_eq!(props[1].0.chars().count(), 255);
        assert_eq!(props[1].1.chars().count(), 255);
    }

    #[test]
    fn duplicate_keys_last_wins() {
        assert_eq!(
            prop_values(r#"{"_p":"x","_t":1,"a":"1","b":"2","a":"3"}"#),
            props(&[("a", "3"), ("b", "2")])
        );
        // A null drops the key, a later value brings it back in its place.
        assert_eq!(
            prop_values(r#"{"_p":"x","_t":1,"a":"1","b":"2","a":null,"c":3}"#),
            props(&[("b", "2"), ("c", "3")])
        );
        assert_eq!(
            prop_values(r#"{"_p":"x","_t":1,"a":"1","b":"2","a":null,"a":4}"#),
            props(&[("a", "4"), ("b", "2")])
        );
        // Names that only differ past the cut are the same name.
        let (k1, k2) = ("k".repeat(255) + "1", "k".repeat(255) + "2");
        let line = format!(r#"{{"_p":"x","_t":1,"{k1}":1,"{k2}":2}}"#);
        assert_eq!(prop_values(&line), props(&[(&"k".repeat(255), "2")]));
    }

    #[test]
    fn many_duplicate_keys() {
        let mut line = String::from(r#"{"_p":"x","_t":1"#);
        for i in 0..40 {
            line += &format!(r#","k{i}":{i}"#);
        }
        line += r#","k3":"x","k30":null,"k3":null,"k3":"y","new":1}"#;
        let props = prop_values(&line);
        assert_eq!(props.len(), 40);
        assert_eq!(props[3], ("k3".into(), "y".into()));
        assert!(!props.iter().any(|(k, _)| k == "k30"));
        assert_eq!(props[39], ("new".into(), "1".into()));
    }

    #[test]
    fn escapes_and_lone_surrogates() {
        let values = prop_values(
            r#"{"_p":"x","_t":1,"a":"t\tn\n\\N\u0000","b":"\ud800z","c":"\ud83d\ude00","d":"\/\"\u00e9\b\f\r"}"#,
        );
        assert_eq!(values[0].1, "t\tn\n\\N\0");
        assert_eq!(values[1].1, "\u{FFFD}z");
        assert_eq!(values[2].1, "😀");
        assert_eq!(values[3].1, "/\"é\u{8}\u{c}\r");
        // Escapes in names too, reserved ones included.
        let r = parts(r#"{"\u005fp":"x","_t":1,"\u00e9":"\u00e9"}"#);
        assert_eq!(
            r,
            Ok((
                Kind::PropertySet,
                "x".into(),
                1,
                "".into(),
                props(&[("é", "é")])
            ))
        );
    }

    #[test]
    fn deep_nesting_is_malformed() {
        let deep = |n: usize| {
            format!(
                r#"{{"_p":"x","_t":1,"a":{}1{}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        assert!(classify(&deep(127)).is_ok());
        assert_eq!(classify(&deep(128)), Err(Reject::Malformed));
        // Many brackets, but shallow, or inside strings.
        let wide = format!(r#"{{"_p":"x","_t":1,"a":[{}1]}}"#, "[],".repeat(300));
        assert!(classify(&wide).is_ok());
        let quoted = format!(r#"{{"_p":"x","_t":1,"a":"{}"}}"#, "[".repeat(300));
        assert!(classify(&quoted).is_ok());
    }

    #[test]
    fn flat_and_full_readers_agree() {
        for line in [
            r#"{"_n":"e","_p":"u","_t":1,"a":"b","n":-1.5e3,"t":true,"f":false,"z":null}"#,
            r#"{"_n":"e","_p":"u","_t":"1","a":"b\"c\\d\u00e9"}"#,
            r#"{"_p":"u","_t":1.5,"":"","a":"1","a":"2"}"#,
            r#"{"_p":7,"_p2":"x","_t":0}"#,
            r#"{}"#,
        ] {
            let (mut a, mut b) = (Texts::default(), Texts::default());
            let mut flat = KmMembers(Fields::new(&mut a, line.len()));
            assert!(flat_object(line, &mut flat).is_some(), "{line}");
            let flat = flat.0.into_entry();
            let mut full = KmMembers(Fields::new(&mut b, line.len()));
            assert!(full_object(line, &mut full).is_some(), "{line}");
            let full = full.0.into_entry();
            assert_eq!(
                format!("{:?}", flat.map(|e| e.view(&a))),
                format!("{:?}", full.map(|e| e.view(&b))),
                "{line}"
            );
        }
        // Left to sonic-rs.
        for line in [
            r#"{ "_p":"u"}"#,
            r#"{"_p":"u","a":[1]}"#,
            r#"{"_p":"u","a":{}}"#,
            "{\"_p\":\"u\t\"}",
            r#"{"_p":"\ud800"}"#,
            r#"{"_p":"u"} "#,
            r#"{"_p":"u",}"#,
            r#"{"_p":01}"#,
        ] {
            let mut texts = Texts::default();
            let mut flat = KmMembers(Fields::new(&mut texts, line.len()));
            assert!(flat_object(line, &mut flat).is_none(), "{line}");
        }
    }

    /// The first 255 characters of `s`.
    fn first_chars(s: &str) -> String {
        s.chars().take(MAX_CHARS).collect()
    }

    /// SPEC §3: a float is truncated toward zero, then range-checked.
    #[test]
    fn timestamps_are_truncated_toward_zero_then_checked() {
        let t = |s: &str| classify(&format!(r#"{{"_p":"x","_t":{s},"a":1}}"#)).map(|r| r.t());
        for zero in [
            "-0.5",
            "-0.999",
            "-5e-1",
            "-0.0",
            "-0",
            "-0e0",
            "-0.0e5",
            "-9e-1",
            "-1e-1",
            "-0.9999999999999999999999",
            "-1e-999999",
            "-99999e-5",
            "0.5",
            "5e-1",
            "0.0",
            "1e-99999999999999999999",
            "-1e-99999999999999999999",
            "0e99999999999999999999",
        ] {
            assert_eq!(t(zero), Ok(0), "{zero}");
            assert_eq!(t(&format!(r#""{zero}""#)), Ok(0), "\"{zero}\"");
        }
        for bad in [
            "-1",
            "-1.0",
            "-1.5",
            "-1e0",
            "-10e-1",
            "-0.1e1",
            "-100000e-5",
            "-1400000000.5",
            "-253402300799.9",
            "-1e999999",
            "253402300800",
            "253402300800.0",
            "2534023008e2",
            "2.534023008e11",
            "253402300799.9e1",
            "1e12",
            "1e99999999999999999999",
        ] {
            assert_eq!(t(bad), Err(Reject::BadTimestamp), "{bad}");
            let quoted = format!(r#""{bad}""#);
            assert_eq!(t(&quoted), Err(Reject::BadTimestamp), "{quoted}");
        }
        for (text, want) in [
            ("253402300799.9", MAX_UNIX_SECONDS),
            ("253402300799.999999999999", MAX_UNIX_SECONDS),
            ("2534023007999e-1", MAX_UNIX_SECONDS),
            ("2.534023007999e11", MAX_UNIX_SECONDS),
            ("25340230079900000e-5", MAX_UNIX_SECONDS),
            ("0.000001400000000e15", 1400000000),
            ("14e8", 1400000000),
            ("1.4E+9", 1400000000),
            ("1400000000.99e0", 1400000000),
            ("0.99", 0),
            ("1.99", 1),
            ("9.99e-1", 0),
        ] {
            assert_eq!(t(text), Ok(want), "{text}");
            assert_eq!(t(&format!(r#""{text}""#)), Ok(want), "\"{text}\"");
        }
        // Only a JSON number's text, as a number or a string.
        for bad in [
            r#""-.5""#,
            r#""-0.""#,
            r#""- 0.5""#,
            r#""+0.5""#,
            r#""-0x1""#,
            "-.5",
        ] {
            assert!(t(bad).is_err(), "{bad}");
        }
    }

    /// Long strings and arrays (past what the readers build of them, with
    /// escapes, multi-byte characters and surrogate pairs on every side of
    /// that edge) are cut exactly as when decoded whole, by both readers.
    #[test]
    fn long_values_are_cut_as_if_decoded_whole() {
        let pieces = [
            "a",
            "é",
            "😀",
            "\\n",
            "\\\"",
            "\\\\",
            "\\u00e9",
            "\\ud83d\\ude00",
            "\\/",
            "\\u0000",
        ];
        let mut literals = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            for len in [KEPT - 2, KEPT, KEPT + 1, 16 * KEPT + 7, 100_000] {
                // Text that decodes to about `len` bytes, then the piece
                // again and again: the edge falls on and around escapes.
                let filler = pieces[(i + 1) % pieces.len()];
                let filler_len = sonic_rs::from_str::<String>(&format!("\"{filler}\""))
                    .unwrap()
                    .len();
                let mut content = String::new();
                for _ in 0..len.div_ceil(filler_len) {
                    content.push_str(filler);
                }
                for _ in 0..40 {
                    content.push_str(piece);
                }
                let literal = format!("\"{content}\"");
                let decoded: String = sonic_rs::from_str(&literal).unwrap();
                literals.push((literal, decoded));
            }
        }
        let surrogates = (
            format!("\"{}\\ud800\\udc00x\\ud800\"", "\\ud800".repeat(5000)),
            "\u{FFFD}".repeat(5000) + "\u{10000}x\u{FFFD}",
        );
        let lines = literals.iter().flat_map(|(literal, decoded)| {
            let want = vec![(first_chars(decoded), first_chars(decoded))];
            [
                (
                    format!(r#"{{"_p":"x","_t":1,{literal}:{literal}}}"#),
                    want.clone(),
                ),
                (format!(r#"{{ "_p":"x","_t":1,{literal}:{literal}}}"#), want),
            ]
        });
        // Lone surrogates, which sonic-rs does not decode, past the edge
        // (in a value: sonic-rs refuses them in a name).
        let (literal, decoded) = &surrogates;
        let want = vec![("k".to_owned(), first_chars(decoded))];
        let surrogate_line = format!(r#"{{"_p":"x","_t":1,"k":{literal}}}"#);
        for (line, want) in lines.chain([(surrogate_line, want)]) {
            let start: String = line.chars().take(60).collect();
            assert!(prop_values(&line) == want, "{} bytes: {start}", line.len());
        }
    }

    #[test]
    fn long_arrays_and_objects_are_compacted_and_cut() {
        for n in [10, 100, 100_000] {
            let items: Vec<String> = (0..n)
                .map(|i| format!(r#"{{"k {i}": [{i}, "é\"", null]}}"#))
                .collect();
            let spaced = items.join(" , ").replace(": ", " :\t ");
            let compact: String = items.join(",").replace(": ", ":").replace(", ", ",");
            let line =
                format!(r#"{{"_p":"x","_t":1,"v":[ {spaced} ],"o":{{ "a" : [ {spaced} ] }}}}"#);
            let want = [
                ("v".to_owned(), first_chars(&format!("[{compact}]"))),
                (
                    "o".to_owned(),
                    first_chars(&format!(r#"{{"a":[{compact}]}}"#)),
                ),
            ];
            assert_eq!(prop_values(&line), want, "{n} items");
        }
    }

    /// `_t` is the one text read whole: a long numeric string, with an
    /// escape or read by sonic-rs, keeps its exponent.
    #[test]
    fn a_long_timestamp_string_is_read_whole() {
        let long = format!("1.4{}e9", "0".repeat(40_000));
        for line in [
            format!(r#"{{"_p":"x","_t":"{long}","a":1}}"#),
            format!(r#"{{"_p":"x","_t":"\u0031{}","a":1}}"#, &long[1..]),
            format!(r#"{{ "_p":"x","_t":"{long}","a":1}}"#),
            format!(r#"{{ "_p":"x","_t":"\u0031{}","a":1}}"#, &long[1..]),
        ] {
            assert_eq!(
                classify(&line).map(|r| r.t()),
                Ok(1_400_000_000),
                "{}",
                &line[..40]
            );
        }
    }
}
