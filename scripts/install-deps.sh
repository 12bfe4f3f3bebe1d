#!/usr/bin/env bash
# Installs the external programs that Portcullis's integration tests and load benchmark drive:
# docker-registry, skopeo, podman, containerd/ctr, munge, PostgreSQL, wrk, htpasswd and python3
# (scripts/bench.sh mints MUNGE credentials with it), from Debian's packages. Idempotent: does
# nothing when every command is already present. Never starts the packages' services: the tests
# start their own throwaway instances (see tests/common/external.rs, scripts/pg.sh).
set -euo pipefail

PACKAGES=(docker-registry skopeo podman containerd munge postgresql wrk apache2-utils python3)
COMMANDS=(docker-registry skopeo podman containerd ctr munge munged mungekey unmunge wrk htpasswd python3)

missing=()
for cmd in "${COMMANDS[@]}"; do
    # munged and mungekey live in /usr/sbin, which a non-root PATH may lack.
    if ! command -v "$cmd" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$cmd" ]]; then
        missing+=("$cmd")
    fi
done
if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    missing+=(initdb)
fi

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-deps: all external test programs present"
    exit 0
fi
echo "install-deps: missing ${missing[*]}; installing ${PACKAGES[*]}"

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo)
fi

# Keep the packages' postinst scripts from starting their services
# (invoke-rc.d honours policy-rc.d exit status 101 = "action forbidden").
policy=/usr/sbin/policy-rc.d
added_policy=false
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod 0755 "$policy"
    added_policy=true
fi
remove_policy() {
    if [[ $added_policy == true ]]; then
        "${sudo[@]}" rm -f "$policy"
    fi
}
trap remove_policy EXIT

"${sudo[@]}" apt-get update
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${PACKAGES[@]}"
