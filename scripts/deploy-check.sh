#!/usr/bin/env bash
# Checks the deployment files offline: the Kubernetes manifests under deploy/kubernetes/ against
# the API schemas that kubernetes-validate bundles (strict: an unknown field fails), and the systemd
# unit with `systemd-analyze verify` in a scratch root holding the system's units, the release
# binary and `kill` (verify checks that each command exists). Any warning fails the check.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

UNIT=deploy/systemd/portcullis.service

fail() {
    printf 'deploy-check: FAILED: %s\n' "$*" >&2
    exit 1
}

manifests=(deploy/kubernetes/*/*.yaml)
out=$(kubernetes-validate --strict --quiet "${manifests[@]}" 2>&1) ||
    fail "kubernetes-validate: $out"
[[ -z $out ]] || fail "kubernetes-validate warned: $out"
echo "deploy-check: ${#manifests[@]} Kubernetes manifests valid"

cargo build --release --locked --bin portcullis
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/lib/systemd" "$root/usr/local/bin" "$root/usr/bin" "$root/etc/systemd/system"
cp -r /usr/lib/systemd/system "$root/usr/lib/systemd/"
cp target/release/portcullis "$root/usr/local/bin/portcullis"
cp "$(type -P kill)" "$root/usr/bin/kill"
cp "$UNIT" "$root/etc/systemd/system/"
out=$(systemd-analyze verify --root="$root" "$(basename "$UNIT")" 2>&1) ||
    fail "systemd-analyze verify: $out"
[[ -z $out ]] || fail "systemd-analyze verify warned: $out"
echo "deploy-check: $UNIT verified"
