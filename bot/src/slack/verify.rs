//! Request signing: every HTTP request from Slack is checked before anything in it is parsed.

use axum::http::HeaderMap;
use slack_morphism::SlackSigningSecret;
use slack_morphism::signature_verifier::{SlackEventSignatureVerifier, SlackEventSignatureVerifierError};

/// Checks `X-Slack-Signature` (v0, HMAC-SHA256 over `v0:timestamp:body`, compared in constant
/// time) and that `X-Slack-Request-Timestamp` is within five minutes of now, either way.
/// Returns the reason for a refusal.
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let signature =
        header(SlackEventSignatureVerifier::SLACK_SIGNED_HASH_HEADER).ok_or("missing X-Slack-Signature header")?;
    let timestamp = header(SlackEventSignatureVerifier::SLACK_SIGNED_TIMESTAMP)
        .ok_or("missing X-Slack-Request-Timestamp header")?;
    let body = std::str::from_utf8(body).map_err(|_| "the body is not UTF-8, so it cannot be signed by Slack")?;
    let verifier = SlackEventSignatureVerifier::new(&SlackSigningSecret::new(secret.to_string()));
    verifier.verify(signature, body, timestamp).map_err(|e| match e {
        SlackEventSignatureVerifierError::IncorrectOrExpiredTimestampError(_) => {
            "the request timestamp is not within 5 minutes of now".to_string()
        }
        SlackEventSignatureVerifierError::WrongSignatureError(_) => "the signature does not match".to_string(),
        SlackEventSignatureVerifierError::AbsentSignatureError(_) => "missing signature".to_string(),
        SlackEventSignatureVerifierError::CryptoInitError(_) => "the signing secret is unusable".to_string(),
    })
}

/// Signs a request body as Slack does (`v0=` HMAC-SHA256 of `v0:{timestamp}:{body}`): the
/// counterpart of [`verify`], for clients that stand in for Slack (tests, `baton bench serve`).
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    use hmac::Mac as _;
    let mut mac = match hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("v0={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slacks_documented_example_signature_is_checked() {
        // docs.slack.dev's worked example (tests/fixtures/slack/signature_example.txt); its timestamp
        // is from 2018, so the signature matches and only the freshness check refuses it.
        let text = include_str!("../../../tests/fixtures/slack/signature_example.txt");
        let field = |name: &str| {
            text.lines().find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('\t'))).expect(name)
        };
        let mut headers = HeaderMap::new();
        headers.insert("x-slack-signature", field("X-Slack-Signature").parse().expect("header"));
        headers.insert("x-slack-request-timestamp", field("X-Slack-Request-Timestamp").parse().expect("header"));
        let body = field("body");
        let err = verify(field("signing_secret"), &headers, body.as_bytes()).expect_err("stale");
        assert_eq!(err, "the request timestamp is not within 5 minutes of now");
        assert_eq!(
            sign(field("signing_secret"), 1_531_420_618, body),
            field("X-Slack-Signature"),
            "sign matches Slack"
        );
        let err = verify("another-secret", &headers, body.as_bytes()).expect_err("wrong secret");
        assert_eq!(err, "the signature does not match");
    }
}
