#!/usr/bin/env bash
# Sila's own SDKs against a real `walletd serve` (issue 10): the Python SDK
# (silasdk 1.1.3, in a virtualenv) and the Node SDK (sila-sdk 0.2.28, npm)
# each run the whole flow in tests/sdk/*_flow.*, against SQLite and against
# a fresh PostgreSQL database that is dropped afterwards. Fails if any flow
# fails.
#
# The installs are cached under $WALLETD_CI_CACHE (default
# $HOME/.cache/walletd-ci), keyed by SDK version, the pinned dependency
# list and the interpreter version; a cache entry counts only once its
# install has finished. The server is the debug binary `cargo test` has
# already built.
#
# Environment: TEST_DATABASE_URL (PostgreSQL admin URL, default
# postgres://postgres@127.0.0.1:5432/postgres), CARGO_TARGET_DIR,
# WALLETD_CI_CACHE, WALLETD_BIN (a walletd binary to test instead of building).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
sdk=$root/tests/sdk
PY_SDK=1.1.3
NODE_SDK=0.2.28
. "$root/tests/lib.sh"

short_hash() { sha256sum "$@" | sha256sum | cut -c1-12; }

# ---- the SDKs (cached) ----
py_version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=$cache/silasdk-$PY_SDK-py$py_version-$(short_hash "$sdk/requirements.txt")
node_major=$(node -p 'process.versions.node.split(".")[0]')
node_dir=$cache/sila-sdk-$NODE_SDK-node$node_major-$(short_hash "$sdk/package.json" "$sdk/package-lock.json")

install_python() {
  if [ -f "$venv/.installed" ] && "$venv/bin/python" -c 'import silasdk' 2>/dev/null; then
    echo "python sdk: cached ($venv)"
    return
  fi
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$sdk/requirements.txt"
  touch "$venv/.installed"
  echo "python sdk: installed silasdk $PY_SDK ($(elapsed))"
}

install_node() {
  if [ -f "$node_dir/.installed" ] && [ -d "$node_dir/node_modules/sila-sdk" ]; then
    echo "node sdk: cached ($node_dir)"
    return
  fi
  rm -rf "$node_dir"
  mkdir -p "$node_dir"
  cp "$sdk/package.json" "$sdk/package-lock.json" "$node_dir/"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  touch "$node_dir/.installed"
  echo "node sdk: installed sila-sdk $NODE_SDK ($(elapsed))"
}

install_python >"$work/install-python.log" 2>&1 &
py_install=$!
install_node >"$work/install-node.log" 2>&1 &
node_install=$!
install_failed=0
wait "$py_install" || install_failed=1
cat "$work/install-python.log"
wait "$node_install" || install_failed=1
cat "$work/install-node.log"
if [ "$install_failed" -ne 0 ]; then
  echo "FAIL: installing the SDKs failed" >&2
  exit 1
fi
export NODE_PATH=$node_dir/node_modules
py() { "$venv/bin/python" "$sdk/python_flow.py" "$@"; }
nd() { node "$sdk/node_flow.js" "$@"; }

# ---- the server binary ----
find_walletd
echo "walletd: $walletd ($(elapsed))"

# ---- one backend: register the apps, serve, run both flows ----
passed=0
failed=0
run_backend() {
  local backend=$1
  case $backend in
    sqlite) export DATABASE_URL="sqlite://$work/$backend.db" ;;
    postgres) new_pg_db sdk ;;
  esac
  WALLETD_MASTER_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
  export WALLETD_MASTER_KEY
  # Only Sila endpoints are driven: no server-wallet keys are needed, so no
  # key pools burn the shared CPU.
  # A 1 s whitelist delay: the flows move money right after KYC.
  export WALLETD_WHITELIST_DELAY=1
  export WALLETD_BIND=127.0.0.1:0 WALLETD_KYC_MODE=sandbox WALLETD_SERVER_WALLET_CUSTODY=local \
    WALLETD_KEY_POOL=0 WALLETD_MPC_KEY_POOL=0 WALLETD_WORKERS=2 RUST_LOG=warn

  local py_key py_address node_key node_address
  read -r py_key py_address < <(py keygen | sed -n 's/^app-key //p')
  read -r node_key node_address < <(nd keygen | sed -n 's/^app-key //p')
  local handle address
  for handle in python-sdk.app node-sdk.app; do
    address=$py_address
    [ "$handle" = node-sdk.app ] && address=$node_address
    if ! "$walletd" app register --handle "$handle" --address "$address" >"$work/app.log" 2>&1; then
      echo "FAIL: walletd app register $handle ($backend)" >&2
      cat "$work/app.log" >&2
      exit 1
    fi
  done

  local log=$work/serve-$backend.log
  start_walletd "$log"
  echo "walletd serve on $backend at $url ($(elapsed))"

  local flow
  for flow in python node; do
    local ok=0
    if [ "$flow" = python ]; then
      WALLETD_URL=$url SILA_APP_HANDLE=python-sdk.app SILA_APP_KEY=$py_key timeout 90 \
        "$venv/bin/python" "$sdk/python_flow.py" run && ok=1
    else
      WALLETD_URL=$url SILA_APP_HANDLE=node-sdk.app SILA_APP_KEY=$node_key timeout 90 \
        node "$sdk/node_flow.js" run && ok=1
    fi
    if [ "$ok" -eq 1 ]; then
      passed=$((passed + 1))
      echo "PASS: $flow sdk flow on $backend ($(elapsed))"
    else
      failed=$((failed + 1))
      echo "FAIL: $flow sdk flow on $backend; server log:" >&2
      tail -n 40 "$log" >&2
    fi
  done

  stop_walletd
  drop_pg_db
}

run_backend sqlite
run_backend postgres

echo "sila sdk flows: $(elapsed) in all"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
