#!/usr/bin/env bash
# Installs what pgo needs to run and test on a fresh Debian machine, and
# nothing that is already there: PostgreSQL's server and client, the
# `postgres` OS user (PostgreSQL refuses to run as root), cargo-nextest, and
# with --test what the tests use besides.
set -euo pipefail

missing=()
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
command -v psql >/dev/null 2>&1 || missing+=(postgresql-client)
# WAL archiving and backups (every cluster has a repository by default).
command -v pgbackrest >/dev/null 2>&1 || missing+=(pgbackrest)
# The metrics exporter beside each instance of a cluster made with --metrics.
command -v prometheus-postgres-exporter >/dev/null 2>&1 || missing+=(prometheus-postgres-exporter)
if [ "${1:-}" = "--test" ]; then
  # The terminal tests: openssl s_client, and util-linux's script for a TTY.
  command -v openssl >/dev/null 2>&1 || missing+=(openssl)
  command -v script >/dev/null 2>&1 || missing+=(bsdutils)
  # Storage that freezes for real: a loop-mounted ext4 and fsfreeze; prlimit
  # for a server with few descriptors.
  command -v mkfs.ext4 >/dev/null 2>&1 || missing+=(e2fsprogs)
  command -v fsfreeze >/dev/null 2>&1 || missing+=(util-linux)
  command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
  command -v losetup >/dev/null 2>&1 || missing+=(mount)
  # The stand-in kubelet that runs pods for real: network namespaces and
  # a bridge (ip), mount namespaces and identities (unshare, setpriv),
  # and its HTTP probes (curl).
  command -v ip >/dev/null 2>&1 || missing+=(iproute2)
  command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
  command -v setpriv >/dev/null 2>&1 || missing+=(util-linux)
  command -v curl >/dev/null 2>&1 || missing+=(curl)
  # A pod's uid that no passwd entry names (OpenShift's): initdb runs
  # under nss_wrapper, as the instance image has it.
  ls /usr/lib/*/libnss_wrapper.so >/dev/null 2>&1 || missing+=(libnss-wrapper)
fi
if ((${#missing[@]})); then
  if [ "$(id -u)" != 0 ]; then
    echo "deps: missing ${missing[*]}: run 'sudo apt-get install -y ${missing[*]}'" >&2
    exit 1
  fi
  echo "deps: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  echo "deps: adding the postgres OS user"
  useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi
if [ "${1:-}" = "--test" ] && ! python3 -c 'import kubernetes_validate' >/dev/null 2>&1; then
  echo "deps: installing kubernetes-validate"
  # A Debian-managed Python refuses plain installs (PEP 668).
  python3 -m pip install --quiet kubernetes-validate 2>/dev/null \
    || python3 -m pip install --quiet --break-system-packages kubernetes-validate
fi
if [ "${1:-}" = "--test" ] && ! cargo nextest --version >/dev/null 2>&1; then
  echo "deps: installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
