//! The native decoder against the real munged 0.5 (Debian package `munge`): each test starts a
//! private munged, encodes with `munge`, and checks that `decode` and `unmunge` agree field by
//! field, or on the error number, for valid, restricted, tampered, truncated, forged and random
//! credentials. Needs root (munged without systemd) and the `munge` tools on PATH.

pub mod common;

use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use common::munged::forge::Spec;
use common::munged::{now, Munged, Rng, Unmunged};
use portcullis::munge::{decode, Cipher, Credential, DecodePolicy, Mac, MungeError, MungeKey, Zip};

const JSON: &[u8] = br#"{"authorized_locations":{"default":"alice:pa:ss"}}"#;

fn large_payload() -> Vec<u8> {
    b"registry.example.org/library/alpine:3.20 pulled by alice; ".repeat(200 * 1024 / 58)
}

/// This process's uid and gid (the owner of `/proc/self`).
fn own_ids() -> (u32, u32) {
    let metadata = std::fs::metadata("/proc/self").expect("/proc/self");
    (metadata.uid(), metadata.gid())
}

/// The policy of a decoder with this process's identity, as unmunge has.
fn own_policy() -> DecodePolicy {
    let (uid, gid) = own_ids();
    DecodePolicy {
        decoder_uid: Some(uid),
        decoder_gid: Some(gid),
        ..DecodePolicy::default()
    }
}

fn native(
    daemon: &Munged,
    credential: &str,
    policy: &DecodePolicy,
) -> Result<Credential, MungeError> {
    decode(credential, &[("cluster", &daemon.key())], now(), policy)
}

fn code(result: &Result<Credential, MungeError>) -> i32 {
    result.as_ref().map_or_else(|e| i32::from(e.code()), |_| 0)
}

fn armor(bytes: &[u8]) -> String {
    format!("MUNGE:{}:", STANDARD.encode(bytes))
}

/// The base64 between a credential's `MUNGE:` and its final `:`.
fn armored_base64(credential: &str) -> &str {
    credential
        .trim()
        .strip_prefix("MUNGE:")
        .unwrap()
        .strip_suffix(':')
        .unwrap()
}

fn unarmor(credential: &str) -> Vec<u8> {
    STANDARD.decode(armored_base64(credential)).unwrap()
}

/// `decode` and `unmunge` read the same credential the same way.
fn assert_agree(credential: &Credential, unmunged: &Unmunged, what: &str) {
    assert_eq!(unmunged.status, 0, "{what}: unmunge failed: {unmunged:?}");
    let fields = [
        ("ENCODE_TIME", u64::from(credential.encode_time())),
        ("TTL", u64::from(credential.ttl_secs())),
        ("CIPHER", u64::from(credential.cipher().code())),
        ("MAC", u64::from(credential.mac().code())),
        ("ZIP", u64::from(credential.zip().code())),
        ("UID", u64::from(credential.uid())),
        ("GID", u64::from(credential.gid())),
        ("LENGTH", credential.payload().len() as u64),
    ];
    for (key, value) in fields {
        assert_eq!(unmunged.number(key), value, "{what}: {key}");
    }
    assert_eq!(
        credential.payload(),
        unmunged.payload.as_slice(),
        "{what}: payload"
    );
    // unmunge prints an absent origin as 0.0.0.0.
    let origin = credential
        .origin()
        .unwrap_or(Ipv4Addr::UNSPECIFIED)
        .to_string();
    assert_eq!(
        unmunged.meta.get("ENCODE_HOST"),
        Some(&origin),
        "{what}: origin"
    );
    for (key, restriction) in [
        ("UID_RESTRICTION", credential.restrict_uid()),
        ("GID_RESTRICTION", credential.restrict_gid()),
    ] {
        let printed = unmunged.meta.get(key).map(|v| v.parse::<u32>().unwrap());
        assert_eq!(printed, restriction, "{what}: {key}");
    }
}

/// Both decoders give `expected` for `input`.
fn assert_both(daemon: &Munged, input: &str, expected: i32, what: &str) {
    let ours = code(&native(daemon, input, &own_policy()));
    let theirs = daemon.unmunge(input.as_bytes());
    assert_eq!(
        (ours, theirs.status),
        (expected, expected),
        "{what}: native {ours}, unmunge {} ({})",
        theirs.status,
        theirs.stderr.trim()
    );
}

