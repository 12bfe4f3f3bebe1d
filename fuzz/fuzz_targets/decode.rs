//! libFuzzer target: `decode` on arbitrary input, read both as the armored text and as raw
//! credential bytes armored here, with a fixed key. It must return, never panic or over-read.
//! Seeds in `corpus/decode` are credentials from munged 0.5.15 with this key, at this time.

#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use portcullis::munge::{decode, DecodePolicy, MungeKey};

/// The key file of the munged that made the seeds (the unit tests' vectors use it too).
const KEY: &[u8] = b"portcullis munge decoder unit-test key, not secret\n";

/// When the seeds were encoded, so that they decode all the way through.
const ENCODED: u64 = 1_795_632_444;

fuzz_target!(|data: &[u8]| {
    let key = MungeKey::from_bytes(KEY).expect("fixed key has a valid length");
    let keys = [("fuzz", &key)];
    let policy = DecodePolicy {
        decoder_uid: Some(1234),
        decoder_gid: Some(5678),
        ..DecodePolicy::default()
    };
    let _ = decode(&String::from_utf8_lossy(data), &keys, ENCODED, &policy);
    let armored = format!("MUNGE:{}:", STANDARD.encode(data));
    let _ = decode(&armored, &keys, ENCODED, &policy);
});
