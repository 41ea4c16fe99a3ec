#!/usr/bin/env python3
"""Offline checks of the Bicep in infra/ (run by `make infra-check`).

The Bicep compiler cannot be installed on our build machines (it is a binary download, not a
registry package), so this parses every .bicep file with pycep-parser (PyPI) and checks what the
deployment depends on: the resource types and API versions, the Flex Consumption custom-handler
settings, identity-only storage access and its role assignments, the Event Grid filter and
webhook, and that the parameter files fit the template. Where `az bicep` is available (GitHub's
runners), `make infra-check AZ_BICEP=1` also runs the real compiler and linter.

Usage: check.py [--root DIR]   (DIR defaults to the folder holding this script)
Exit code 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from pycep import BicepParser

# Resource types and API versions this template was written against (checked against Microsoft's
# Flex Consumption samples and the ARM reference). Anything else is a typo or an unreviewed bump.
KNOWN_TYPES = {
    "Microsoft.Storage/storageAccounts": {"2023-05-01"},
    "Microsoft.Storage/storageAccounts/blobServices": {"2023-05-01"},
    "Microsoft.Storage/storageAccounts/blobServices/containers": {"2023-05-01"},
    "Microsoft.Storage/storageAccounts/queueServices": {"2023-05-01"},
    "Microsoft.Storage/storageAccounts/queueServices/queues": {"2023-05-01"},
    "Microsoft.OperationalInsights/workspaces": {"2023-09-01"},
    "Microsoft.Insights/components": {"2020-02-02"},
    "Microsoft.Web/serverfarms": {"2024-04-01"},
    "Microsoft.Web/sites": {"2024-04-01"},
    "Microsoft.Web/sites/host": {"2022-09-01"},
    "Microsoft.Authorization/roleAssignments": {"2022-04-01"},
    "Microsoft.EventGrid/systemTopics": {"2022-06-15"},
    "Microsoft.EventGrid/systemTopics/eventSubscriptions": {"2022-06-15"},
}

ROLE_IDS = {
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Account Contributor": "17d1049b-9a84-46fb-8f53-869881c3d3ab",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}

REQUIRED_APP_SETTINGS = {
    "AzureWebJobsStorage__accountName",
    "INGEST_CONTAINER",
    "INGEST_STORE",
    "INGEST_STORAGE_ACCOUNT",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}

# Anything that would put an account key or a key-based connection string in the app's settings.
FORBIDDEN_IN_SETTINGS = re.compile(r"AccountKey|listKeys|DefaultEndpointsProtocol|SharedAccessSignature", re.I)


class Checker:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.passes = 0

    def check(self, cond: bool, what: str) -> bool:
        if cond:
            self.passes += 1
            print(f"  ok    {what}")
        else:
            self.failures.append(what)
            print(f"  FAIL  {what}")
        return cond


def text(node: Any) -> str:
    return json.dumps(node, sort_keys=True)


def resources_of(tree: dict, rtype: str) -> dict[str, dict]:
    return {name: r for name, r in tree.get("resources", {}).items() if r.get("type") == rtype}


def one(tree: dict, rtype: str) -> dict:
    found = list(resources_of(tree, rtype).values())
    return found[0]["config"] if len(found) == 1 else {}


def param_default(tree: dict, name: str) -> Any:
    return tree.get("parameters", {}).get(name, {}).get("default")


def decorators(param: dict) -> dict[str, Any]:
    return {d["type"]: d.get("argument") for d in param.get("decorators", [])}


def check_main(c: Checker, tree: dict) -> None:
    print("main.bicep")
    params = tree["parameters"]
    c.check(decorators(params.get("envName", {})).get("allowed") == ["dev", "staging", "prod"],
            "parameter envName allows dev, staging, prod")
    for p in ("landingContainerName", "maximumInstanceCount"):
        c.check(p in params, f"parameter {p} exists")

    storage = one(tree, "Microsoft.Storage/storageAccounts")
    sprops = storage.get("properties", {})
    c.check(sprops.get("allowSharedKeyAccess") is False, "storage: shared key access disabled")
    c.check(sprops.get("allowBlobPublicAccess") is False, "storage: no public blob access")
    c.check(sprops.get("minimumTlsVersion") == "TLS1_2", "storage: TLS 1.2 minimum")

    containers = resources_of(tree, "Microsoft.Storage/storageAccounts/blobServices/containers")
    names = {r["config"].get("name") for r in containers.values()}
    c.check("landingContainerName" in names, "landing container named by parameter landingContainerName")
    c.check(any(isinstance(n, str) and n not in ("landingContainerName",) for n in names),
            "a deployment container for Flex Consumption")
    queues = resources_of(tree, "Microsoft.Storage/storageAccounts/queueServices/queues")
    c.check(param_default(tree, "reingestQueueName") == "reingest-dates"
            and any(r["config"].get("name") == "reingestQueueName" for r in queues.values()),
            "queue reingest-dates declared")

    plan = one(tree, "Microsoft.Web/serverfarms")
    c.check(plan.get("sku") == {"name": "FC1", "tier": "FlexConsumption"}, "plan: FC1 / FlexConsumption")
    c.check(plan.get("properties", {}).get("reserved") is True, "plan: Linux (reserved)")

    site = one(tree, "Microsoft.Web/sites")
    c.check(site.get("kind") == "functionapp,linux", "site: kind functionapp,linux")
    c.check(site.get("identity", {}).get("type") == "SystemAssigned", "site: system-assigned identity")
    fac = site.get("properties", {}).get("functionAppConfig", {})
    c.check(fac.get("runtime") == {"name": "custom", "version": "1.0"}, "site: runtime custom 1.0")
    scale = fac.get("scaleAndConcurrency", {})
    c.check(scale.get("instanceMemoryMB") == "instanceMemoryMB" and param_default(tree, "instanceMemoryMB") == 2048,
            "site: instance memory from parameter, default 2048")
    c.check(scale.get("maximumInstanceCount") == "maximumInstanceCount", "site: maximumInstanceCount from parameter")
    dep = fac.get("deployment", {}).get("storage", {})
    c.check(dep.get("type") == "blobContainer" and dep.get("authentication", {}).get("type") == "SystemAssignedIdentity",
            "site: deployment container read with the system identity")
    settings = site.get("properties", {}).get("siteConfig", {}).get("appSettings", [])
    setting_names = {s.get("name") for s in settings}
    missing = REQUIRED_APP_SETTINGS - setting_names
    c.check(not missing, "site: app settings " + (f"missing: {', '.join(sorted(missing))}" if missing else "all present"))
    c.check("AzureWebJobsStorage" not in setting_names, "site: no key-based AzureWebJobsStorage setting")
    c.check(not FORBIDDEN_IN_SETTINGS.search(text(settings)), "site: no account key or connection string in settings")
    store = next((s.get("value") for s in settings if s.get("name") == "INGEST_STORE"), None)
    c.check(store == "azure://${landingContainerName}", "site: INGEST_STORE=azure://<landing container>")
    c.check(next((s.get("value") for s in settings if s.get("name") == "INGEST_CONTAINER"), None) == "landingContainerName",
            "site: INGEST_CONTAINER is the landing container")
    c.check(not setting_names & {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"},
            "site: no FUNCTIONS_WORKER_RUNTIME / FUNCTIONS_EXTENSION_VERSION (not used on Flex)")

    roles_var = tree.get("variables", {}).get("roles", {}).get("value", {})
    assigned = set()
    for r in resources_of(tree, "Microsoft.Authorization/roleAssignments").values():
        cfg = r["config"]
        blob = text(cfg)
        if "functionApp" not in text(cfg.get("properties", {}).get("principalId")):
            continue
        for key, guid in roles_var.items():
            if f'"operand_2": "{key}"' in blob:
                assigned.add((guid, cfg.get("scope")))
    for role in ("Storage Blob Data Owner", "Storage Queue Data Contributor", "Storage Account Contributor"):
        c.check((ROLE_IDS[role], "storage") in assigned, f"role: {role} for the app on the storage account")
    c.check((ROLE_IDS["Monitoring Metrics Publisher"], "appInsights") in assigned,
            "role: Monitoring Metrics Publisher for the app on Application Insights")

    ai = one(tree, "Microsoft.Insights/components").get("properties", {})
    c.check(ai.get("DisableLocalAuth") is True, "app insights: local (key) auth disabled")
    c.check("logAnalytics" in text(ai.get("WorkspaceResourceId")), "app insights: workspace-based")

    topic = one(tree, "Microsoft.EventGrid/systemTopics").get("properties", {})
    c.check(topic.get("topicType") == "Microsoft.Storage.StorageAccounts" and "storage" in text(topic.get("source")),
            "system topic on the storage account")
    c.check(not FORBIDDEN_IN_SETTINGS.search(text(tree.get("outputs", {}))), "outputs: no keys")


def check_eventgrid(c: Checker, tree: dict) -> None:
    print("eventgrid.bicep")
    sub = one(tree, "Microsoft.EventGrid/systemTopics/eventSubscriptions").get("properties", {})
    flt = sub.get("filter", {})
    c.check(flt.get("includedEventTypes") == ["Microsoft.Storage.BlobCreated"], "filter: BlobCreated only")
    c.check(flt.get("subjectBeginsWith") == "/blobServices/default/containers/${landingContainerName}/blobs/eot_",
            "filter: subject begins with /blobServices/default/containers/<landing>/blobs/eot_")
    c.check(flt.get("subjectEndsWith") == ".txt", "filter: subject ends with .txt")
    dest = sub.get("destination", {})
    c.check(dest.get("endpointType") == "WebHook", "destination: WebHook")
    c.check(dest.get("properties", {}).get("endpointUrl") == "webhookUrl", "destination: the webhook URL variable")
    url = tree.get("variables", {}).get("webhookUrl", {}).get("value", "")
    c.check(isinstance(url, str) and url.startswith("https://${functionApp.properties.defaultHostName}/runtime/webhooks/blobs?")
            and "functionName=Host.Functions.${ingestFunctionName}" in url and url.endswith("&code=${blobsExtensionKey}"),
            "webhook: https://<app>/runtime/webhooks/blobs?functionName=Host.Functions.<fn>&code=<key>")
    c.check(param_default(tree, "ingestFunctionName") == "IngestFunction", "webhook: function IngestFunction")
    key = text(tree.get("variables", {}).get("blobsExtensionKey", {}))
    c.check('"listKeys"' in key and '"blobs_extension"' in key, "webhook key: listKeys().systemKeys.blobs_extension")
    c.check(not FORBIDDEN_IN_SETTINGS.search(text(tree.get("outputs", {}))) and "code=" not in text(tree.get("outputs", {})),
            "outputs: no keys")


def check_params(c: Checker, tree: dict, files: list[Path]) -> None:
    print("params/*.json")
    params = tree["parameters"]
    required = {n for n, p in params.items() if p.get("default") is None}
    c.check(sorted(f.stem for f in files) == ["dev", "prod", "staging"], "one parameter file per environment")
    for f in files:
        try:
            doc = json.loads(f.read_text())
        except json.JSONDecodeError as e:
            c.check(False, f"{f.name}: valid JSON ({e})")
            continue
        values = {k: v.get("value") for k, v in doc.get("parameters", {}).items()}
        unknown = set(values) - set(params)
        c.check(not unknown, f"{f.name}: only parameters main.bicep declares ({', '.join(sorted(unknown)) or 'ok'})")
        c.check(required <= set(values), f"{f.name}: every required parameter given")
        c.check(values.get("envName") == f.stem, f"{f.name}: envName is {f.stem}")
        for name, value in values.items():
            d = decorators(params.get(name, {}))
            ok = True
            if "allowed" in d and value not in d["allowed"]:
                ok = False
            if "min_value" in d and value < d["min_value"]:
                ok = False
            if "max_value" in d and value > d["max_value"]:
                ok = False
            if isinstance(value, str) and "min_length" in d and len(value) < d["min_length"]:
                ok = False
            if isinstance(value, str) and "max_length" in d and len(value) > d["max_length"]:
                ok = False
            expected = {"string": str, "int": int, "bool": bool, "object": dict, "array": list}.get(params.get(name, {}).get("type"))
            if expected and not isinstance(value, expected):
                ok = False
            if not ok:
                c.check(False, f"{f.name}: {name}={value!r} fits its decorators and type")


def check_functions(c: Checker, repo: Path) -> None:
    """Cross-check with the handler's function.json when it is in the tree."""
    print("IngestFunction/function.json")
    skip = {"target", "node_modules", ".git", ".venv", ".venv-lint"}
    found = [p for p in repo.rglob("IngestFunction/function.json") if not skip & set(p.relative_to(repo).parts)]
    if not found:
        print("  skip  no IngestFunction/function.json in the tree yet")
        return
    try:
        fj = json.loads(found[0].read_text())
    except json.JSONDecodeError as e:
        c.check(False, f"{found[0]}: valid JSON ({e})")
        return
    trig = next((b for b in fj.get("bindings", []) if b.get("type") == "blobTrigger"), {})
    c.check(trig.get("source") == "EventGrid", f"{found[0].relative_to(repo)}: blobTrigger source EventGrid")
    path = trig.get("path", "")
    c.check(path.startswith("%INGEST_CONTAINER%/eot_") and path.endswith(".txt"),
            f"{found[0].relative_to(repo)}: path %INGEST_CONTAINER%/eot_*.txt matches the Event Grid filter")
    c.check(trig.get("connection", "AzureWebJobsStorage") == "AzureWebJobsStorage",
            f"{found[0].relative_to(repo)}: connection AzureWebJobsStorage (identity-based settings)")


