// The contract documents as integrators' own tools see them. Exits 1 on any error.
//   node validate.mjs asyncapi FILE    official AsyncAPI parser (what `asyncapi validate` runs)
//   node validate.mjs openapi FILE     Redocly's `recommended` ruleset (what `redocly lint` runs)
//   node validate.mjs schemas FILE...  ajv in strict mode, with formats
import { readFileSync } from "node:fs";
import { basename } from "node:path";

const [kind, ...files] = process.argv.slice(2);
const read = (file) => readFileSync(file, "utf8");
let errors = 0;

function report(file, severity, code, message, where) {
  if (severity === "error") errors += 1;
  console.log(`${basename(file)}: ${severity} ${code}: ${message}${where ? ` at ${where}` : ""}`);
}

async function asyncapi(file) {
  const { Parser, DiagnosticSeverity } = await import("@asyncapi/parser");
  const { document, diagnostics } = await new Parser().parse(read(file));
  const names = { 0: "error", 1: "warning", 2: "info", 3: "hint" };
  for (const d of diagnostics) {
    report(file, names[d.severity], d.code, d.message, d.path.join("."));
  }
  if (!document) report(file, "error", "no-document", "the parser returned no document");
  void DiagnosticSeverity;
}

async function openapi(file) {
  const { lintFromString, createConfig } = await import("@redocly/openapi-core");
  const config = await createConfig({ extends: ["recommended"] });
  const problems = await lintFromString({ source: read(file), absoluteRef: file, config });
  for (const p of problems) {
    report(file, p.severity, p.ruleId, p.message, p.location?.[0]?.pointer);
  }
}

async function schemas(paths) {
  const { default: Ajv2020 } = await import("ajv/dist/2020.js");
  const { default: addFormats } = await import("ajv-formats");
  for (const file of paths) {
    const ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats(ajv);
    try {
      ajv.compile(JSON.parse(read(file)));
    } catch (error) {
      report(file, "error", "ajv-strict", error.message);
    }
  }
}

if (kind === "asyncapi") for (const f of files) await asyncapi(f);
else if (kind === "openapi") for (const f of files) await openapi(f);
else if (kind === "schemas") await schemas(files);
else {
  console.error("usage: node validate.mjs asyncapi|openapi|schemas FILE...");
  process.exit(2);
}
console.log(`${kind}: ${files.length} file(s), ${errors} error(s)`);
process.exit(errors ? 1 : 0);
