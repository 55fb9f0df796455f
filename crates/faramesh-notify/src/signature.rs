//! HMAC-SHA256 request signatures: the ones Faramesh puts on its webhooks, and the ones Slack
//! puts on its button callbacks. Both sign a timestamp with the body, so a receiver can check
//! origin and freshness, and compare in constant time.

use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// How far a signed timestamp may be from now, in seconds: Slack's replay window, ours too.
pub const TOLERANCE_SECONDS: i64 = 300;

fn hmac_hex(secret: &str, parts: &[&[u8]]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// The `X-Faramesh-Signature` header of a webhook sent at `unix_seconds`:
/// `t=<unix>,v1=<hex HMAC-SHA256 of "<unix>.<body>">`.
pub fn webhook_signature(secret: &str, unix_seconds: i64, body: &[u8]) -> String {
    let t = unix_seconds.to_string();
    format!("t={t},v1={}", hmac_hex(secret, &[t.as_bytes(), b".", body]))
}

/// Why a Slack request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlackRefusal {
    #[error("the request has no X-Slack-Request-Timestamp or X-Slack-Signature header")]
    Unsigned,
    #[error("the request's timestamp is more than five minutes from now; it may be a replay")]
    Stale,
    #[error("the request's signature does not match any Slack signing secret of the routes file")]
    BadSignature,
}

/// Checks Slack's v0 signature: `X-Slack-Signature` is `v0=<hex HMAC-SHA256 of
/// "v0:<timestamp>:<body>">` and `X-Slack-Request-Timestamp` is within five minutes of `now`.
pub fn verify_slack(
    signing_secret: &str,
    timestamp: &str,
    body: &[u8],
    signature: &str,
    now: i64,
) -> Result<(), SlackRefusal> {
    let at: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| SlackRefusal::Unsigned)?;
    if (now - at).abs() > TOLERANCE_SECONDS {
        return Err(SlackRefusal::Stale);
    }
    let expected = format!(
        "v0={}",
        hmac_hex(
            signing_secret,
            &[b"v0:", timestamp.trim().as_bytes(), b":", body]
        )
    );
    if bool::from(expected.as_bytes().ct_eq(signature.trim().as_bytes())) {
        Ok(())
    } else {
        Err(SlackRefusal::BadSignature)
    }
}

/// Slack's signature of `body` at `timestamp`, as Slack computes it (for tests and tools).
pub fn slack_signature(signing_secret: &str, timestamp: &str, body: &[u8]) -> String {
    format!(
        "v0={}",
        hmac_hex(signing_secret, &[b"v0:", timestamp.as_bytes(), b":", body])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slacks_documented_example_verifies() {
        // The example of Slack's "Verifying requests from Slack" guide.
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let signature = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert_eq!(
            verify_slack(secret, "1531420618", body, signature, 1_531_420_618),
            Ok(())
        );
        assert_eq!(slack_signature(secret, "1531420618", body), signature);
        assert_eq!(
            verify_slack(secret, "1531420618", body, signature, 1_531_420_618 + 301),
            Err(SlackRefusal::Stale)
        );
        assert_eq!(
            verify_slack(
                "another secret",
                "1531420618",
                body,
                signature,
                1_531_420_618
            ),
            Err(SlackRefusal::BadSignature)
        );
        assert_eq!(
            verify_slack(secret, "soon", body, signature, 0),
            Err(SlackRefusal::Unsigned)
        );
    }

    #[test]
    fn a_webhook_signature_covers_the_time_and_the_body() {
        let header = webhook_signature("whsec", 1_700_000_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1700000000,v1="), "{header}");
        assert_ne!(
            header,
            webhook_signature("whsec", 1_700_000_001, b"{\"a\":1}")
        );
        assert_ne!(
            header,
            webhook_signature("whsec", 1_700_000_000, b"{\"a\":2}")
        );
        assert_eq!(header.len(), "t=1700000000,v1=".len() + 64);
        // The same value `openssl dgst -sha256 -hmac whsec` gives for "1700000000.{"a":1}".
        assert_eq!(
            header,
            "t=1700000000,v1=8ad37ba156048ae0e0a5533c75cdf26fee88b07f93cb57ee4c80adb053012032"
        );
    }
}
