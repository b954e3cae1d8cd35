// Runs before every npm script that executes TypeScript directly: Node strips types from 22.18
// on. The project pins Node 24 as the devDependency `node`, which its install script sets up;
// `npm ci --ignore-scripts` (and pnpm, by default) skip that script, and the system Node runs
// instead. Say so, instead of failing with ERR_UNKNOWN_FILE_EXTENSION.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 18) || major === 23) {
  console.error(
    [
      `This script runs TypeScript directly, which needs Node.js 22.18 or newer; this is Node.js ${process.versions.node}.`,
      "The project pins Node 24 as the devDependency `node`, set up by its install script:",
      "  - npm: run `npm ci` without --ignore-scripts;",
      "  - pnpm: allow the script (`pnpm approve-builds`, or `onlyBuiltDependencies: [node]`), then install again;",
      "  - or put Node 24 on your PATH.",
    ].join("\n"),
  );
  process.exit(1);
}
