// extension/protocol.ts against the daemon's schema (server/autoresearch/protocol.py): every
// method, every payload interface, every field's name, optionality and type must match, so a field
// added, removed or retyped on either side fails here.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import ts from "typescript";
import { Method, NOTIFICATION_METHODS } from "../../extension/protocol";
import { python, pythonEnv, repoRoot } from "./helpers";

type JsonSchema = {
  $ref?: string;
  type?: string;
  items?: JsonSchema;
  additionalProperties?: JsonSchema | boolean;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
};
type Schema = {
  requests: Record<string, { params: JsonSchema; result: JsonSchema }>;
  notifications: Record<string, JsonSchema>;
  clientRequests: Record<string, { params: JsonSchema; result: JsonSchema }>;
  components: Record<string, JsonSchema>;
};

// Interfaces in protocol.ts that are not payloads: the method tables and the client seam.
const NOT_PAYLOADS = new Set(["Requests", "ClientRequests", "Notifications", "DaemonApi"]);

function loadSchema(): Schema {
  const code = "import json; from autoresearch.protocol import schema; print(json.dumps(schema()))";
  const run = spawnSync(python(), ["-c", code], { env: pythonEnv(), encoding: "utf-8" });
  assert.equal(
    run.status,
    0,
    `could not export the daemon's schema with ${python()} (set AUTORESEARCH_PYTHON): ` +
      `${run.error?.message ?? run.stderr}`,
  );
  return JSON.parse(run.stdout) as Schema;
}

function union(parts: string[]): string {
  const flat = [...new Set(parts.flatMap((part) => part.split("|")))].sort();
  return flat.join("|");
}

function array(item: string): string {
  return item.includes("|") ? `(${item})[]` : `${item}[]`;
}

function refName(ref: string): string {
  return ref.replace("#/$defs/", "");
}

/** A canonical type string for a JSON schema node. */
function fromSchema(node: JsonSchema): string {
  if (node.$ref) return refName(node.$ref);
  if (node.anyOf) return union(node.anyOf.map(fromSchema));
  if (node.enum) return union(node.enum.map((value) => JSON.stringify(value)));
  switch (node.type) {
    case "string":
    case "number":
    case "boolean":
    case "null":
      return node.type;
    case "integer":
      return "int";
    case "array":
      return array(fromSchema(node.items ?? {}));
    case "object":
      if (typeof node.additionalProperties === "object") {
        return `Record<string,${fromSchema(node.additionalProperties)}>`;
      }
  }
  throw new Error(`schema node not understood by this test: ${JSON.stringify(node)}`);
}

type Field = { optional: boolean; type: ts.TypeNode };

class ProtocolFile {
  readonly interfaces = new Map<string, Map<string, Field>>();
  readonly aliases = new Map<string, ts.TypeNode>();
  readonly methodValues: string[] = [];
  readonly source: ts.SourceFile;

  constructor(path: string) {
    this.source = ts.createSourceFile(path, readFileSync(path, "utf-8"), ts.ScriptTarget.ES2022, true);
    for (const statement of this.source.statements) {
      if (ts.isInterfaceDeclaration(statement)) {
        const fields = new Map<string, Field>();
        for (const member of statement.members) {
          if (!ts.isPropertySignature(member) || !member.type) continue;
          fields.set(this.key(member.name), {
            optional: member.questionToken !== undefined,
            type: member.type,
          });
        }
        this.interfaces.set(statement.name.text, fields);
      } else if (ts.isTypeAliasDeclaration(statement)) {
        this.aliases.set(statement.name.text, statement.type);
      } else if (ts.isVariableStatement(statement)) {
        for (const decl of statement.declarationList.declarations) {
          if (!ts.isIdentifier(decl.name) || decl.name.text !== "Method" || !decl.initializer) {
            continue;
          }
          let init: ts.Expression = decl.initializer;
          if (ts.isAsExpression(init)) init = init.expression;
          assert.ok(ts.isObjectLiteralExpression(init), "Method must be an object literal");
          for (const property of init.properties) {
            assert.ok(ts.isPropertyAssignment(property) && ts.isStringLiteral(property.initializer));
            this.methodValues.push(property.initializer.text);
          }
        }
      }
    }
  }

  key(name: ts.PropertyName): string {
    if (ts.isIdentifier(name) || ts.isStringLiteral(name)) return name.text;
    throw new Error(`unexpected property name ${name.getText(this.source)}`);
  }

