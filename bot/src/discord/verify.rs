//! Request signing: Ed25519 over `timestamp ++ body` with the application's public key (by
//! serenity's verifier), plus the freshness check serenity does not make.

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serenity::interactions_endpoint::Verifier;

/// How old (or how far ahead) a request's timestamp may be.
const MAX_AGE_SECS: u64 = 300;

/// A verifier for one application public key (hex, as the Developer Portal shows it).
pub struct Keys(Verifier);

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys(Ed25519 public key)")
    }
}

impl Keys {
    /// Parses the hex public key; a readable reason when it is not 32 bytes of hex.
    pub fn new(public_key_hex: &str) -> Result<Keys, String> {
        let bytes = hex32(public_key_hex.trim()).ok_or("DISCORD_PUBLIC_KEY must be 64 hex characters")?;
        Verifier::try_new(bytes).map(Keys).map_err(|e| format!("DISCORD_PUBLIC_KEY is not an Ed25519 key: {e}"))
    }

    /// Checks the signature headers of a request received at `now`.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8], now: DateTime<Utc>) -> Result<(), String> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let signature = header("x-signature-ed25519").ok_or("missing X-Signature-Ed25519 header")?;
        let timestamp = header("x-signature-timestamp").ok_or("missing X-Signature-Timestamp header")?;
        self.0.verify(signature, timestamp, body).map_err(|()| "invalid request signature".to_string())?;
        let ts: i64 = timestamp.parse().map_err(|_| "the timestamp is not a number of seconds")?;
        if now.timestamp().abs_diff(ts) > MAX_AGE_SECS {
            return Err("the request timestamp is more than 5 minutes from now".into());
        }
        Ok(())
    }
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&s[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}
