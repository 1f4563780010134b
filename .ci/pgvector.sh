#!/usr/bin/env bash
# Install the pgvector extension into the local PostgreSQL (DESIGN.md "Getting pgvector on these
# machines"): Debian bookworm has no postgresql-15-pgvector, so build pgvector 0.8.0 from Debian
# trixie's own source package against postgresql-server-dev-<major>. Idempotent: does nothing when
# the extension is already installed. Never fatal: on failure it says so loudly and returns 0, and
# the suite then exercises the numpy vector path only.
set -uo pipefail

PGVECTOR_VERSION="0.8.0"
major="$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n1)"
if [[ -z "$major" ]]; then
    echo "!!! pgvector: no PostgreSQL server installed; skipping (numpy vector search only)"
    exit 0
fi
if [[ -f "/usr/share/postgresql/$major/extension/vector.control" ]]; then
    echo "==> pgvector: already installed for PostgreSQL $major"
    exit 0
fi

fail() {
    echo "!!! pgvector: $* -- the PostgreSQL suite will run the numpy vector path only" >&2
    exit 0
}

sudo=""
[[ "$(id -u)" == 0 ]] || sudo="sudo"
before="$(/usr/lib/postgresql/"$major"/bin/postgres --version 2>/dev/null)"

echo "==> pgvector: building $PGVECTOR_VERSION for PostgreSQL $major"
src_list=/etc/apt/sources.list.d/assistd-trixie-src.sources
if [[ ! -f "$src_list" ]]; then
    printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' |
        $sudo tee "$src_list" >/dev/null || fail "cannot write $src_list"
fi
$sudo apt-get update -qq || fail "apt-get update failed"
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "postgresql-server-dev-$major" make gcc >/dev/null ||
    fail "cannot install postgresql-server-dev-$major"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get source --download-only -qq "pgvector=$PGVECTOR_VERSION-*" >/dev/null 2>&1) ||
    (cd "$work" && apt-get source --download-only -qq pgvector >/dev/null 2>&1) ||
    fail "cannot download the pgvector source package"
orig="$(ls "$work"/pgvector_*.orig.tar.* 2>/dev/null | head -n1)"
[[ -n "$orig" ]] || fail "no pgvector orig tarball in the source package"
tar -xf "$orig" -C "$work" || fail "cannot unpack $orig"
dir="$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n1)"
# OPTFLAGS="": the default adds -march=native, which breaks on another CPU.
(cd "$dir" && make -s OPTFLAGS="" PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" >/dev/null &&
    $sudo make -s install PG_CONFIG="/usr/lib/postgresql/$major/bin/pg_config" >/dev/null) ||
    fail "build failed"

# Installing the dev package may have upgraded the server's minor version: restart onto it.
after="$(/usr/lib/postgresql/"$major"/bin/postgres --version 2>/dev/null)"
if [[ "$before" != "$after" ]]; then
    echo "==> pgvector: PostgreSQL was upgraded ($before -> $after); restarting the cluster"
    $sudo pg_ctlcluster --skip-systemctl-redirect "$major" main restart || true
    for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
echo "==> pgvector: installed $PGVECTOR_VERSION"