  /** A canonical type string for a TypeScript type node, resolving the file's type aliases. */
  canon(node: ts.TypeNode): string {
    if (ts.isParenthesizedTypeNode(node)) return this.canon(node.type);
    if (ts.isUnionTypeNode(node)) return union(node.types.map((t) => this.canon(t)));
    if (ts.isArrayTypeNode(node)) return array(this.canon(node.elementType));
    if (ts.isLiteralTypeNode(node)) {
      if (node.literal.kind === ts.SyntaxKind.NullKeyword) return "null";
      if (ts.isStringLiteral(node.literal)) return JSON.stringify(node.literal.text);
    }
    switch (node.kind) {
      case ts.SyntaxKind.StringKeyword:
        return "string";
      case ts.SyntaxKind.NumberKeyword:
        return "number";
      case ts.SyntaxKind.BooleanKeyword:
        return "boolean";
    }
    if (ts.isTypeReferenceNode(node) && ts.isIdentifier(node.typeName)) {
      const name = node.typeName.text;
      const args = node.typeArguments ?? [];
      if (name === "Int") return "int";
      if (name === "Record" && args.length === 2) {
        assert.equal(this.canon(args[0]!), "string");
        return `Record<string,${this.canon(args[1]!)}>`;
      }
      if (name === "Array" && args.length === 1) return array(this.canon(args[0]!));
      const alias = this.aliases.get(name);
      if (alias) return this.canon(alias);
      if (this.interfaces.has(name)) return name;
    }
    throw new Error(`type not allowed in protocol.ts: ${node.getText(this.source)}`);
  }

  /** `{ params: X; result: Y }` or `X` as interface names. */
  ref(node: ts.TypeNode): string {
    return this.canon(node);
  }
}

const schema = loadSchema();
const file = new ProtocolFile(join(repoRoot(), "extension", "protocol.ts"));

test("every payload type of the daemon has an interface in protocol.ts, and no other", () => {
  const payloads = [...file.interfaces.keys()].filter((name) => !NOT_PAYLOADS.has(name)).sort();
  assert.deepEqual(payloads, Object.keys(schema.components).sort());
});

for (const [name, component] of Object.entries(schema.components)) {
  test(`interface ${name} matches the daemon's ${name}`, () => {
    const fields = file.interfaces.get(name);
    assert.ok(fields, `protocol.ts has no interface ${name}`);
    const properties = component.properties ?? {};
    assert.deepEqual([...fields.keys()].sort(), Object.keys(properties).sort(), `${name}: fields`);
    const required = new Set(component.required ?? []);
    for (const [field, node] of Object.entries(properties)) {
      const mine: Field = fields.get(field)!;
      assert.equal(mine.optional, !required.has(field), `${name}.${field}: optional`);
      assert.equal(file.canon(mine.type), fromSchema(node), `${name}.${field}: type`);
    }
  });
}

test("the Method table names exactly the daemon's requests and notifications", () => {
  const daemon = [
    ...Object.keys(schema.requests),
    ...Object.keys(schema.notifications),
    ...Object.keys(schema.clientRequests),
  ].sort();
  assert.deepEqual([...file.methodValues].sort(), daemon);
  // Each name says its method, so two swapped values cannot pass as the same set.
  for (const [name, method] of Object.entries(Method)) assert.equal(method, `autoresearch/${name}`);
  assert.deepEqual([...NOTIFICATION_METHODS].sort(), Object.keys(schema.notifications).sort());
});

for (const [name, requests] of [
  ["Requests", "requests"],
  ["ClientRequests", "clientRequests"],
] as const) {
  test(`the ${name} table pairs each method with the daemon's params and result`, () => {
    const table = file.interfaces.get(name);
    assert.ok(table);
    assert.deepEqual([...table.keys()].sort(), Object.keys(schema[requests]).sort());
    for (const [method, { params, result }] of Object.entries(schema[requests])) {
      const entry: ts.TypeNode = table.get(method)!.type;
      assert.ok(ts.isTypeLiteralNode(entry), `${method}: { params; result }`);
      const members: Map<string, ts.TypeNode> = new Map(
        entry.members
          .filter(ts.isPropertySignature)
          .map((member) => [file.key(member.name), member.type!] as const),
      );
      assert.equal(file.ref(members.get("params")!), fromSchema(params), `${method}: params`);
      assert.equal(file.ref(members.get("result")!), fromSchema(result), `${method}: result`);
    }
  });
}

test("the Notifications table pairs each notification with the daemon's payload", () => {
  const table = file.interfaces.get("Notifications");
  assert.ok(table);
  assert.deepEqual([...table.keys()].sort(), Object.keys(schema.notifications).sort());
  for (const [method, payload] of Object.entries(schema.notifications)) {
    assert.equal(file.ref(table.get(method)!.type), fromSchema(payload), method);
  }
});

test("protocol.ts declares no `any` or `unknown`", () => {
  const loose: string[] = [];
  const visit = (node: ts.Node): void => {
    if (node.kind === ts.SyntaxKind.AnyKeyword || node.kind === ts.SyntaxKind.UnknownKeyword) {
      loose.push(node.parent.getText(file.source));
    }
    ts.forEachChild(node, visit);
  };
  visit(file.source);
  assert.deepEqual(loose, []);
});
