// The house rules of src/ (issue 19, docs/architecture.md), read from the import lines:
// - no import cycle, between files or between folders;
// - a folder is entered through its index.ts only (its other files are its own business);
// - a capability never imports from an integration: arrows point down.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const SRC = resolve(import.meta.dirname, "../src");

/** The bottom layer: each knows nothing of the layer above. */
const capabilities = ["errors", "utils", "media-id", "media-type", "storage", "annotations", "auth", "journal", "telemetry"];
/** What composes the capabilities, and the entry points on top. `src/index.ts` counts as one of them. */
const integrations = ["intake", "lifecycle", "tus", "queue", "multer", "cli", "dev-server", "http", "schema", "browser", "possession"];

/**
 * Imports allowed past a folder's index.ts, each with its reason. Keep this list short: an entry
 * here is a debt, not a rule.
 */
const allowedPastIndex: Array<{ from: RegExp; to: RegExp; why: string }> = [
  {
    from: /^queue\/index\.ts$/,
    to: /^(journal\/redis|tus\/redis-locker)\.ts$/,
    why: "the deprecated re-exports of media-intake/queue (createRedisJournal, createRedisTusLocker): through tus/index.ts they would load @tus/server with the queue entry",
  },

  {
    from: /^browser\/[^/]+\.ts$/,
    to: /^media-id\/(sampling|hasher|format)\.ts$/,
    why: "media-intake/browser takes no node: module: media-id/index.ts also hands on compute.ts, which imports node:fs (a bundler for the browser fails on it)",
  },

  {
    from: /^browser\/[^/]+\.ts$/,
    to: /^possession\/digest\.ts$/,
    why: "media-intake/browser answers challenges with the service's own digest function and takes no node: module: possession/index.ts also hands on challenge.ts (node:crypto) and file-range.ts (node:fs)",
  },

  {
    from: /^schema\/index\.ts$/,
    to: /^annotations\/schema\.ts$/,
    why: "the zod schema is its own entry point: annotations/index.ts handing it on would load zod with the core import",
  },
];

function sourceFiles(directory: string): string[] {
  return readdirSync(directory).flatMap((name) => {
    const path = join(directory, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

/** Every relative module a file imports or re-exports, static or dynamic, type-only included. */
function importsOf(text: string): string[] {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
  const specifiers = [
    ...code.matchAll(/\b(?:import|export)\b[^;"'`]*?\bfrom\s*["']([^"']+)["']/g),
    ...code.matchAll(/\bimport\s*\(\s*["']([^"']+)["']\s*\)/g),
    ...code.matchAll(/^\s*import\s*["']([^"']+)["']/gm),
  ].map((match) => match[1] as string);
  return specifiers.filter((specifier) => specifier.startsWith("."));
}

/** The import graph of src/, as paths relative to src/ (`storage/store.ts`). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourceFiles(SRC)) {
    const targets = importsOf(readFileSync(file, "utf8"))
      .map((specifier) => relative(SRC, resolve(dirname(file), specifier)).split("\\").join("/"))
      .filter((target) => !target.startsWith("..") && target.endsWith(".ts"));
    graph.set(relative(SRC, file).split("\\").join("/"), targets);
  }
  return graph;
}

/** The top-level folder of a path under src/ (`""` for src/index.ts). */
const folderOf = (path: string) => (path.includes("/") ? (path.split("/")[0] as string) : "");

/** The cycles of a graph, each once (as the strongly connected components of more than one node, or a self-loop). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string) => {
    index.set(node, next);
    low.set(node, next);
    next += 1;
    stack.push(node);
    onStack.add(node);
    for (const target of graph.get(node) ?? []) {
      if (!index.has(target)) {
        visit(target);
        low.set(node, Math.min(low.get(node) as number, low.get(target) as number));
      } else if (onStack.has(target)) {
        low.set(node, Math.min(low.get(node) as number, index.get(target) as number));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop() as string;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1 || (graph.get(node) ?? []).includes(node)) found.push(component.sort());
    }
  };
  for (const node of graph.keys()) if (!index.has(node)) visit(node);
  return found;
}

const graph = importGraph();
const edges = [...graph].flatMap(([from, targets]) => targets.map((to) => ({ from, to })));

describe("the architecture of src/", () => {
  it("has no import cycle between files", () => {
    expect(cycles(graph)).toEqual([]);
  });

  it("has no import cycle between folders", () => {
    const folders = new Map<string, string[]>();
    for (const { from, to } of edges) {
      const [a, b] = [folderOf(from), folderOf(to)];
      // src/index.ts re-exports every folder: it is the top, not a folder of the graph.
      if (a === b || a === "" || b === "") continue;
      folders.set(a, [...new Set([...(folders.get(a) ?? []), b])]);
    }
    expect(cycles(folders)).toEqual([]);
  });

  it("enters another folder only through its index.ts", () => {
    const pastIndex = edges.filter(({ from, to }) => {
      const target = folderOf(to);
      if (target === "" || target === folderOf(from)) return false;
      if (to === `${target}/index.ts`) return false;
      return !allowedPastIndex.some((allowed) => allowed.from.test(from) && allowed.to.test(to));
    });
    expect(pastIndex.map(({ from, to }) => `${from} -> ${to}`)).toEqual([]);
  });

  it("lets no capability import from an integration (nor from src/index.ts, which re-exports them)", () => {
    const upward = edges.filter(({ from, to }) => capabilities.includes(folderOf(from)) && (to === "index.ts" || integrations.includes(folderOf(to))));
    expect(upward.map(({ from, to }) => `${from} -> ${to}`)).toEqual([]);
  });

  it("places every folder of src/ in a layer", () => {
    const folders = readdirSync(SRC).filter((name) => statSync(join(SRC, name)).isDirectory());
    expect(folders.filter((folder) => !capabilities.includes(folder) && !integrations.includes(folder))).toEqual([]);
  });

  it("keeps the allow-list free of entries nothing uses", () => {
    const used = allowedPastIndex.filter((allowed) =>
      edges.some(({ from, to }) => folderOf(to) !== folderOf(from) && folderOf(to) !== "" && to !== `${folderOf(to)}/index.ts` && allowed.from.test(from) && allowed.to.test(to)),
    );
    expect(allowedPastIndex.filter((allowed) => !used.includes(allowed)).map(({ why }) => why)).toEqual([]);
  });
});
