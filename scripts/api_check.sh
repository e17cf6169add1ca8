#!/usr/bin/env bash
# Checks the API against docs/openapi.yaml: validates the spec, starts the gateway in sandbox mode on a free
# loopback port, and fuzzes every operation with schemathesis (no 5xx, every response as the spec says).
#
# positive_data_acceptance is excluded on purpose: the gateway enforces rules a schema cannot express (tax-id
# check digits, Idempotency-Key reuse, state rules, credentials the provider refuses), so schema-valid requests
# are sometimes rightly refused with a 4xx that the spec documents. use_after_free is excluded because the contract
# keeps an offboarded tenant as a visible tombstone: GET after DELETE answers 200 with state "offboarded".
# ensure_resource_availability is excluded because a tenant's credentials exist only once it is active: the
# contract answers 404 credentials_not_available for GET .../credentials right after POST /v1/tenants.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m pip install -q --disable-pip-version-check schemathesis openapi-spec-validator
python3 - <<'PY'
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
spec, _ = read_from_filename("docs/openapi.yaml")
validate(spec)
print("docs/openapi.yaml is a valid OpenAPI", spec["openapi"], "document with", len(spec["paths"]), "paths")
PY
python3 scripts/spec_examples_check.py

swift build --product gateway
binary="$(swift build --show-bin-path)/gateway"
# The provider modules' own word (their schemas, helpers, ids) against the spec.
python3 scripts/providers_spec_check.py --binary "$binary"
data="$(mktemp -d)"
port="$(PYTHONPATH=scripts python3 -c 'from checklib import free_port; print(free_port())')"
# The fuzzer's ignored_auth check sends a wrong token to every operation: with the shipped limit of 5 wrong admin
# tokens per address, every admin operation after the fifth would only answer 429 and go untested. The throttle
# itself is tested in AdminThrottleTests.
GATEWAY_DATA_DIR="$data" GATEWAY_PORT="$port" GATEWAY_ADMIN_AUTH_FAILURES=1000000 LOG_LEVEL=warning "$binary" serve --sandbox > "$data/gateway.log" 2>&1 &
gateway=$!
trap 'kill $gateway 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/readyz" > /dev/null && break
    sleep 0.2
done
key=$(sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p' "$data/sandbox-secrets.json")
admin=$(sed -n 's/.*"admin_token":"\([^"]*\)".*/\1/p' "$data/sandbox-secrets.json")

# CI pins the seed so a submission is judged on known cases; run with SEED=<n> (any other) to explore new ones.
run() {
    schemathesis run docs/openapi.yaml --url "http://127.0.0.1:$port" --checks all --seed "${SEED:-20261121}" \
        --exclude-checks positive_data_acceptance,use_after_free,ensure_resource_availability --max-examples "${EXAMPLES:-50}" --no-color "$@"
}
echo "== partner and public operations"
run -H "Authorization: Bearer $key" --exclude-path-regex '^/(admin|sandbox)'
echo "== admin operations"
run -H "Authorization: Bearer $admin" --include-path-regex '^/admin'
# Last: the test helpers inject provider faults, which would change what the runs above see.
echo "== sandbox test helpers"
run --include-path-regex '^/sandbox'

if grep -E '"level":"(error|critical)"' "$data/gateway.log"; then
    echo "the gateway logged errors while being fuzzed" >&2
    exit 1
fi