#[test]
fn every_valid_combination_decodes_as_unmunge_decodes() {
    let daemon = Munged::start(&[]);
    let payloads = [
        ("empty", Vec::new()),
        ("json", JSON.to_vec()),
        ("200 KB", large_payload()),
    ];
    let mut decoded = 0;
    let mut compressed = 0;
    for cipher in Cipher::ALL {
        for mac in Mac::ALL {
            for zip in Zip::ALL {
                let args = ["-c", cipher.name(), "-m", mac.name(), "-z", zip.name()];
                if !mac.can_key(cipher) {
                    let refused = daemon.munge(&args, b"").unwrap_err();
                    assert!(refused.contains("Invalid MAC type"), "{args:?}: {refused}");
                    continue;
                }
                for (name, payload) in &payloads {
                    let what = format!("{cipher}/{mac}/{zip} {name}");
                    let credential = daemon.encode(&args, payload);
                    let ours = native(&daemon, &credential, &own_policy())
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    assert_eq!((ours.cipher(), ours.mac()), (cipher, mac), "{what}");
                    assert_eq!(ours.payload(), payload.as_slice(), "{what}");
                    assert_eq!(ours.platform(), "cluster");
                    assert_eq!(
                        ours.replay_key().as_slice(),
                        replay_key(&credential, cipher)
                    );
                    assert_agree(&ours, &daemon.unmunge(credential.as_bytes()), &what);
                    if ours.zip() != Zip::None {
                        assert_eq!(ours.zip(), zip, "{what}");
                        compressed += 1;
                    }
                    decoded += 1;
                }
            }
        }
    }
    assert_eq!(decoded, 66 * 3, "22 cipher/MAC pairs x 3 zips x 3 payloads");
    assert!(
        compressed >= 44,
        "the large payload compresses under every bzlib/zlib pair"
    );
}

/// The first 16 bytes of the MAC, which follows the 5-byte header and the IV.
fn replay_key(credential: &str, cipher: Cipher) -> Vec<u8> {
    let start = 5 + cipher.block_len();
    unarmor(credential)[start..start + 16].to_vec()
}

#[test]
fn restricted_credentials_follow_the_decoders_ids() {
    let daemon = Munged::start(&[]);
    let (uid, gid) = own_ids();

    let to_other_uid = daemon.encode(&["-u", "4321"], JSON);
    assert_eq!(
        native(&daemon, &to_other_uid, &own_policy()),
        Err(MungeError::Unauthorized)
    );
    let anonymous = DecodePolicy::default();
    assert_eq!(
        native(&daemon, &to_other_uid, &anonymous),
        Err(MungeError::Unauthorized)
    );
    let as_4321 = DecodePolicy {
        decoder_uid: Some(4321),
        ..DecodePolicy::default()
    };
    let ours = native(&daemon, &to_other_uid, &as_4321).unwrap();
    assert_eq!(ours.restrict_uid(), Some(4321));
    assert_eq!(
        daemon.unmunge(to_other_uid.as_bytes()).status,
        18,
        "root is not exempt"
    );
    if uid == 0 {
        let theirs = daemon.unmunge_as(Some((4321, 4321)), to_other_uid.as_bytes());
        assert_agree(&ours, &theirs, "-u 4321 decoded as uid 4321");
    }

    let to_own_gid = daemon.encode(&["-g", &gid.to_string()], b"");
    assert_eq!(
        native(&daemon, &to_own_gid, &anonymous),
        Err(MungeError::Unauthorized)
    );
    let ours = native(&daemon, &to_own_gid, &own_policy()).unwrap();
    assert_eq!(
        (ours.restrict_uid(), ours.restrict_gid()),
        (None, Some(gid))
    );
    assert_agree(&ours, &daemon.unmunge(to_own_gid.as_bytes()), "-g own gid");

    let to_own_uid = daemon.encode(&["-u", &uid.to_string()], b"");
    let strict = DecodePolicy {
        require_restriction: true,
        ..own_policy()
    };
    assert!(native(&daemon, &to_own_uid, &strict).is_ok());
    let unrestricted = daemon.encode(&[], b"");
    assert_eq!(
        native(&daemon, &unrestricted, &strict),
        Err(MungeError::Unauthorized)
    );
    assert!(native(&daemon, &unrestricted, &own_policy()).is_ok());
}

