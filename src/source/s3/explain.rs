//! What an S3 error means for the user: the SDK's errors turned into a
//! sentence that names the bucket or object and what to check.

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use super::download::Outcome;
use super::*;

impl S3Source {
    pub(super) fn classify_get<E>(&self, err: &SdkError<E, HttpResponse>) -> Outcome
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match err {
            SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Outcome::Retry {
                reason: plain(err),
                progressed: false,
            },
            // A connection closed before any answer comes as an "other"
            // error the SDK marks transient: retry it like an I/O error.
            SdkError::DispatchFailure(d)
                if d.is_io()
                    || d.is_timeout()
                    || d.as_other() == Some(aws_config::retry::ErrorKind::TransientError) =>
            {
                Outcome::Retry {
                    reason: plain(err),
                    progressed: false,
                }
            }
            SdkError::ServiceError(se) => {
                let status = service_status(err);
                match (se.err().code(), status) {
                    (Some("InvalidRange"), _) | (_, Some(416)) => {
                        Outcome::Restart("range not satisfiable (object changed?)".into())
                    }
                    (
                        Some(
                            "SlowDown" | "RequestTimeout" | "InternalError" | "ServiceUnavailable",
                        ),
                        _,
                    ) => Outcome::Retry {
                        reason: self.explain(err),
                        progressed: false,
                    },
                    (_, Some(s)) if s >= 500 || s == 429 => Outcome::Retry {
                        reason: self.explain(err),
                        progressed: false,
                    },
                    _ => Outcome::Fatal(self.explain(err)),
                }
            }
            _ => Outcome::Fatal(self.explain(err)),
        }
    }

    /// A readable one-line reason for an SDK error (never includes credentials).
    pub(super) fn explain<E>(&self, err: &SdkError<E, HttpResponse>) -> String
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let bucket = &self.url.bucket;
        if let SdkError::ServiceError(se) = err {
            let code = se.err().code().unwrap_or("");
            let status = service_status(err);
            return match code {
                "NoSuchBucket" => format!("bucket {bucket} does not exist"),
                "NoSuchKey" => "object not found (deleted since listing?)".to_string(),
                "AccessDenied" | "AllAccessDisabled" | "AccountProblem" => {
                    format!("access denied; {NEEDS}")
                }
                "InvalidAccessKeyId" => format!(
                    "bad credentials: the access key ID is not known to S3 (InvalidAccessKeyId); \
                     check AWS_ACCESS_KEY_ID / AWS_PROFILE; {NEEDS}"
                ),
                "SignatureDoesNotMatch" => format!(
                    "bad credentials: the secret access key does not match the access key ID \
                     (SignatureDoesNotMatch); {NEEDS}"
                ),
                "ExpiredToken" | "InvalidToken" | "TokenRefreshRequired" => {
                    format!("bad credentials: the session token is expired or invalid ({code}); {NEEDS}")
                }
                "PermanentRedirect"
                | "AuthorizationHeaderMalformed"
                | "IllegalLocationConstraintException" => {
                    format!("bucket {bucket} is in another region; set AWS_REGION to the bucket's region ({code})")
                }
                _ if status == Some(403) => format!("access denied (HTTP 403); {NEEDS}"),
                _ if status == Some(404) => format!("bucket {bucket} does not exist (HTTP 404)"),
                _ if status == Some(301) => {
                    format!("bucket {bucket} is in another region; set AWS_REGION to the bucket's region")
                }
                _ => {
                    let msg = se.err().message().unwrap_or("no message");
                    match status {
                        Some(s) => format!("S3 error {code} (HTTP {s}): {msg}"),
                        None => format!("S3 error {code}: {msg}"),
                    }
                }
            };
        }
        let text = plain(err);
        if text.contains("no credentials found") {
            format!(
                "no AWS credentials found (tried environment, profile, web identity, ECS and instance \
                 metadata); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE; {NEEDS}"
            )
        } else if text.contains("credential") {
            format!("could not load AWS credentials: {text}; {NEEDS}")
        } else {
            text
        }
    }
}

/// An SDK error's cause chain on one line, without the SDK's generic wrapper words.
pub(super) fn plain<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: std::error::Error + 'static,
{
    let lead = match err {
        SdkError::DispatchFailure(_) => "cannot reach S3",
        SdkError::TimeoutError(_) => "timed out",
        SdkError::ResponseError(_) => "bad response from S3",
        _ => "S3 request failed",
    };
    match std::error::Error::source(err) {
        Some(cause) => format!("{lead}: {}", chain(cause)),
        None => lead.to_string(),
    }
}

/// `e: cause: cause…` on one line, skipping empty, generic and repeated parts.
pub(super) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(e);
    while let Some(e) = cur {
        let text = e
            .to_string()
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        let generic = matches!(
            text.as_str(),
            "" | "dispatch failure" | "io error" | "other" | "timeout" | "response error"
        );
        if !generic && parts.last() != Some(&text) {
            parts.push(text);
        }
        cur = e.source();
    }
    if parts.is_empty() {
        "unknown error".to_string()
    } else {
        parts.join(": ")
    }
}

pub(super) fn service_status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    match err {
        SdkError::ServiceError(se) => Some(se.raw().status().as_u16()),
        _ => None,
    }
}
