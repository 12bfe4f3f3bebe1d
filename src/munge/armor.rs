//! Removes a credential's armor, `MUNGE:` + base64 + `:`, exactly as munged's `dec_unarmor` does.
//! What the bytes mean is left to `outer` and `inner`.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::error::MungeError;

/// Text before the base64 (`MUNGE_CRED_PREFIX` in munge's `munge_defs.h`).
const PREFIX: &str = "MUNGE:";

/// Text after the base64: the last one in the input (`MUNGE_CRED_SUFFIX` in `munge_defs.h`).
const SUFFIX: char = ':';

/// Largest decode request libmunge sends, in bytes, counting the C string's terminating NUL
/// (`MUNGE_MAXIMUM_REQ_LEN`, twice `MUNGE_MAXIMUM_PAYLOAD_LEN`, in `munge_defs.h`).
const MAX_REQUEST_LEN: usize = 2 * 1024 * 1024;

/// munged's base64 (`src/munged/base64.c`): the standard alphabet, padding required and exact,
/// and the unused low bits of the last character ignored rather than checked.
const MUNGED_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::RequireCanonical)
        .with_decode_allow_trailing_bits(true),
);

/// The bytes inside the armor. Like munged, reads the input as a C string (it ends at a NUL),
/// skips leading whitespace, takes the last `:` after the prefix as the end, and ignores
/// whitespace within the base64.
pub(super) fn unarmor(armored: &str) -> Result<Vec<u8>, MungeError> {
    let c_string = armored.split('\0').next().unwrap_or_default();
    if c_string.len() >= MAX_REQUEST_LEN {
        return Err(MungeError::BadLength("credential over 2 MiB"));
    }
    let text = c_string.trim_start_matches(is_c_space);
    if text.is_empty() {
        return Err(MungeError::BadArg);
    }
    let body = text
        .strip_prefix(PREFIX)
        .ok_or(MungeError::BadCred("Failed to match armor prefix"))?;
    let (base64, _) = body
        .rsplit_once(SUFFIX)
        .ok_or(MungeError::BadCred("Failed to match armor suffix"))?;
    let compact: Vec<u8> = base64.bytes().filter(|b| !is_c_space_byte(*b)).collect();
    MUNGED_BASE64
        .decode(compact)
        .map_err(|_| MungeError::BadCred("Failed to base64-decode credential"))
}

/// C's `isspace` in the "C" locale, which munged's base64 table also skips; unlike
/// [`char::is_ascii_whitespace`] it includes vertical tab.
fn is_c_space(c: char) -> bool {
    u8::try_from(c).is_ok_and(is_c_space_byte)
}

fn is_c_space_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

#[cfg(test)]
mod tests {
    use super::{unarmor, MAX_REQUEST_LEN};
    use crate::munge::MungeError;

    #[test]
    fn plain_armor_decodes() {
        assert_eq!(unarmor("MUNGE:AQID:").unwrap(), [1, 2, 3]);
        assert_eq!(unarmor("MUNGE:AQI=:").unwrap(), [1, 2]);
        assert_eq!(unarmor("MUNGE:AQ==:").unwrap(), [1]);
        assert_eq!(unarmor("MUNGE::").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn whitespace_is_skipped_where_munged_skips_it() {
        assert_eq!(unarmor(" \t\x0b\x0c\r\nMUNGE:AQID:\n").unwrap(), [1, 2, 3]);
        assert_eq!(unarmor("MUNGE:A Q\tI\nD\x0b:").unwrap(), [1, 2, 3]);
        assert_eq!(unarmor("MUNGE:AQ= =:").unwrap(), [1]);
    }

    #[test]
    fn suffix_is_the_last_colon_and_what_follows_is_ignored() {
        assert_eq!(unarmor("MUNGE:AQID:trailing junk").unwrap(), [1, 2, 3]);
        assert!(matches!(
            unarmor("MUNGE:AQID:AQID:"),
            Err(MungeError::BadCred(_))
        ));
    }

    #[test]
    fn input_ends_at_a_nul_like_a_c_string() {
        assert_eq!(unarmor("MUNGE:AQID:\0MUNGE:AQ==:").unwrap(), [1, 2, 3]);
        assert_eq!(unarmor("\0MUNGE:AQID:"), Err(MungeError::BadArg));
    }

    #[test]
    fn missing_input_prefix_or_suffix_is_refused() {
        assert_eq!(unarmor(""), Err(MungeError::BadArg));
        assert_eq!(unarmor(" \n\t"), Err(MungeError::BadArg));
        assert_eq!(
            unarmor("AQID:"),
            Err(MungeError::BadCred("Failed to match armor prefix"))
        );
        assert_eq!(
            unarmor("munge:AQID:"),
            Err(MungeError::BadCred("Failed to match armor prefix"))
        );
        assert_eq!(
            unarmor("MUNGE:AQID"),
            Err(MungeError::BadCred("Failed to match armor suffix"))
        );
        assert_eq!(
            unarmor("MUNGE:"),
            Err(MungeError::BadCred("Failed to match armor suffix"))
        );
    }

    #[test]
    fn padding_must_be_exact_but_trailing_bits_are_ignored() {
        let refused = [
            "MUNGE:AQ:",
            "MUNGE:AQI:",
            "MUNGE:AQ=:",
            "MUNGE:AQID=:",
            "MUNGE:AQ===:",
        ];
        for input in refused {
            assert!(
                matches!(unarmor(input), Err(MungeError::BadCred(_))),
                "{input}"
            );
        }
        for input in [
            "MUNGE:A:",
            "MUNGE:=:",
            "MUNGE:AQ=I:",
            "MUNGE:A*ID:",
            "MUNGE:AQ-_:",
        ] {
            assert!(
                matches!(unarmor(input), Err(MungeError::BadCred(_))),
                "{input}"
            );
        }
        assert_eq!(
            unarmor("MUNGE:AR==:").unwrap(),
            [1],
            "low bits of R ignored"
        );
        assert_eq!(
            unarmor("MUNGE:AQJ=:").unwrap(),
            [1, 2],
            "low bits of J ignored"
        );
    }

    #[test]
    fn non_ascii_is_refused() {
        assert!(matches!(
            unarmor("MUNGE:AQ\u{e9}D:"),
            Err(MungeError::BadCred(_))
        ));
        assert!(matches!(
            unarmor("\u{a0}MUNGE:AQID:"),
            Err(MungeError::BadCred(_))
        ));
    }

    #[test]
    fn oversized_input_is_refused_before_decoding() {
        let mut huge = String::from("MUNGE:");
        huge.push_str(&"A".repeat(MAX_REQUEST_LEN));
        huge.push(':');
        assert!(matches!(unarmor(&huge), Err(MungeError::BadLength(_))));
        let longest = format!("MUNGE:{}:", "A".repeat(MAX_REQUEST_LEN - 8 - 4));
        assert!(longest.len() < MAX_REQUEST_LEN);
        assert!(unarmor(&longest).is_ok());
    }
}
