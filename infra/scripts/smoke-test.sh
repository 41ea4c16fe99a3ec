#!/usr/bin/env bash
# Smoke test of a deployed app: GET /api/runs/{date} must answer 200 (a report) or 404 (none),
# with a JSON body. Retries while the app starts.
#
#   infra/scripts/smoke-test.sh <resource-group> <function-app> [date]
#
# The function key is fetched here, masked in the GitHub log, and sent in a header, never in the
# URL. Date defaults to yesterday (UTC). SMOKE_BASE_URL replaces https://<default host name>
# (for a local run against `func start`); SMOKE_ATTEMPTS sets the retries (default 20, 15 s apart).
set -euo pipefail

rg="${1:?resource group}"
app="${2:?function app name}"
date="${3:-$(date -u -d yesterday +%Y-%m-%d)}"
attempts="${SMOKE_ATTEMPTS:-20}"

host="$(az functionapp show -g "$rg" -n "$app" --query defaultHostName -o tsv)"
key="$(az functionapp function keys list -g "$rg" -n "$app" --function-name RunStatusFunction --query default -o tsv)"
if [ -z "$key" ]; then
  echo "::error::no function key for RunStatusFunction on $app"
  exit 1
fi
# Never printed: GitHub replaces it with *** in every later line of the log.
echo "::add-mask::$key"

url="${SMOKE_BASE_URL:-https://${host}}/api/runs/${date}"
body="$(mktemp)"
trap 'rm -f "$body"' EXIT
for i in $(seq 1 "$attempts"); do
  read -r status ctype < <(curl -sS -o "$body" -w '%{http_code} %{content_type}\n' \
    -H "x-functions-key: ${key}" --max-time 60 "$url" || echo "000 none")
  echo "attempt $i: GET $url -> $status (${ctype:-no content type})"
  if [ "$status" = 200 ] || [ "$status" = 404 ]; then
    if [[ "$ctype" == application/json* ]] && jq -e . "$body" >/dev/null 2>&1; then
      echo "smoke test passed: $status with a JSON body"
      head -c 600 "$body"; echo
      exit 0
    fi
    # A 404 without JSON is the host itself (function not loaded yet), not RunStatusFunction.
    echo "  $status without a JSON body: not RunStatusFunction's answer yet"
  fi
  [ "$i" -lt "$attempts" ] && sleep "${SMOKE_SLEEP:-15}"
done
echo "::error::GET /api/runs/${date} never answered 200 or 404 with a JSON body after $attempts attempts (last: $status)"
head -c 600 "$body"; echo
exit 1
