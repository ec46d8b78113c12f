//! `s3://bucket/prefix`.

use std::fmt;
use std::str::FromStr;

use anyhow::anyhow;

/// Where an export lives: `s3://bucket/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// Empty, or a key prefix ending in `/` (e.g. `exports/acct1/`).
    pub prefix: String,
}

impl FromStr for S3Url {
    type Err = anyhow::Error;

    /// Accepts `s3://bucket`, `s3://bucket/` and `s3://bucket/a/b` (a trailing `/` is optional).
    fn from_str(s: &str) -> anyhow::Result<Self> {
        let bad = |why: &str| {
            anyhow!("invalid S3 URL `{s}`: {why} (expected s3://bucket or s3://bucket/prefix)")
        };
        let rest = match s.get(..5) {
            Some(scheme) if scheme.eq_ignore_ascii_case("s3://") => &s[5..],
            _ => return Err(bad("it must start with s3://")),
        };
        let (bucket, path) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad("the bucket name is missing"));
        }
        let bucket_ok = bucket.len() <= 255
            && bucket
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !bucket_ok {
            return Err(bad(
                "the bucket name may only hold letters, digits, '-', '.' and '_'",
            ));
        }
        if path.contains(['?', '#']) || path.chars().any(char::is_control) {
            return Err(bad("the prefix holds '?', '#' or control characters"));
        }
        let path = path.trim_start_matches('/');
        let prefix = match path.trim_end_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        Ok(S3Url {
            bucket: bucket.to_string(),
            prefix,
        })
    }
}

impl fmt::Display for S3Url {
    /// `s3://bucket` or `s3://bucket/a/b` (no trailing slash; parses back to the same value).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}", self.bucket)?;
        match self.prefix.trim_end_matches('/') {
            "" => Ok(()),
            p => write!(f, "/{p}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u: S3Url = "s3://b".parse().unwrap();
        assert_eq!((u.bucket.as_str(), u.prefix.as_str()), ("b", ""));
        assert_eq!(u.to_string(), "s3://b");
        let u: S3Url = "s3://b/".parse().unwrap();
        assert_eq!(u.prefix, "");
        let u: S3Url = "s3://my-bucket/a/b".parse().unwrap();
        assert_eq!(
            (u.bucket.as_str(), u.prefix.as_str()),
            ("my-bucket", "a/b/")
        );
        assert_eq!(u.to_string(), "s3://my-bucket/a/b");
        assert_eq!("s3://my-bucket/a/b/".parse::<S3Url>().unwrap(), u);
        for bad in [
            "",
            "b/x",
            "http://b/x",
            "s3://",
            "s3:///x",
            "s3://b c/x",
            "s3://b/x?y",
        ] {
            let e = bad.parse::<S3Url>().unwrap_err().to_string();
            assert!(e.contains("invalid S3 URL"), "{bad}: {e}");
        }
    }
}
