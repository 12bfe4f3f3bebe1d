#!/usr/bin/env bash
# Installs the external programs that Portcullis's integration tests and load benchmark drive:
# docker-registry, skopeo, podman, containerd/ctr, munge, PostgreSQL, wrk, htpasswd and python3
# (scripts/bench.sh mints MUNGE credentials with it; tests/common/https.rs serves HTTPS with it),
# OpenLDAP's slapd, slapadd and ldap-utils, and openssl (the LDAP and HTTPS tests' certificates),
# from Debian's packages; for the container and deployment checks (scripts/container-test.sh,
# scripts/deploy-check.sh) debootstrap, runc, curl, systemd-analyze and kill, and
# kubernetes-validate from PyPI; Node.js and npm, and from npm the OpenID provider the
# workload-identity tests start (oidc-provider, pinned by
# tests/common/oidc/package-lock.json, installed into tests/common/oidc/node_modules). Idempotent:
# does nothing when every command is already present. Never starts the packages' services: the tests start their own
# throwaway instances (see tests/common/external.rs, scripts/pg.sh).
set -euo pipefail

# Each command the tests run, and the Debian package that has it. Only the packages of missing
# commands are installed, so packages already there (a Node.js from elsewhere, say) are left alone.
declare -A PACKAGE_OF=(
    [docker-registry]=docker-registry [skopeo]=skopeo [podman]=podman [containerd]=containerd
    [ctr]=containerd [munge]=munge [munged]=munge [mungekey]=munge [unmunge]=munge [wrk]=wrk
    [htpasswd]=apache2-utils [python3]=python3 [debootstrap]=debootstrap [runc]=runc [curl]=curl
    [systemd-analyze]=systemd [slapd]=slapd [slapadd]=slapd [ldapsearch]=ldap-utils
    [ldapwhoami]=ldap-utils [ldapmodify]=ldap-utils [openssl]=openssl [node]=nodejs [npm]=npm
    [chromium]=chromium [chromedriver]=chromium-driver [kill]=procps [initdb]=postgresql
    [pip3]=python3-pip
)
COMMANDS=("${!PACKAGE_OF[@]}")
# The workload-identity tests' OpenID provider (tests/common/oidc.rs runs it with node).
OIDC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/tests/common/oidc"

# oidc-provider from the npm registry, exactly the versions package-lock.json pins.
install_oidc_provider() {
    if [[ ! -d $OIDC_DIR/node_modules/oidc-provider ]]; then
        echo "install-deps: installing oidc-provider into $OIDC_DIR/node_modules"
        npm ci --prefix "$OIDC_DIR" --no-audit --no-fund
    fi
}
# The Kubernetes manifests' validator (scripts/deploy-check.sh), from PyPI: Debian has no package.
PIP_PACKAGE=kubernetes-validate

missing=()
for cmd in "${COMMANDS[@]}"; do
    case $cmd in
        # `kill` is also a shell builtin: the unit check needs the program.
        kill) type -P kill >/dev/null && continue ;;
        initdb) compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && continue ;;
        # munged, mungekey, slapd and slapadd live in /usr/sbin, which a non-root PATH may lack.
        *) { command -v "$cmd" >/dev/null 2>&1 || [[ -x "/usr/sbin/$cmd" ]]; } && continue ;;
    esac
    missing+=("$cmd")
done

if ! command -v "$PIP_PACKAGE" >/dev/null 2>&1; then
    pip_missing=true
else
    pip_missing=false
fi

if [[ ${#missing[@]} -eq 0 && $pip_missing == false ]]; then
    echo "install-deps: all external test programs present"
    install_oidc_provider
    exit 0
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
    sudo=(sudo)
fi

if [[ ${#missing[@]} -gt 0 ]]; then
    packages=()
    for cmd in "${missing[@]}"; do
        packages+=("${PACKAGE_OF[$cmd]}")
    done
    mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
    echo "install-deps: missing ${missing[*]}; installing ${packages[*]}"
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
        apt-get install -y --no-install-recommends "${packages[@]}"
fi

if [[ $pip_missing == true ]]; then
    echo "install-deps: installing $PIP_PACKAGE from PyPI"
    # Debian's own python3 refuses pip installs outside a virtual environment (PEP 668); this
    # validator is the only package installed so, for the checks.
    python3 -m pip install --quiet "$PIP_PACKAGE" 2>/dev/null ||
        "${sudo[@]}" python3 -m pip install --quiet --break-system-packages "$PIP_PACKAGE"
fi

install_oidc_provider
