//! Unpacks a verified, decompressed credential body (INNER) as munged's `dec_unpack_inner` does,
//! with every length bounds-checked; `addr_len` is limited to 0 or 4 (CVE-2026-25506).

use std::net::Ipv4Addr;

use super::error::MungeError;
use super::reader::Reader;

/// Random salt at the start of every body (`MUNGE_CRED_SALT_LEN` in munge's `munge_defs.h`).
const SALT_LEN: usize = 8;

/// The only non-zero origin address length: an IPv4 address (munged's `struct in_addr`).
const IPV4_ADDR_LEN: usize = 4;

/// Restriction value meaning "anyone may decode" (`MUNGE_UID_ANY`, `MUNGE_GID_ANY`: `(uid_t) -1`).
const ANYONE: u32 = u32::MAX;

/// Largest payload munged encodes or decodes, in bytes (`MUNGE_MAXIMUM_PAYLOAD_LEN`, 1 MiB).
pub(super) const MAX_PAYLOAD_LEN: usize = 1024 * 1024;

/// Longest body a decodable credential can have: salt, `addr_len`, an IPv4 address, seven u32
/// fields and the largest payload. Caps the length a compressed body may claim.
pub(super) const MAX_INNER_LEN: usize = SALT_LEN + 1 + IPV4_ADDR_LEN + 7 * 4 + MAX_PAYLOAD_LEN;

/// The fields of a credential body.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Inner<'a> {
    pub(super) origin: Option<Ipv4Addr>,
    pub(super) encode_time: u32,
    pub(super) ttl_secs: u32,
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) restrict_uid: Option<u32>,
    pub(super) restrict_gid: Option<u32>,
    pub(super) payload: &'a [u8],
}

impl<'a> Inner<'a> {
    /// Reads salt, origin, times, ids, restrictions and payload; nothing may follow the payload.
    pub(super) fn parse(bytes: &'a [u8]) -> Result<Inner<'a>, MungeError> {
        let mut reader = Reader::new(bytes);
        reader.bytes(SALT_LEN, "Truncated salt")?;
        let addr_len = usize::from(reader.u8("Truncated origin IP addr length")?);
        let addr = reader.bytes(addr_len, "Truncated origin IP addr")?;
        let origin = match <[u8; IPV4_ADDR_LEN]>::try_from(addr) {
            Ok(octets) => Some(Ipv4Addr::from(octets)),
            Err(_) if addr.is_empty() => None,
            Err(_) => return Err(MungeError::BadCred("Invalid origin IP addr length")),
        };
        let encode_time = reader.u32("Truncated encode time")?;
        let ttl_secs = reader.u32("Truncated time-to-live")?;
        let uid = reader.u32("Truncated UID")?;
        let gid = reader.u32("Truncated GID")?;
        let restrict_uid = reader.u32("Truncated UID restriction")?;
        let restrict_gid = reader.u32("Truncated GID restriction")?;
        let payload_len = reader.u32("Truncated payload length")?;
        let payload_len = usize::try_from(payload_len).unwrap_or(usize::MAX);
        let payload = reader.bytes(payload_len, "Truncated payload data")?;
        if payload.len() > MAX_PAYLOAD_LEN {
            return Err(MungeError::BadLength("payload over 1 MiB"));
        }
        if !reader.rest().is_empty() {
            return Err(MungeError::BadCred("Trailing bytes after payload"));
        }
        Ok(Inner {
            origin,
            encode_time,
            ttl_secs,
            uid,
            gid,
            restrict_uid: (restrict_uid != ANYONE).then_some(restrict_uid),
            restrict_gid: (restrict_gid != ANYONE).then_some(restrict_gid),
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Inner, MAX_PAYLOAD_LEN};
    use crate::munge::MungeError;
    use std::net::Ipv4Addr;

    fn body(addr: &[u8], restrict: [u32; 2], payload_len: u32, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![0x5A; 8];
        bytes.push(u8::try_from(addr.len()).unwrap());
        bytes.extend(addr);
        for field in [
            1_700_000_000,
            300,
            1000,
            100,
            restrict[0],
            restrict[1],
            payload_len,
        ] {
            bytes.extend(u32::to_be_bytes(field));
        }
        bytes.extend(payload);
        bytes
    }

    #[test]
    fn unpacks_every_field() {
        let bytes = body(&[127, 0, 0, 1], [1000, u32::MAX], 2, b"hi");
        let inner = Inner::parse(&bytes).unwrap();
        assert_eq!(
            inner,
            Inner {
                origin: Some(Ipv4Addr::LOCALHOST),
                encode_time: 1_700_000_000,
                ttl_secs: 300,
                uid: 1000,
                gid: 100,
                restrict_uid: Some(1000),
                restrict_gid: None,
                payload: b"hi",
            }
        );
        let bytes = body(&[], [u32::MAX, 0], 0, b"");
        let inner = Inner::parse(&bytes).unwrap();
        assert_eq!(
            (inner.origin, inner.restrict_uid, inner.restrict_gid),
            (None, None, Some(0))
        );
        assert!(inner.payload.is_empty());
    }

    #[test]
    fn addr_len_other_than_0_or_4_is_refused() {
        for len in [1, 2, 3, 5, 16] {
            let bytes = body(&vec![1; len], [u32::MAX; 2], 0, b"");
            assert_eq!(
                Inner::parse(&bytes),
                Err(MungeError::BadCred("Invalid origin IP addr length")),
                "addr_len {len}"
            );
        }
        let mut bytes = vec![0; 8];
        bytes.push(255);
        assert_eq!(
            Inner::parse(&bytes),
            Err(MungeError::BadCred("Truncated origin IP addr"))
        );
    }

    #[test]
    fn payload_length_must_match_what_is_there() {
        let long_claim = body(&[], [u32::MAX; 2], 3, b"hi");
        assert_eq!(
            Inner::parse(&long_claim),
            Err(MungeError::BadCred("Truncated payload data"))
        );
        let huge_claim = body(&[], [u32::MAX; 2], u32::MAX, b"hi");
        assert_eq!(
            Inner::parse(&huge_claim),
            Err(MungeError::BadCred("Truncated payload data"))
        );
        let short_claim = body(&[], [u32::MAX; 2], 1, b"hi");
        assert_eq!(
            Inner::parse(&short_claim),
            Err(MungeError::BadCred("Trailing bytes after payload"))
        );
    }

    #[test]
    fn payload_over_one_mebibyte_is_bad_length() {
        let payload = vec![0; MAX_PAYLOAD_LEN + 1];
        let bytes = body(
            &[],
            [u32::MAX; 2],
            u32::try_from(payload.len()).unwrap(),
            &payload,
        );
        assert_eq!(Inner::parse(&bytes).unwrap_err().code(), 3);
        let payload = vec![0; MAX_PAYLOAD_LEN];
        let bytes = body(
            &[],
            [u32::MAX; 2],
            u32::try_from(payload.len()).unwrap(),
            &payload,
        );
        assert!(Inner::parse(&bytes).is_ok());
    }

    #[test]
    fn every_truncation_is_bad_cred() {
        let bytes = body(&[10, 1, 2, 3], [5, 6], 4, b"data");
        for len in 0..bytes.len() {
            assert_eq!(
                Inner::parse(&bytes[..len]).unwrap_err().code(),
                8,
                "length {len}"
            );
        }
    }
}
