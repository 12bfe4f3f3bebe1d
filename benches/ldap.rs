//! Directory logins end to end: a `portcullis serve` process and a private slapd (the test
//! harness, `tests/common/slapd.rs`), token requests over loopback HTTP. Warm: the same user and
//! password again, answered by the verified-credential cache (no bind, no argon2). Cold: the
//! cache off (`passwords.cache_ttl_secs = 0`), so a directory login searches, binds and reads
//! groups every time, and a local login runs argon2 every time. After criterion's latencies it
//! prints the server's CPU per login (utime + stime from /proc) for each path, and the CPU model.
//!
//!   cargo bench --bench ldap

use std::time::Instant;

use criterion::{criterion_group, criterion_main, Criterion};

#[path = "../tests/common/mod.rs"]
pub mod common;

use common::database::Db;
use common::external::{describe, run_with_stdin};
use common::portcullis::{env, Portcullis, BIN};
use common::slapd::Slapd;

/// Logins per path in the CPU table (CPU time is read in clock ticks of 10 ms: 200 logins resolve
/// 50 µs per login).
const CPU_SAMPLE_LOGINS: u32 = 200;

/// A server whose default realm has `slapd` as directory corp and a local user `local` whose
/// hash has the default (OWASP) argon2 parameters: the test environment's cheap ones apply only
/// to the server's own new hashes.
fn server(slapd: &Slapd, settings: &str) -> Portcullis {
    let config = format!(
        "{settings}\n[[realms.default.ldap]]\nname = \"corp\"\nurl = \"{}\"\nbind_dn = \"{}\"\n\
         bind_password_file = \"{}\"\nuser_base = \"{}\"\ngroup_attribute = \"memberOf\"\n",
        slapd.ldap_url(),
        slapd.service_dn(),
        slapd.service_password_file().display(),
        slapd.people_dn(),
    );
    let portcullis = Portcullis::start_on(Db::Sqlite, &config);
    let env: Vec<(String, String)> = env(portcullis.dir.path(), portcullis.port)
        .into_iter()
        .filter(|(key, _)| !key.starts_with("PORTCULLIS__PASSWORDS__"))
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let added = run_with_stdin(
        BIN,
        &["user", "add", "local", "--password-stdin"],
        "local-pw\n",
        &env,
    );
    assert!(added.status.success(), "{}", describe(&added));
    portcullis
}

/// One token request with Basic credentials; panics unless granted.
async fn login(client: &reqwest::Client, url: &str, user: &str, password: &str) {
    let response = client
        .get(url)
        .basic_auth(user, Some(password))
        .send()
        .await
        .expect("an answer");
    assert_eq!(response.status(), 200, "{user}");
}

/// CPU seconds (user + system) the process `pid` has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..]
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf takes a plain integer.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown".into())
}

fn directory_logins(c: &mut Criterion) {
    let slapd = Slapd::start();
    let warm = server(&slapd, "");
    let cold = server(&slapd, "[passwords]\ncache_ttl_secs = 0\n");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // reqwest's rustls has no crypto provider of its own: this process's clients use aws-lc-rs, as
    // the server's issuer fetches do.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = reqwest::Client::new();
    let paths = [
        ("warm/directory", &warm, "alice", "alice-pw"),
        ("warm/local", &warm, "local", "local-pw"),
        ("cold/directory", &cold, "alice", "alice-pw"),
        ("cold/local_argon2", &cold, "local", "local-pw"),
    ];
    let mut group = c.benchmark_group("login");
    // Cold logins take tens of milliseconds: few samples, flat, within the measurement time.
    group
        .sample_size(10)
        .sampling_mode(criterion::SamplingMode::Flat);
    for (name, server, user, password) in paths {
        let url = server.token_url("");
        runtime.block_on(login(&client, &url, user, password));
        group.bench_function(name, |b| {
            b.iter(|| runtime.block_on(login(&client, &url, user, password)));
        });
    }
    group.finish();

    println!(
        "\nServer CPU per login ({CPU_SAMPLE_LOGINS} logins each), CPU: {}",
        cpu_model()
    );
    println!("| path | wall per login | server CPU per login |\n|---|---|---|");
    for (name, server, user, password) in paths {
        let url = server.token_url("");
        let cpu_before = cpu_secs(server.pid());
        let started = Instant::now();
        for _ in 0..CPU_SAMPLE_LOGINS {
            runtime.block_on(login(&client, &url, user, password));
        }
        let wall = started.elapsed().as_secs_f64() / f64::from(CPU_SAMPLE_LOGINS);
        let cpu = (cpu_secs(server.pid()) - cpu_before) / f64::from(CPU_SAMPLE_LOGINS);
        println!("| {name} | {:.2} ms | {:.2} ms |", wall * 1e3, cpu * 1e3);
    }
}

criterion_group!(benches, directory_logins);
criterion_main!(benches);
