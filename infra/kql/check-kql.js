#!/usr/bin/env node
// Parses and analyzes Kusto queries offline with Kusto.Language (@kusto/language-service-next,
// the analyzer behind the Azure portal's query editor), against the classic Application
// Insights tables that a log search alert scoped to the component queries. Run by
// infra/check.py (make infra-check); nothing here talks to Azure.
//
// stdin:  [{"name": "...", "query": "..."}, ...]
// stdout: [{"name": "...", "errors": ["line 3: KS142 The name 'x' does not refer ..."],
//           "columns": [{"name": "dates", "type": "long"}, ...]}, ...]
//
// Only errors are reported: warnings (for example "avoid contains") are advice, not breakage.

"use strict";

const path = require("path");
const fs = require("fs");

const pkg = path.join(__dirname, "node_modules", "@kusto", "language-service-next");
if (!fs.existsSync(path.join(pkg, "Kusto.Language.Bridge.min.js"))) {
  process.stderr.write(`check-kql: ${pkg} is missing: run npm ci --prefix infra/kql (make infra-check does)\n`);
  process.exit(2);
}
require(path.join(pkg, "bridge.min.js"));
require(path.join(pkg, "Kusto.Language.Bridge.min.js"));
/* global Kusto */
const K = Kusto.Language;
const S = K.Symbols;

// Columns every classic Application Insights table has.
const COMMON =
  "timestamp:datetime, itemType:string, customDimensions:dynamic, customMeasurements:dynamic, " +
  "operation_Name:string, operation_Id:string, operation_ParentId:string, operation_SyntheticSource:string, " +
  "session_Id:string, user_Id:string, user_AuthenticatedId:string, user_AccountId:string, " +
  "application_Version:string, client_Type:string, client_Model:string, client_OS:string, client_IP:string, " +
  "client_City:string, client_StateOrProvince:string, client_CountryOrRegion:string, client_Browser:string, " +
  "cloud_RoleName:string, cloud_RoleInstance:string, appId:string, appName:string, iKey:string, " +
  "sdkVersion:string, itemId:string, itemCount:int";

const TABLES = {
  traces: "message:string, severityLevel:int",
  requests:
    "id:string, source:string, name:string, url:string, success:bool, resultCode:string, duration:real, " +
    "performanceBucket:string",
  exceptions:
    "problemId:string, handledAt:string, type:string, message:string, assembly:string, method:string, " +
    "outerType:string, outerMessage:string, outerAssembly:string, outerMethod:string, innermostType:string, " +
    "innermostMessage:string, innermostAssembly:string, innermostMethod:string, severityLevel:int, details:dynamic",
  dependencies:
    "id:string, target:string, type:string, name:string, data:string, success:bool, resultCode:string, " +
    "duration:real, performanceBucket:string",
};

const tables = Object.entries(TABLES).map(([name, columns]) =>
  S.TableSymbol.From(`(${columns}, ${COMMON})`).WithName(name),
);
const globals = K.GlobalState.Default.WithDatabase(new S.DatabaseSymbol.ctor("appinsights", tables));

function lineOf(text, offset) {
  return text.slice(0, offset).split("\n").length;
}

function analyze({ name, query }) {
  const code = K.KustoCode.ParseAndAnalyze(query, globals);
  const diagnostics = code.GetDiagnostics();
  const errors = [];
  for (let i = 0; i < diagnostics.Count; i++) {
    const d = diagnostics.getItem(i);
    if (d.Severity === "Error") {
      errors.push(`line ${lineOf(query, d.Start)}: ${d.Code} ${d.Message}`);
    }
  }
  const columns = [];
  const result = code.ResultType;
  if (result && result.Columns) {
    for (let i = 0; i < result.Columns.Count; i++) {
      const c = result.Columns.getItem(i);
      columns.push({ name: c.Name, type: c.Type.Name });
    }
  }
  return { name, errors, columns };
}

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const queries = JSON.parse(input);
  process.stdout.write(JSON.stringify(queries.map(analyze)) + "\n");
});
