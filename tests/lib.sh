# Shared by tests/sdk/run.sh and tests/contract/run.sh (sourced, not run):
# a scratch directory and cleanup, the walletd binary under test, a fresh
# PostgreSQL database, and a `walletd serve` started on a free port.
#
# Expects: $root (the repository), set -euo pipefail.
# Environment: TEST_DATABASE_URL, CARGO_TARGET_DIR, WALLETD_CI_CACHE,
# WALLETD_BIN.

cache=${WALLETD_CI_CACHE:-${HOME:-/tmp}/.cache/walletd-ci}
admin_url=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
t0=$(date +%s)
elapsed() { echo "$(($(date +%s) - t0)) s"; }
mkdir -p "$cache"
work=$(mktemp -d)

server_pid=
pg_db=
cleanup() {
  stop_walletd
  drop_pg_db
  rm -rf "$work"
}
trap cleanup EXIT

hex() { od -An -tx1 -N"$1" /dev/urandom | tr -d ' \n'; }

# The debug binary as `cargo test` builds it (with the dev-dependencies'
# features): a no-op after the test step, where `cargo build` would rebuild
# much of the dependency tree with other features. WALLETD_BIN names another
# binary to test instead. Sets $walletd.
find_walletd() {
  if [ -n "${WALLETD_BIN:-}" ]; then
    walletd=$WALLETD_BIN
  elif cargo test --locked --no-run --test api >"$work/build.log" 2>&1; then
    walletd=${CARGO_TARGET_DIR:-$root/target}/debug/walletd
  else
    cat "$work/build.log" >&2
    exit 1
  fi
}

# A fresh, randomly named database next to TEST_DATABASE_URL's; sets $pg_db
# and exports DATABASE_URL.
new_pg_db() {
  pg_db="walletd_$1_$(hex 8)"
  psql "$admin_url" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $pg_db" >/dev/null
  local url="${admin_url%%\?*}"
  export DATABASE_URL="${url%/*}/$pg_db"
}

drop_pg_db() {
  if [ -n "$pg_db" ]; then
    psql "$admin_url" -q -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null || true
    pg_db=
  fi
}

# Starts `walletd serve` with the caller's environment (WALLETD_BIND must be
# 127.0.0.1:0), logging to $1; sets $server_pid and $url, or fails with the log.
start_walletd() {
  local log=$1
  "$walletd" serve >"$log" 2>&1 &
  server_pid=$!
  url=
  for _ in $(seq 1 300); do
    url=$(sed -n 's/^walletd listening on \(http:[^ ]*\)$/\1/p' "$log")
    [ -n "$url" ] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "FAIL: walletd serve did not start" >&2
    cat "$log" >&2
    exit 1
  fi
}

stop_walletd() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
