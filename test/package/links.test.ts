// Every relative link of the README and of docs/ resolves inside the packed tarball: the page it
// names is shipped, and the #anchor it names is a heading of that page (GitHub's slugs). A reader
// on npm sees the tarball, not the repository. Links to http(s) addresses are not checked.
import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const run = promisify(execFile);
const root = resolve(import.meta.dirname, "../..");
let directory: string;
/** The unpacked tarball: `package/` as npm packs it. */
let unpacked: string;

beforeAll(async () => {
  directory = await mkdtemp(join(tmpdir(), "media-intake-links-"));
  const { stdout } = await run("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", directory], { cwd: root });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];
  await run("tar", ["-xzf", join(directory, filename), "-C", directory]);
  unpacked = join(directory, "package");
});

afterAll(async () => {
  if (directory) await rm(directory, { recursive: true, force: true });
});

/** A page without its fenced code blocks and inline code, where `[a](b)` is not a link. */
function prose(page: string): string {
  return page.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "").replace(/`[^`\n]*`/g, "");
}

/** The relative links of a page: `[text](target)`, the target without a title. */
function relativeLinks(page: string): string[] {
  return [...prose(page).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)]
    .map((match) => match[1] as string)
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

/** GitHub's anchor of a heading: lowercased, punctuation dropped, spaces as hyphens (github-slugger). */
function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "")
    .replace(/ /g, "-");
}

/** The anchors of a markdown page, repeated headings numbered as GitHub numbers them (`-1`, `-2`). */
function anchors(page: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const match of page.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "").matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const base = slug(match[1] as string);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    found.add(count === 0 ? base : `${base}-${count}`);
  }
  return found;
}

/** Every page whose links are checked: the README and docs/*.md, as the tarball has them. */
async function pages(): Promise<string[]> {
  const docs = await readdir(join(unpacked, "docs"), { recursive: true });
  return ["README.md", ...docs.filter((name) => name.endsWith(".md")).map((name) => `docs/${name.split(sep).join("/")}`)];
}

/** Why a link of `page` does not resolve inside the tarball, or undefined when it does. */
async function brokenBecause(page: string, target: string): Promise<string | undefined> {
  const [pathPart, anchor] = target.split("#", 2) as [string, string | undefined];
  const path = pathPart === "" ? join(unpacked, page) : resolve(dirname(join(unpacked, page)), decodeURIComponent(pathPart));
  const inside = relative(unpacked, path);
  if (inside.startsWith("..") || inside === "") return "points outside the package";
  const found = await stat(path).catch(() => undefined);
  if (!found) return `${inside.split(sep).join("/")} is not in the tarball`;
  if (anchor === undefined || anchor === "") return undefined;
  if (!found.isFile() || !path.endsWith(".md")) return `#${anchor} on a file that is not a markdown page`;
  const known = anchors(await readFile(path, "utf8"));
  return known.has(decodeURIComponent(anchor)) ? undefined : `#${anchor} is not a heading of ${inside.split(sep).join("/")}`;
}

describe("the links of the README and of docs/", () => {
  it("slug headings as GitHub does", () => {
    expect(slug("Several hosts: Redis")).toBe("several-hosts-redis");
    expect(slug("multer: `mediaIntakeStorage(options)`")).toBe("multer-mediaintakestorageoptions");
    expect(slug("Uploads through HTTP: bench:e2e")).toBe("uploads-through-http-benche2e");
    expect(slug("Contract, \"Who may see what\"")).toBe("contract-who-may-see-what");
    expect([...anchors("# A\n\n## B\n\n```md\n## C\n```\n\n## B\n")]).toEqual(["a", "b", "b-1"]);
  });

  it("finds relative links outside code only", () => {
    expect(relativeLinks("[a](docs/a.md) [b](https://x.org) `[c](c.md)`\n```\n[d](d.md)\n```\n[e](#e) [f](g.md#h \"title\")")).toEqual(["docs/a.md", "#e", "g.md#h"]);
  });

  it("resolve inside the packed tarball, each to a shipped page and one of its headings", async () => {
    const checked: string[] = [];
    const broken: string[] = [];
    for (const page of await pages()) {
      for (const target of relativeLinks(await readFile(join(unpacked, page), "utf8"))) {
        checked.push(`${page}: ${target}`);
        const why = await brokenBecause(page, target);
        if (why) broken.push(`${page}: (${target}) ${why}`);
      }
    }
    expect(broken).toEqual([]);
    // The README links its guides: an empty list would mean the parser found nothing.
    expect(checked.filter((link) => link.startsWith("README.md: docs/")).length).toBeGreaterThanOrEqual(10);
  });
});
