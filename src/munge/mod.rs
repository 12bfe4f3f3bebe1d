//! Native decoder for MUNGE credentials (format 3, as munged 0.5.x writes them): verifies one
//! against the platforms' keys and applies munged's checks, with munged's error numbers.
//! It does not talk to munged, encode credentials, or keep the replay cache (the caller does).
//!
//! Files follow the decode steps: `armor` (text to bytes), `outer` (clear header, MAC, body),
//! `crypto` (HMACs, CBC), `zip` (decompression), `inner` (body fields), `decoder` (the steps in
//! order and the policy checks); `algorithms`, `key`, `credential` and `error` hold the types,
//! and `reader` is the bounds-checked cursor every parser reads through.

mod algorithms;
mod armor;
mod credential;
mod crypto;
mod decoder;
mod error;
mod inner;
mod key;
mod outer;
mod reader;
mod zip;

pub use algorithms::{Cipher, Mac, Zip};
pub use credential::Credential;
pub use decoder::{decode, DecodePolicy, MAX_TTL_SECS};
pub use error::MungeError;
pub use key::{KeyFileError, KeyLengthError, MungeKey, KEY_MAX_LEN, KEY_MIN_LEN};
