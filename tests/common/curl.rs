//! Token requests and other HTTP calls made with curl, as clients make them: the answer's status,
//! its headers (lowercased) and its JSON body.

use serde_json::Value;

use crate::common::external::run_with_stdin;
use crate::common::portcullis::Portcullis;

/// An HTTP answer.
pub struct Answer {
    pub status: u16,
    pub headers: String,
    pub body: Value,
}

impl Answer {
    /// The seconds of a 503's `Retry-After`, asserted to be present and within `1..=max`.
    pub fn retry_after(&self, max: u64) -> u64 {
        let seconds: u64 = self
            .headers
            .lines()
            .find_map(|l| l.strip_prefix("retry-after:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("Retry-After: {}", self.headers));
        assert!(
            (1..=max).contains(&seconds),
            "Retry-After {seconds}: expected 1 to {max}"
        );
        seconds
    }
}

/// Runs curl with `args` (the URL last); the answer's status, headers and JSON body.
pub fn curl(args: &[&str]) -> Answer {
    let mut all = vec!["-s", "-i", "--max-time", "60"];
    all.extend_from_slice(args);
    let output = run_with_stdin("curl", &all, "", &[]);
    let text = String::from_utf8_lossy(&output.stdout).replace("\r\n", "\n");
    let (headers, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let status = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text}"));
    Answer {
        status,
        headers: headers.to_lowercase(),
        body: serde_json::from_str(body).unwrap_or(Value::Null),
    }
}

impl Portcullis {
    /// A GET token request of the default realm with HTTP Basic `user:secret` and `query` after
    /// the service.
    pub fn basic_token(&self, user: &str, secret: &str, query: &str) -> Answer {
        curl(&["-u", &format!("{user}:{secret}"), &self.token_url(query)])
    }

    /// A POST token request of the default realm with this form.
    pub fn post_token(&self, form: &str) -> Answer {
        let url = format!("{}/auth/realms/default/protocol/docker-v2/auth", self.url());
        curl(&["-d", form, &url])
    }
}
