#!/usr/bin/env bash
# Contract fuzzing (issue 12): schemathesis (PyPI) generates requests from
# walletd's own /openapi.json — valid ones with valid credentials, and
# invalid ones — against a real `walletd serve` on PostgreSQL, and fails on
# any 5xx, any answer whose status, content type or body the document does
# not allow. The run is bounded (CONTRACT_MAX_EXAMPLES cases per operation
# and phase, a fixed seed unless CONTRACT_SEED is set) and stops by itself.
#
# The install is cached under $WALLETD_CI_CACHE like the SDKs' (see
# tests/sdk/run.sh). Environment: TEST_DATABASE_URL, CARGO_TARGET_DIR,
# WALLETD_CI_CACHE, WALLETD_BIN, CONTRACT_MAX_EXAMPLES (default 60),
# CONTRACT_SEED (default 20261206).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
here=$root/tests/contract
max_examples=${CONTRACT_MAX_EXAMPLES:-60}
seed=${CONTRACT_SEED:-20261206}
. "$root/tests/lib.sh"

py_version=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=$cache/contract-py$py_version-$(sha256sum "$here/requirements.txt" | cut -c1-12)
if [ -f "$venv/.installed" ] && "$venv/bin/schemathesis" --version >/dev/null 2>&1; then
  echo "schemathesis: cached ($venv)"
else
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  touch "$venv/.installed"
  echo "schemathesis: installed ($(elapsed))"
fi

find_walletd
new_pg_db contract
export WALLETD_MASTER_KEY=$(hex 32)
export WALLETD_JWT_SECRET=$(hex 32)
export WALLETD_SILA_TOKEN_AUDIENCE=walletd-contract
export CONTRACT_API_KEY=wd_$(hex 32)
export WALLETD_API_KEYS=$CONTRACT_API_KEY
# Server wallets with local custody: the contract is the same for both kinds,
# and MPC key generation would spend the run's CPU on key pools.
export WALLETD_BIND=127.0.0.1:0 WALLETD_KYC_MODE=sandbox WALLETD_SERVER_WALLET_CUSTODY=local \
  WALLETD_KEY_POOL=16 WALLETD_WORKERS=2 WALLETD_CREATE_RATE_PER_MINUTE=100000 RUST_LOG=warn

app_key=0x$(hex 32)
app_address=$("$venv/bin/python" -c 'import sys; from eth_account import Account; print(Account.from_key(sys.argv[1]).address)' "$app_key")
export CONTRACT_SILA_APP_HANDLE=contract.app CONTRACT_SILA_APP_KEY=$app_key
"$walletd" app register --handle "$CONTRACT_SILA_APP_HANDLE" --address "$app_address" >"$work/app.log" 2>&1 || {
  cat "$work/app.log" >&2
  exit 1
}
token() { "$venv/bin/python" -c '
import sys, time, jwt
claims = {"sub": sys.argv[2], "exp": int(time.time()) + 3600}
if sys.argv[3]: claims["role"] = sys.argv[3]
if sys.argv[4]: claims["aud"] = sys.argv[4]; claims["app_handle"] = sys.argv[5]
print(jwt.encode(claims, sys.argv[1], algorithm="HS256"))' "$WALLETD_JWT_SECRET" "$@"; }
export CONTRACT_JWT=$(token contract-admin ADMIN "" "")
export CONTRACT_SILA_TOKEN=$(token contract.user "" "$WALLETD_SILA_TOKEN_AUDIENCE" "$CONTRACT_SILA_APP_HANDLE")
export CONTRACT_PLACEHOLDER_SIGNATURE=$(hex 65)

log=$work/serve.log
start_walletd "$log"
echo "walletd serve on postgres at $url ($(elapsed))"

status=0
# One worker: with two threads, Python 3.11's ast.parse (used by Hypothesis to
# describe strategies) intermittently fails with "AST constructor recursion
# depth mismatch", a CPython bug, not a finding.
# Run from the scratch dir: schemathesis keeps a cache where it runs.
(cd "$work" && SCHEMATHESIS_HOOKS=hooks PYTHONPATH=$here timeout 1200 \
  "$venv/bin/schemathesis" --no-color --config-file "$here/schemathesis.toml" run "$url/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing \
    --max-examples "$max_examples" --seed "$seed" --workers 1 \
    --request-timeout 30 --suppress-health-check all \
    --report junit,har --report-dir "${CONTRACT_REPORT_DIR:-$work/report}") || status=$?
echo "contract run: exit $status, $(elapsed) in all"
if [ "$status" -ne 0 ]; then
  echo "server log (last 40 lines):" >&2
  tail -n 40 "$log" >&2
fi
exit "$status"