#[test]
fn tampered_credentials_get_munged_error_numbers() {
    let daemon = Munged::start(&[]);
    let credential = daemon.encode(&["-c", "aes256", "-m", "sha512"], JSON);
    let bytes = unarmor(&credential);
    let mac_start = 5 + 16;
    let tamper = |index: usize, value: Option<u8>| {
        let mut tampered = bytes.clone();
        tampered[index] = value.unwrap_or(tampered[index] ^ 0x20);
        armor(&tampered)
    };
    let cases = [
        ("flipped MAC byte", tamper(mac_start + 7, None), 14),
        ("flipped last MAC byte", tamper(mac_start + 63, None), 14),
        ("flipped IV byte", tamper(7, None), 14),
        ("flipped first body byte", tamper(mac_start + 64, None), 14),
        ("flipped last body byte", tamper(bytes.len() - 1, None), 14),
        ("version 2", tamper(0, Some(2)), 9),
        ("version 4", tamper(0, Some(4)), 9),
        ("cipher 1 (default)", tamper(1, Some(1)), 10),
        ("cipher 99", tamper(1, Some(99)), 10),
        ("cipher aes128 (IV moves)", tamper(1, Some(4)), 14),
        ("MAC 0 (none)", tamper(2, Some(0)), 11),
        ("MAC 99", tamper(2, Some(99)), 11),
        ("MAC md5 under aes256", tamper(2, Some(2)), 11),
        ("MAC sha256 (length moves)", tamper(2, Some(5)), 14),
        ("zip 1 (default)", tamper(3, Some(1)), 12),
        ("zip 200", tamper(3, Some(200)), 12),
        ("zip zlib", tamper(3, Some(3)), 14),
        ("realm length 255", tamper(4, Some(255)), 8),
        ("realm length 1", tamper(4, Some(1)), 14),
    ];
    for (what, input, expected) in cases {
        assert_both(&daemon, &input, expected, what);
    }
    // munged checks the header before the MAC: a bad version wins over a bad MAC.
    let mut both = bytes.clone();
    both[0] = 7;
    both[mac_start] ^= 1;
    assert_both(&daemon, &armor(&both), 9, "bad version and bad MAC");

    assert_eq!(
        code(&native(&daemon, &credential, &own_policy())),
        0,
        "original intact"
    );
}

#[test]
fn wrong_key_is_cred_invalid_and_right_key_names_the_platform() {
    let daemon = Munged::start(&[]);
    let credential = daemon.encode(&[], JSON);
    let other = MungeKey::from_bytes(&[b'x'; 128]).unwrap();
    let right = daemon.key();
    let policy = own_policy();
    assert_eq!(
        decode(&credential, &[("elsewhere", &other)], now(), &policy),
        Err(MungeError::CredInvalid)
    );
    let keys = [("elsewhere", &other), ("perlmutter", &right)];
    let ours = decode(&credential, &keys, now(), &policy).unwrap();
    assert_eq!(ours.platform(), "perlmutter");
    let forged_elsewhere = Spec::new(now() as u32).forge(&[b'x'; 128]);
    assert_both(
        &daemon,
        &forged_elsewhere,
        14,
        "credential signed with another key",
    );
}

#[test]
fn malformed_text_gets_munged_error_numbers() {
    let daemon = Munged::start(&[]);
    let credential = daemon.encode(&[], b"");
    let base64 = armored_base64(&credential);
    let cases = [
        ("empty", String::new(), 2),
        ("whitespace only", " \n\t ".to_owned(), 2),
        ("no prefix", format!("{base64}:"), 8),
        ("lower-case prefix", format!("munge:{base64}:"), 8),
        ("no suffix", format!("MUNGE:{base64}"), 8),
        ("prefix only", "MUNGE:".to_owned(), 8),
        ("empty base64", "MUNGE::".to_owned(), 8),
        (
            "bad base64 character",
            format!("MUNGE:{}*{}:", &base64[..8], &base64[9..]),
            8,
        ),
        ("url-safe alphabet", "MUNGE:AwQF-_-_:".to_owned(), 8),
        (
            "missing padding",
            format!("MUNGE:{}:", base64.trim_end_matches('=')),
            8,
        ),
        ("extra padding", format!("MUNGE:{base64}=:"), 8),
        ("garbage", "MUNGE:this is not a credential!:".to_owned(), 8),
        (
            "two credentials",
            format!("{}{}", credential.trim(), credential.trim()),
            8,
        ),
        ("non-ASCII", format!("MUNGE:{}\u{e9}:", &base64[..8]), 8),
    ];
    for (what, input, expected) in cases {
        assert_both(&daemon, &input, expected, what);
    }
    // The decoder takes current munge's limit (2 MiB); Debian's unmunge 0.5.15 stops reading
    // at 1 MiB and exits 1 ("Exceeded maximum memory allocation").
    let oversized = format!("MUNGE:{}:", "A".repeat(2 * 1024 * 1024));
    assert_eq!(code(&native(&daemon, &oversized, &own_policy())), 3);
    assert_eq!(daemon.unmunge(oversized.as_bytes()).status, 1);

    let spaced = format!(
        " \n\tMUNGE:{}\n{}:\n",
        &base64[..20],
        base64[20..].replace('A', "A\r\n")
    );
    let ours = native(&daemon, &spaced, &own_policy()).unwrap();
    assert_agree(
        &ours,
        &daemon.unmunge(spaced.as_bytes()),
        "whitespace inside",
    );
}

