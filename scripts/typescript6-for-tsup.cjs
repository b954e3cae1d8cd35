// Preloaded by `npm run build`. TypeScript 7 (the project's `tsc`) ships no compiler API, and
// tsup reads tsconfig through `require("typescript")` before its declaration bundler looks for
// the `@typescript/typescript6` fallback. This hands tsup (and only tsup) TypeScript 6's API.
// Remove it once tsup resolves the fallback everywhere.
const Module = require("node:module");
const { sep } = require("node:path");

const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, parent, ...rest) {
  const fromTsup = parent?.filename?.includes(`${sep}node_modules${sep}tsup${sep}`);
  return resolve.call(this, fromTsup && request === "typescript" ? "@typescript/typescript6" : request, parent, ...rest);
};
