#!/usr/bin/env bash
# After a zip deployment: make the platform re-read the functions, then wait until every function
# of the app is listed (a green deployment can otherwise serve nothing for a while).
#
#   infra/scripts/sync-and-wait.sh <resource-group> <function-app> [timeout-seconds]
#
# Needs an `az login` with rights on the app (deploy.yml uses the OIDC login).
set -euo pipefail

rg="${1:?resource group}"
app="${2:?function app name}"
timeout="${3:-300}"
expected=(IngestFunction ReingestFunction IngestDateFunction RunStatusFunction SweepFunction OverviewFunction)

site_id="$(az functionapp show -g "$rg" -n "$app" --query id -o tsv)"
az rest --method post --url "https://management.azure.com${site_id}/syncfunctiontriggers?api-version=2024-04-01" -o none \
  || echo "::warning::syncfunctiontriggers failed; waiting for the functions anyway"

deadline=$((SECONDS + timeout))
while :; do
  listed="$(az functionapp function list -g "$rg" -n "$app" --query '[].name' -o tsv 2>/dev/null || true)"
  missing=()
  for fn in "${expected[@]}"; do
    # Names are listed as "<app>/<function>".
    grep -qE "(^|/)${fn}$" <<<"$listed" || missing+=("$fn")
  done
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "all ${#expected[@]} functions are listed on $app"
    exit 0
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    echo "::error::functions still missing on $app after ${timeout}s: ${missing[*]}"
    exit 1
  fi
  echo "waiting for: ${missing[*]}"
  sleep 10
done