#[test]
fn every_truncation_agrees_with_unmunge() {
    let daemon = Munged::start(&[]);
    let credential = daemon.encode(&["-c", "blowfish", "-m", "md5"], b"");
    let bytes = unarmor(&credential);
    for len in 0..bytes.len() {
        let truncated = armor(&bytes[..len]);
        let ours = code(&native(&daemon, &truncated, &own_policy()));
        assert!(ours == 8 || ours == 14, "{len} bytes: {ours}");
        assert_both(
            &daemon,
            &truncated,
            ours,
            &format!("{len} of {} bytes", bytes.len()),
        );
    }
    let text = credential.trim();
    for len in 0..text.len() {
        let truncated = &text[..len];
        let ours = code(&native(&daemon, truncated, &own_policy()));
        assert_ne!(ours, 0, "{len} characters");
        assert_both(&daemon, truncated, ours, &format!("{len} characters"));
    }
}

#[test]
fn random_inputs_agree_with_unmunge() {
    let daemon = Munged::start(&[]);
    let mut rng = Rng::new(0x5EED_0001);
    for round in 0..300 {
        let len = rng.below(200);
        let mut bytes = rng.bytes(len);
        if round % 3 == 0 && !bytes.is_empty() {
            bytes[0] = 3;
        }
        if round % 3 == 1 && bytes.len() > 4 {
            bytes[..4].copy_from_slice(&[3, 4, 5, 0]);
        }
        let input = armor(&bytes);
        let ours = code(&native(&daemon, &input, &own_policy()));
        assert_ne!(ours, 0, "round {round}");
        assert_both(&daemon, &input, ours, &format!("random round {round}"));
    }
}

#[test]
fn expired_and_rewound_agree_with_unmunge() {
    let daemon = Munged::start(&[]);
    let key = daemon.key();
    let keys = [("cluster", &key)];
    let policy = own_policy();

    let credential = daemon.encode(&[], b"");
    let encoded = native(&daemon, &credential, &policy).unwrap().encode_time();
    let t = u64::from(encoded);
    assert_eq!(
        decode(&credential, &keys, t + 301, &policy),
        Err(MungeError::Expired)
    );
    assert_eq!(
        decode(&credential, &keys, t - 301, &policy),
        Err(MungeError::Rewound)
    );
    assert_eq!(
        decode(&credential, &keys, u64::MAX, &policy),
        Err(MungeError::Expired)
    );
    assert_eq!(
        decode(&credential, &keys, 0, &policy),
        Err(MungeError::Rewound)
    );

    let short = daemon.encode(&["-t", "1"], b"");
    let ours = decode(&short, &keys, t, &policy).unwrap();
    assert_eq!(ours.ttl_secs(), 1);
    std::thread::sleep(Duration::from_millis(2100));
    assert_both(&daemon, &short, 15, "ttl 1, 2 seconds later");

    let key_bytes = daemon.key_bytes();
    let now = now() as u32;
    let future = Spec::new(now + 1000);
    assert_both(
        &daemon,
        &future.forge(&key_bytes),
        16,
        "encoded 1000 s ahead, ttl 300",
    );
    let past = Spec::new(now - 1000);
    assert_both(
        &daemon,
        &past.forge(&key_bytes),
        15,
        "encoded 1000 s ago, ttl 300",
    );
    let long_ttl = Spec::new(now - 3000).with(|s| s.ttl = 100_000);
    let forged = long_ttl.forge(&key_bytes);
    let ours = native(&daemon, &forged, &policy).unwrap();
    assert_eq!(ours.ttl_secs(), 3600, "ttl capped at munged's maximum");
    assert_agree(
        &ours,
        &daemon.unmunge(forged.as_bytes()),
        "ttl 100000 capped",
    );
    let capped = DecodePolicy {
        max_ttl_secs: 60,
        ..own_policy()
    };
    assert_eq!(
        native(&daemon, &long_ttl.forge(&key_bytes), &capped),
        Err(MungeError::Expired)
    );
}