def check_queue_names(c: Checker, repo: Path, main_tree: dict) -> None:
    """Every queue a function.json names is the queue main.bicep declares."""
    skip = {"target", "node_modules", ".git", ".venv", ".venv-lint"}
    declared = param_default(main_tree, "reingestQueueName")
    for fj_path in sorted(repo.glob("*/function.json")):
        if skip & set(fj_path.relative_to(repo).parts):
            continue
        try:
            bindings = json.loads(fj_path.read_text()).get("bindings", [])
        except json.JSONDecodeError:
            continue
        for b in bindings:
            if b.get("type") in ("queue", "queueTrigger"):
                c.check(b.get("queueName") == declared,
                        f"{fj_path.relative_to(repo)}: queue {b.get('queueName')!r} is the declared {declared!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent)
    args = ap.parse_args()
    root: Path = args.root
    c = Checker()
    parser = BicepParser()
    trees: dict[str, dict] = {}
    print("parse")
    for f in sorted(root.glob("*.bicep")):
        try:
            trees[f.name] = parser.parse(file_path=f)
            c.check(True, f"{f.name}: parses")
        except Exception as e:  # pycep raises lark errors with line and column
            c.check(False, f"{f.name}: parses ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
    for name in ("main.bicep", "eventgrid.bicep"):
        c.check(name in trees, f"{name} present and parsed")
    print("resource types and API versions")
    for fname, tree in trees.items():
        for rname, r in tree.get("resources", {}).items():
            rtype, api = r.get("type"), r.get("api_version")
            c.check(api in KNOWN_TYPES.get(rtype, set()), f"{fname}: {rname} {rtype}@{api}")
    if "main.bicep" in trees:
        check_main(c, trees["main.bicep"])
        check_params(c, trees["main.bicep"], sorted((root / "params").glob("*.json")))
    if "eventgrid.bicep" in trees:
        check_eventgrid(c, trees["eventgrid.bicep"])
    check_functions(c, root.parent)
    if "main.bicep" in trees:
        check_queue_names(c, root.parent, trees["main.bicep"])
    print(f"infra-check: {c.passes} passed, {len(c.failures)} failed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
