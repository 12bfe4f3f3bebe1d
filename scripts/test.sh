#!/usr/bin/env bash
# The project's whole check, as CI runs it (.ci/run): installs the external
# programs the tests drive, starts a throwaway PostgreSQL for them (exported as
# PORTCULLIS_TEST_POSTGRES_URL, stopped on exit), then runs rustfmt, clippy and
# every test target, then the benchmarks in quick mode, then builds and runs the
# container image and checks the Kubernetes manifests and the systemd unit.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

stage() {
    printf '\n==> %s\n' "$*"
}

stage "install external test programs"
scripts/install-deps.sh

stage "check Rust components"
installed=$(rustup component list --installed)
for component in rustfmt clippy; do
    if ! grep -q "^$component" <<<"$installed"; then
        rustup component add "$component"
    fi
done

stage "start throwaway PostgreSQL"
work=$(mktemp -d)
chmod 0755 "$work" # the server runs as user postgres and must reach its dir
cleanup() {
    scripts/pg.sh stop "$work/pg" || true
    rm -rf "$work"
}
trap cleanup EXIT
PORTCULLIS_TEST_POSTGRES_URL=$(scripts/pg.sh start "$work/pg")
export PORTCULLIS_TEST_POSTGRES_URL
echo "PORTCULLIS_TEST_POSTGRES_URL=$PORTCULLIS_TEST_POSTGRES_URL"

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "cargo clippy"
cargo clippy --all-targets -- -D warnings

stage "cargo test"
# Unit, API, CLI, interop and MUNGE tests; the benches run below, in their quick mode.
cargo test --lib --bins --tests 2>&1 | tee "$work/test.log"

stage "benchmarks (quick mode: they must build and run; no timings are judged)"
cargo bench --bench policy --bench token --bench ldap --bench oidc -- --warm-up-time 0.1 --measurement-time 0.2 --noplot
scripts/bench.sh --quick

stage "container image, built and run with podman (offline)"
scripts/container-test.sh

stage "Kubernetes manifests and systemd unit"
scripts/deploy-check.sh

# One closing line for the whole suite, summed over every test binary.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' \
    "$work/test.log"