/// Authentic credentials with malformed insides, shown to munged and to the decoder. Where
/// munged is laxer or reports an internal error, the difference is asserted and explained.
#[test]
fn forged_credentials_agree_with_unmunge() {
    let daemon = Munged::start(&[]);
    let key = daemon.key_bytes();
    let base = Spec::new(now() as u32);

    let valid = [
        ("forged default", base.clone()),
        ("forged, no origin", base.with(|s| s.addr = vec![])),
        (
            "forged with a realm",
            base.with(|s| s.realm = b"hpc\0".to_vec()),
        ),
        (
            "forged blowfish/sha1/bzlib",
            base.with(|s| (s.cipher, s.mac, s.zip, s.payload) = (2, 3, 2, large_payload())),
        ),
        (
            "forged none/md5/zlib",
            base.with(|s| (s.cipher, s.mac, s.zip, s.payload) = (0, 2, 3, JSON.to_vec())),
        ),
    ];
    for (what, spec) in valid {
        let forged = spec.forge(&key);
        let ours =
            native(&daemon, &forged, &own_policy()).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(ours.payload(), spec.payload.as_slice(), "{what}");
        assert_eq!(
            ours.realm(),
            (!spec.realm.is_empty()).then_some(&spec.realm[..]),
            "{what}"
        );
        assert_agree(&ours, &daemon.unmunge(forged.as_bytes()), what);
    }

    // (what, spec, native error, unmunge's exit status). Where they differ the decoder is
    // stricter than munged 0.5.15, on credentials only a key holder can make:
    // - munged ignores bytes after the payload and a compressed stream shorter than stated;
    // - munged calls a bad compression header "Failed to decompress credential", an internal
    //   error (1), where the decoder says malformed (8), over the cap (3), or invalid (14);
    // - Debian's munge 0.5.15 reads at most 1 MiB of input, so unmunge fails (1) on a credential
    //   whose payload is over 1 MiB, which the decoder refuses as too long (3).
    let json = || JSON.to_vec();
    let refused = [
        ("addr_len 5", base.with(|s| s.addr = vec![1; 5]), 8, 8),
        ("addr_len 16", base.with(|s| s.addr = vec![1; 16]), 8, 8),
        (
            "addr_len 255, short",
            base.with(|s| s.addr_len = Some(255)),
            8,
            8,
        ),
        (
            "payload_len past the end",
            base.with(|s| (s.payload, s.payload_len) = (b"abc".to_vec(), Some(4))),
            8,
            8,
        ),
        (
            "payload_len u32::MAX",
            base.with(|s| s.payload_len = Some(u32::MAX)),
            8,
            8,
        ),
        (
            "bad padding, right MAC",
            base.with(|s| s.bad_padding = true),
            14,
            14,
        ),
        (
            "bad padding, blowfish",
            base.with(|s| (s.cipher, s.mac, s.bad_padding) = (2, 2, true)),
            14,
            14,
        ),
        (
            "zlib stream longer than stated",
            base.with(|s| (s.zip, s.zip_len, s.payload) = (3, Some(10), json())),
            14,
            14,
        ),
        (
            "trailing bytes",
            base.with(|s| s.trailing = vec![0; 3]),
            8,
            0,
        ),
        (
            "zlib stream shorter than stated",
            base.with(|s| (s.zip, s.zip_len, s.payload) = (3, Some(500), json())),
            14,
            0,
        ),
        (
            "bzlib stream shorter than stated",
            base.with(|s| (s.zip, s.zip_len, s.payload) = (2, Some(500), json())),
            14,
            0,
        ),
        (
            "zip bad magic",
            base.with(|s| (s.zip, s.zip_magic) = (3, 0xCACA_CACB)),
            8,
            1,
        ),
        (
            "zip stated length 0",
            base.with(|s| (s.zip, s.zip_len) = (3, Some(0))),
            14,
            1,
        ),
        (
            "zip stated length u32::MAX",
            base.with(|s| (s.zip, s.zip_len) = (3, Some(u32::MAX))),
            3,
            1,
        ),
        (
            "payload over 1 MiB",
            base.with(|s| (s.cipher, s.payload) = (0, vec![b'p'; 1024 * 1024 + 1])),
            3,
            1,
        ),
    ];
    for (what, spec, ours_expected, theirs_expected) in refused {
        let forged = spec.forge(&key);
        let ours = code(&native(&daemon, &forged, &own_policy()));
        let theirs = daemon.unmunge(forged.as_bytes());
        assert_eq!(
            (ours, theirs.status),
            (ours_expected, theirs_expected),
            "{what}: native {ours}, unmunge {} ({})",
            theirs.status,
            theirs.stderr.trim()
        );
    }

    let largest = base.with(|s| (s.cipher, s.payload) = (0, vec![b'p'; 1024 * 1024]));
    let ours = native(&daemon, &largest.forge(&key), &own_policy()).unwrap();
    assert_eq!(
        ours.payload().len(),
        1024 * 1024,
        "a payload of exactly 1 MiB decodes"
    );
}

