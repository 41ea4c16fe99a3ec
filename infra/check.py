#!/usr/bin/env python3
"""Offline checks of the Bicep in infra/ (run by `make infra-check`).

The Bicep compiler cannot be installed on our build machines (it is a binary download, not a
registry package), so this parses every .bicep file with pycep-parser (PyPI) and checks what the
deployment depends on: the resource types and API versions, the Flex Consumption custom-handler
settings, identity-only storage access and its role assignments, the Event Grid filter and
webhook, the alert rules and their action group, and that the parameter files fit the template.
The alert queries (and every `kusto` block in docs/) go through the Kusto analyzer in
infra/kql/ (Node.js), and docs/operations.md must quote each alert query verbatim. Where
`az bicep` is available (GitHub's runners), `make infra-check AZ_BICEP=1` also runs the real
compiler and linter.

Usage: check.py [--root DIR]   (DIR defaults to the folder holding this script)
Exit code 0 when every check passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
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
    "Microsoft.Insights/actionGroups": {"2023-01-01"},
    # 2023-12-01: the GA version with criteria.allOf (KQL query, measure, dimensions) and
    # ruleResolveConfiguration; its operators and fields are the ones checked below.
    "Microsoft.Insights/scheduledQueryRules": {"2023-12-01"},
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
    "INGEST_SWEEP_SCHEDULE",
    "INGEST_SWEEP_DAYS",
    "INGEST_SWEEP_DEADLINE",
    "INGEST_SWEEP_INGEST_WITHOUT_MARKER",
}

# The sweep's settings: app setting -> (the parameter it comes from, the parameter's default, as
# docs/operations.md and the sweep's own defaults say).
SWEEP_SETTINGS = {
    "INGEST_SWEEP_SCHEDULE": ("sweepSchedule", "0 */15 * * * *"),
    "INGEST_SWEEP_DAYS": ("sweepDays", 35),
    "INGEST_SWEEP_DEADLINE": ("sweepDeadline", "10:00"),
    "INGEST_SWEEP_INGEST_WITHOUT_MARKER": ("sweepIngestWithoutMarker", False),
}
DEADLINE = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
# NCRONTAB with seconds: six fields.
SCHEDULE = re.compile(r"^\S+( \S+){5}$")

# The category under which the host logs SweepFunction's `Logs` entries (functions-host-protocol.md
# section 4), and the lines the sweep writes there (src/sweep/mod.rs, src/functions/sweep.rs).
SWEEP_CATEGORY = 'tostring(customDimensions.Category) == "Function.SweepFunction.User"'
SWEEP_FORMATS = {
    "needs attention: {} {}: {}": ('message startswith "needs attention: "',),
    "sweep {}..{}: {} dates, {} queued, {} need attention": ('message startswith "sweep "', 'message endswith " need attention"'),
}

# The alert rules: what each query must match, and the columns its condition reads. The texts
# are the contract with the code and the host (docs/operations.md, "Alerts", says where each
# comes from); a query that stops matching them would never fire, silently.
ALERTS = {
    "attentionAlert": {
        "query": "attentionQuery",
        "contains": [SWEEP_CATEGORY, 'message startswith "needs attention: "', 'message startswith "sweep "',
                     'message endswith " need attention"', "customDimensions.InvocationId",
                     '"file(s) quarantined: "'],
        "measure": "dates",
        "dimensions": ["attention"],
    },
    "poisonAlert": {
        "query": "poisonQuery",
        # QueueProcessor.CopyMessageToPoisonQueueAsync (Azure/azure-sdk-for-net, WebJobs storage extensions).
        "contains": ['message startswith "Message has reached MaxDequeueCount of "', "Moving message to queue '"],
        "measure": "messages",
        "dimensions": ["queue"],
    },
    "failuresAlert": {
        "query": "failuresQuery",
        "contains": ["requests", "success == false", "by functionName = name", "exceptions",
                     '"status code does not indicate success: 503"'],
        "measure": "failures",
        "dimensions": ["functionName"],
    },
    "sweepSilentAlert": {
        "query": "sweepSilentQuery",
        "contains": [SWEEP_CATEGORY, 'message startswith "sweep "', 'message endswith " need attention"'],
        "count_below": 1,
    },
}
ISO_DURATION = re.compile(r"^PT([0-9]+)([MH])$|^P([0-9]+)D$")
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
KUSTO_BLOCK = re.compile(r"^```kusto\n(.*?)^```", re.M | re.S)

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
    check_sweep_settings(c, tree, {s.get("name"): s.get("value") for s in settings})

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


def check_sweep_settings(c: Checker, tree: dict, settings: dict[str, Any]) -> None:
    """The sweep's app settings come from parameters whose defaults are the sweep's defaults."""
    for setting, (param, default) in SWEEP_SETTINGS.items():
        value = text(settings.get(setting))
        c.check(f'"{param}"' in value, f"site: {setting} from parameter {param}")
        c.check(param_default(tree, param) == default, f"parameter {param} defaults to {default!r}")
    flag = settings.get("INGEST_SWEEP_INGEST_WITHOUT_MARKER", {})
    operands = flag.get("operator", {}).get("operands", {}) if isinstance(flag, dict) else {}
    c.check(operands.get("true_value") == "true" and operands.get("false_value") == "false",
            "site: INGEST_SWEEP_INGEST_WITHOUT_MARKER is 'true' or 'false' (ARM's string(true) is 'True')")
    c.check(bool(SCHEDULE.match(str(param_default(tree, "sweepSchedule")))), "parameter sweepSchedule: six NCRONTAB fields")
    c.check(bool(DEADLINE.match(str(param_default(tree, "sweepDeadline")))), "parameter sweepDeadline: HH:MM")
    days = decorators(tree["parameters"].get("sweepDays", {}))
    c.check(days.get("min_value") == 1 and days.get("max_value") == 3660,
            "parameter sweepDays: 1 to 3660, the range the sweep accepts")


def iso_minutes(duration: Any) -> int | None:
    m = ISO_DURATION.match(duration) if isinstance(duration, str) else None
    if not m:
        return None
    if m.group(3):
        return int(m.group(3)) * 1440
    return int(m.group(1)) * (60 if m.group(2) == "H" else 1)


def check_alerts(c: Checker, tree: dict) -> None:
    """The action group mails the alertEmail parameter; each rule is wired to it and to the app's
    Application Insights, stateful, with a query that matches what the code and the host log."""
    print("alerts (main.bicep)")
    params = tree["parameters"]
    variables = tree.get("variables", {})
    email = params.get("alertEmail", {})
    c.check(email.get("type") == "string" and email.get("default") == "",
            "parameter alertEmail: a string, empty by default (no address in the template)")
    notify = text(variables.get("alertsNotify", {}).get("value"))
    c.check('"not"' in notify and '"empty"' in notify and '"alertEmail"' in notify,
            "variable alertsNotify = !empty(alertEmail)")

    groups = resources_of(tree, "Microsoft.Insights/actionGroups")
    c.check(len(groups) == 1, "one action group")
    group = next(iter(groups.values()), {}).get("config", {})
    c.check(group.get("condition") == "alertsNotify", "action group: deployed only when alertEmail is given")
    gprops = group.get("config", {}).get("properties", {})
    receivers = gprops.get("emailReceivers", [])
    c.check(len(receivers) == 1 and receivers[0].get("emailAddress") == "alertEmail"
            and receivers[0].get("useCommonAlertSchema") is True,
            "action group: one e-mail receiver, the alertEmail parameter, common alert schema")
    c.check(gprops.get("enabled") is True, "action group: enabled")
    short = gprops.get("groupShortName", "")
    envs = decorators(params.get("envName", {})).get("allowed", [])
    c.check(isinstance(short, str) and all(len(short.replace("${envName}", e)) <= 12 for e in envs),
            "action group: groupShortName at most 12 characters in every environment")
    c.check(group.get("config", {}).get("name") == "actionGroupName", "action group: named by variable actionGroupName")
    actions = variables.get("alertActionGroups", {}).get("value", {})
    operands = actions.get("operator", {}).get("operands", {}) if isinstance(actions, dict) else {}
    rid = text(operands.get("true_value"))
    c.check(operands.get("condition") == "alertsNotify" and operands.get("false_value") == []
            and '"Microsoft.Insights/actionGroups"' in rid and '"actionGroupName"' in rid,
            "variable alertActionGroups: the action group's id when alertsNotify, else none")

    rules = resources_of(tree, "Microsoft.Insights/scheduledQueryRules")
    c.check(set(rules) == set(ALERTS), f"alert rules: {', '.join(sorted(ALERTS))} (found {', '.join(sorted(rules)) or 'none'})")
    queries = []
    for rname, spec in ALERTS.items():
        cfg = rules.get(rname, {}).get("config", {})
        props = cfg.get("properties", {})
        c.check(cfg.get("kind") == "LogAlert", f"{rname}: kind LogAlert")
        c.check(props.get("enabled") is True, f"{rname}: enabled")
        scopes = text(props.get("scopes"))
        c.check(len(props.get("scopes", [])) == 1 and '"operand_1": "appInsights"' in scopes and '"operand_2": "id"' in scopes,
                f"{rname}: scoped to the app's Application Insights")
        c.check(props.get("severity") in range(0, 5), f"{rname}: severity 0-4")
        freq, window = iso_minutes(props.get("evaluationFrequency")), iso_minutes(props.get("windowSize"))
        c.check(freq is not None and window is not None and 5 <= freq <= window,
                f"{rname}: evaluated every {props.get('evaluationFrequency')} (at least 5 min) over {props.get('windowSize')}")
        c.check(props.get("autoMitigate") is True, f"{rname}: stateful (autoMitigate), so one e-mail per firing")
        c.check(props.get("actions", {}).get("actionGroups") == "alertActionGroups"
                and "actionGroup" in cfg.get("dependsOn", []),
                f"{rname}: notifies the action group (alertActionGroups, dependsOn actionGroup)")
        c.check("docs/operations.md" in str(props.get("description", "")), f"{rname}: description points to docs/operations.md")
        allof = props.get("criteria", {}).get("allOf", [])
        cond = allof[0] if len(allof) == 1 else {}
        c.check(len(allof) == 1 and cond.get("query") == spec["query"], f"{rname}: one condition, query {spec['query']}")
        query = variables.get(spec["query"], {}).get("value")
        if not c.check(isinstance(query, str), f"{spec['query']}: a plain multi-line string"):
            continue
        missing = [frag for frag in spec["contains"] if frag not in query]
        c.check(not missing, f"{spec['query']}: matches " + (f"(missing: {missing})" if missing else ", ".join(spec["contains"])))
        if "count_below" in spec:
            c.check(cond.get("timeAggregation") == "Count" and cond.get("operator") == "LessThan"
                    and cond.get("threshold") == spec["count_below"] and "metricMeasureColumn" not in cond,
                    f"{rname}: fires when the query returns fewer than {spec['count_below']} row(s)")
        else:
            c.check(cond.get("metricMeasureColumn") == spec["measure"] and cond.get("operator") == "GreaterThan"
                    and cond.get("threshold") == 0 and cond.get("timeAggregation") in ("Total", "Maximum"),
                    f"{rname}: fires when {spec['measure']} > 0")
            dims = cond.get("dimensions", [])
            c.check([d.get("name") for d in dims] == spec["dimensions"]
                    and all(d.get("operator") == "Include" and d.get("values") == ["*"] for d in dims),
                    f"{rname}: split by {', '.join(spec['dimensions'])} (every value)")
        queries.append((rname, spec, query))
    check_kql(c, [(spec["query"], q, spec) for _, spec, q in queries])


def run_kql(queries: list[dict]) -> list[dict] | None:
    """Kusto.Language's verdict on each query (infra/kql/check-kql.js), or None without Node."""
    node = shutil.which("node")
    script = Path(__file__).resolve().parent / "kql" / "check-kql.js"
    if node is None:
        return None
    out = subprocess.run([node, str(script)], input=json.dumps(queries), capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(out.stderr.strip())
        return None
    return json.loads(out.stdout)


def check_kql(c: Checker, queries: list[tuple[str, str, dict]]) -> None:
    """Each alert query parses and analyzes without error, and returns the columns its rule reads."""
    results = run_kql([{"name": name, "query": q} for name, q, _ in queries])
    if not c.check(results is not None, "Kusto analyzer (node infra/kql/check-kql.js) ran"):
        return
    for (name, _, spec), result in zip(queries, results):
        c.check(not result["errors"], f"{name}: Kusto analyzer finds no error" + (f": {result['errors']}" if result["errors"] else ""))
        columns = {col["name"]: col["type"] for col in result["columns"]}
        if "measure" in spec:
            c.check(columns.get(spec["measure"]) in ("long", "int", "real", "decimal"),
                    f"{name}: returns the number {spec['measure']} ({columns.get(spec['measure'])})")
            for dim in spec["dimensions"]:
                c.check(columns.get(dim) == "string", f"{name}: returns the dimension {dim} as a string")


def check_sweep_formats(c: Checker, repo: Path) -> None:
    """The lines the queries look for are the ones the sweep writes (once SweepFunction exists)."""
    print("the sweep's lines (src/)")
    if not (repo / "SweepFunction" / "function.json").is_file():
        print("  skip  no SweepFunction/function.json in the tree yet")
        return
    sources = "\n".join(p.read_text() for p in sorted((repo / "src").rglob("*.rs")))
    for fmt, fragments in SWEEP_FORMATS.items():
        c.check(f'"{fmt}"' in sources, f"src/ writes {fmt!r} (the alert queries match {', '.join(fragments)})")


def check_host_sampling(c: Checker, repo: Path) -> None:
    """Application Insights must not sample what the alerts count (host.json)."""
    print("host.json")
    host = repo / "host.json"
    if not host.is_file():
        print("  skip  no host.json in the tree")
        return
    try:
        sampling = json.loads(host.read_text()).get("logging", {}).get("applicationInsights", {}).get("samplingSettings", {})
    except json.JSONDecodeError as e:
        c.check(False, f"host.json: valid JSON ({e})")
        return
    excluded = {t.strip() for t in str(sampling.get("excludedTypes", "Request")).split(";")}
    c.check(sampling.get("isEnabled") is False or {"Request", "Exception", "Trace"} <= excluded,
            "host.json: requests, exceptions and traces are not sampled (the alert queries count them)")


def check_no_address(c: Checker, root: Path) -> None:
    """No e-mail address is written into infra/: it is given at deployment (alertEmail)."""
    files = sorted(root.glob("*.bicep")) + sorted((root / "params").glob("*.json"))
    found = [f"{f.name}: {m.group(0)}" for f in files for m in EMAIL.finditer(f.read_text())]
    c.check(not found, "no e-mail address in infra/*.bicep or infra/params/*.json" + (f" (found {found})" if found else ""))
    for f in sorted((root / "params").glob("*.json")):
        try:
            value = json.loads(f.read_text()).get("parameters", {}).get("alertEmail", {}).get("value", "")
        except json.JSONDecodeError:
            continue
        c.check(value in ("", None), f"{f.name}: alertEmail not set in the file (given at deployment)")


def check_docs(c: Checker, repo: Path, tree: dict) -> None:
    """docs/operations.md quotes every alert query verbatim, and every kusto block in docs/ parses."""
    print("docs/*.md queries")
    ops = repo / "docs" / "operations.md"
    blocks = {b.strip() for b in KUSTO_BLOCK.findall(ops.read_text())} if ops.is_file() else set()
    for spec in ALERTS.values():
        query = tree.get("variables", {}).get(spec["query"], {}).get("value")
        c.check(isinstance(query, str) and query.strip() in blocks,
                f"docs/operations.md quotes {spec['query']} verbatim in a kusto block")
    docs = sorted((repo / "docs").glob("*.md"))
    found = [(f"{d.name} kusto block {i + 1}", b) for d in docs for i, b in enumerate(KUSTO_BLOCK.findall(d.read_text()))]
    results = run_kql([{"name": name, "query": q} for name, q in found])
    if not c.check(results is not None, "Kusto analyzer (node infra/kql/check-kql.js) ran on docs/"):
        return
    for result in results:
        c.check(not result["errors"], f"{result['name']}: Kusto analyzer finds no error"
                + (f": {result['errors']}" if result["errors"] else ""))


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
            if name == "sweepDeadline" and not (isinstance(value, str) and DEADLINE.match(value)):
                ok = False
            if name == "sweepSchedule" and not (isinstance(value, str) and SCHEDULE.match(value)):
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


def check_function_settings(c: Checker, repo: Path, main_tree: dict) -> None:
    """Every %SETTING% a function.json names is an app setting main.bicep sets."""
    skip = {"target", "node_modules", ".git", ".venv", ".venv-lint"}
    site = one(main_tree, "Microsoft.Web/sites")
    names = {s.get("name") for s in site.get("properties", {}).get("siteConfig", {}).get("appSettings", [])}
    for fj_path in sorted(repo.glob("*/function.json")):
        if skip & set(fj_path.relative_to(repo).parts):
            continue
        for setting in sorted(set(re.findall(r"%([A-Za-z0-9_]+)%", fj_path.read_text()))):
            c.check(setting in names, f"{fj_path.relative_to(repo)}: %{setting}% is an app setting of main.bicep")
    sweep = repo / "SweepFunction" / "function.json"
    if sweep.is_file():
        try:
            bindings = json.loads(sweep.read_text()).get("bindings", [])
        except json.JSONDecodeError:
            bindings = []
        timer = next((b for b in bindings if b.get("type") == "timerTrigger"), {})
        c.check(timer.get("schedule") == "%INGEST_SWEEP_SCHEDULE%", "SweepFunction/function.json: schedule %INGEST_SWEEP_SCHEDULE%")


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
        check_alerts(c, trees["main.bicep"])
        check_params(c, trees["main.bicep"], sorted((root / "params").glob("*.json")))
        check_no_address(c, root)
    if "eventgrid.bicep" in trees:
        check_eventgrid(c, trees["eventgrid.bicep"])
    check_functions(c, root.parent)
    if "main.bicep" in trees:
        check_queue_names(c, root.parent, trees["main.bicep"])
        check_function_settings(c, root.parent, trees["main.bicep"])
        check_sweep_formats(c, root.parent)
        check_host_sampling(c, root.parent)
        check_docs(c, root.parent, trees["main.bicep"])
    print(f"infra-check: {c.passes} passed, {len(c.failures)} failed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
