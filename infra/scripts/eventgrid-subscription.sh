#!/usr/bin/env bash
# Step 2 of the infrastructure: create or update the Event Grid subscription that delivers
# eot_*.txt uploads to IngestFunction (infra/eventgrid.bicep). Run it after the code is deployed:
# Event Grid validates the webhook, and only a running IngestFunction answers. Idempotent.
#
#   infra/scripts/eventgrid-subscription.sh <resource-group> <function-app>
#
# The storage account, landing container and system topic are read from the app's settings and
# the resource group, so nothing else has to be configured.
set -euo pipefail

rg="${1:?resource group}"
app="${2:?function app name}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

setting() {
  az functionapp config appsettings list -g "$rg" -n "$app" --query "[?name=='$1'].value | [0]" -o tsv
}

account="$(setting INGEST_STORAGE_ACCOUNT)"
container="$(setting INGEST_CONTAINER)"
storage_id="$(az storage account show -g "$rg" -n "$account" --query id -o tsv)"
# The system topic whose source is that account (ids compared without regard to case: ARM
# does not keep the casing of resource group names consistently).
topic=""
while read -r name source; do
  if [ "${source,,}" = "${storage_id,,}" ]; then topic="$name"; fi
done < <(az eventgrid system-topic list -g "$rg" --query "[].[name, source]" -o tsv)
if [ -z "$account" ] || [ -z "$container" ] || [ -z "$topic" ]; then
  echo "::error::could not find the storage account, landing container or system topic of $app in $rg (deploy infra/main.bicep first)"
  exit 1
fi
echo "subscribing $app/IngestFunction to BlobCreated eot_*.txt in $account/$container via $topic"

# The blobs extension key is read inside the deployment (listKeys); nothing secret passes here.
az deployment group create -g "$rg" \
  --name "eventgrid-$(date -u +%Y%m%d%H%M%S)" \
  --template-file "$here/../eventgrid.bicep" \
  --parameters functionAppName="$app" systemTopicName="$topic" \
               storageAccountName="$account" landingContainerName="$container" \
  --query properties.outputs -o json