/// A bounded mutation fuzzer on stable Rust: mutates real credentials (as text and as bytes) and
/// random inputs, and checks that `decode` never panics and never accepts changed bytes.
#[test]
fn mutation_fuzz_never_panics_or_forges() {
    let daemon = Munged::start(&[]);
    let key = daemon.key();
    let keys = [("cluster", &key)];
    let policy = own_policy();
    let mut seeds = Vec::new();
    for (cipher, mac, zip) in [
        ("aes128", "sha256", "none"),
        ("blowfish", "md5", "zlib"),
        ("none", "sha512", "bzlib"),
        ("cast5", "ripemd160", "zlib"),
        ("aes256", "sha512", "bzlib"),
    ] {
        for payload in [&b""[..], JSON, &b"x".repeat(600)] {
            let credential = daemon.encode(&["-c", cipher, "-m", mac, "-z", zip], payload);
            seeds.push((credential.trim().to_owned(), unarmor(&credential)));
        }
    }
    let now = now();
    let iterations = std::env::var("MUNGE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50_000_u64);
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut rng = Rng::new(0xF022_0001);
    let mut accepted = 0;
    let mut ran = 0;
    while ran < iterations && Instant::now() < deadline {
        ran += 1;
        let (text, bytes) = &seeds[rng.below(seeds.len())];
        if rng.below(4) == 0 {
            let mut chars = text.clone().into_bytes();
            mutate(&mut rng, &mut chars);
            let input = String::from_utf8_lossy(&chars);
            if decode(&input, &keys, now, &policy).is_ok() {
                accepted += 1;
            }
        } else {
            let mut mutated = bytes.clone();
            mutate(&mut rng, &mut mutated);
            let result = decode(&armor(&mutated), &keys, now, &policy);
            assert!(
                result.is_err() || &mutated == bytes,
                "accepted changed bytes: {}",
                armor(&mutated)
            );
        }
    }
    println!("mutation fuzz: {ran} inputs, {accepted} text mutations still decoded");
    assert!(
        ran >= iterations.min(1000),
        "ran {ran} inputs before the deadline"
    );
}

/// One to four random edits: flip, set, insert, delete, truncate, or duplicate a range.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    const INTERESTING: [u8; 8] = [0, 1, 3, 4, 0x7F, 0x80, 0xCA, 0xFF];
    for _ in 0..=rng.below(4) {
        let len = data.len();
        match rng.below(6) {
            0 if len > 0 => {
                let at = rng.below(len);
                data[at] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                data[at] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let at = rng.below(len + 1);
                data.insert(at, rng.next_u64() as u8);
            }
            3 if len > 0 => {
                data.remove(rng.below(len));
            }
            4 => data.truncate(rng.below(len + 1)),
            _ if len > 0 => {
                let start = rng.below(len);
                let end = start + rng.below(len - start + 1);
                let copy = data[start..end].to_vec();
                let at = rng.below(data.len() + 1);
                data.splice(at..at, copy);
            }
            _ => data.push(rng.next_u64() as u8),
        }
    }
}
