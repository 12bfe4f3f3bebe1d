//! One raw ES256 signature's CPU time, sampled while a load run goes on beside it.
//! `scripts/bench.sh` starts it on the server's CPU for the length of each run, so the unit that
//! run's server CPU per request is divided by is measured over the same seconds. This machine's
//! speed drifts with its neighbours' load: one signature took 22–52 µs in successive 2-second
//! windows of one quiet process, so a unit measured before and after a run can be far from the
//! speed the run had.
//!
//! Usage: `signature_probe SECONDS`. Every [`INTERVAL`] it makes [`WARM_UP`] signatures, then
//! times [`TIMED`] more with the thread's CPU clock (time on the CPU only: being preempted by the
//! server does not count, as it does not in the server's own CPU time), the same signature as
//! criterion's `es256/raw_signature`: aws-lc-rs, key parsed once, a push token's signing input,
//! warm caches. At the end it prints the median sample (µs per signature) and the samples' range.
//! The median, not the mean: a rare stall of the host (one sample of 40 signatures at 224 µs each,
//! against ~35 µs for the others) would move the mean by several µs, while the same stall costs
//! a 10-second run of the server almost nothing. The load it adds is ~1% of one CPU.

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use portcullis::keys::SigningKey;
use portcullis::names::RealmName;

#[path = "../benches/push_token.rs"]
mod push_token;

/// How often a sample is taken.
const INTERVAL: Duration = Duration::from_millis(200);
/// Signatures made before each sample, not timed: the sample measures a warm signature.
const WARM_UP: u32 = 10;
/// Signatures made once at the start, not timed.
const FIRST_WARM_UP: u32 = 200;
/// Signatures timed in each sample.
const TIMED: u32 = 40;

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .filter(|seconds: &f64| seconds.is_finite() && *seconds > 0.0)
        .unwrap_or_else(|| {
            eprintln!("usage: signature_probe SECONDS");
            std::process::exit(2);
        });
    let dir = tempfile::tempdir().expect("temporary directory");
    let realm = RealmName::parse("bench").expect("realm name");
    let keys = SigningKey::load_or_create(dir.path(), &realm).expect("realm keys");
    let input = push_token::signing_input(&keys, 0);
    let rng = SystemRandom::new();
    let sign = || {
        black_box(
            keys.signer()
                .sign(&rng, black_box(input.as_bytes()))
                .expect("signature"),
        );
    };
    // The first signatures of a process pay for its lazy set-up (page faults, tables).
    (0..FIRST_WARM_UP).for_each(|_| sign());

    let end = Instant::now() + Duration::from_secs_f64(seconds);
    let mut samples = Vec::new();
    while samples.is_empty() || Instant::now() < end {
        (0..WARM_UP).for_each(|_| sign());
        let start = thread_cpu_time();
        (0..TIMED).for_each(|_| sign());
        samples.push((thread_cpu_time() - start).as_secs_f64() * 1e6 / f64::from(TIMED));
        std::thread::sleep(INTERVAL);
    }
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    println!(
        "signature_us={median:.2} samples={} low_us={:.2} high_us={:.2}",
        samples.len(),
        samples[0],
        samples[samples.len() - 1]
    );
}

/// The CPU time this thread has used.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid timespec for the call to fill; the clock exists on every Linux.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    assert_eq!(status, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}
