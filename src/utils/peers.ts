// The optional peers (bullmq, ioredis, @tus/server, @tus/file-store): each entry point that needs
// one loads it through here, so that one missing is an error naming the package and its install
// command (`media-intake/queue needs the optional peer dependency "bullmq": npm install bullmq`)
// rather than ERR_MODULE_NOT_FOUND. A static import would fail before any of this package's code
// runs; so the ESM build imports a peer at the top level (`await import`) and the CJS build
// requires it (tsup defines `process.env.MEDIA_INTAKE_FORMAT` per build, and the branch of the
// other format is removed). A module records its peer as loaded or missing; the entry point that
// needs it says so (`needPeers`), once, naming every package it misses.

/** A peer as a module loaded it: the module, or the failure that says it is not installed. */
export interface Peer<T> {
  readonly name: string;
  readonly module: T | undefined;
  readonly missing?: unknown;
}

/** Node's own "not installed" for `name` (ESM `import` and CJS `require` alike), not one of its own dependencies. */
function isNotInstalled(error: unknown, name: string): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") && typeof message === "string" && message.includes(`'${name}'`);
}

/** `load()` (the peer's `import()`, in the module that names it) as a {@link Peer}: any failure but "not installed" is thrown as is. */
export async function importPeer<T>(name: string, load: () => Promise<T>): Promise<Peer<T>> {
  try {
    return { name, module: await load() };
  } catch (error) {
    if (!isNotInstalled(error, name)) throw error;
    return { name, module: undefined, missing: error };
  }
}

/** As {@link importPeer}, for the CJS build: `load()` is the peer's `require()`. */
export function requirePeer<T>(name: string, load: () => T): Peer<T> {
  try {
    return { name, module: load() };
  } catch (error) {
    if (!isNotInstalled(error, name)) throw error;
    return { name, module: undefined, missing: error };
  }
}

/** The error of `needs` (an entry point, or a function and its entry point) without the peers `names`. */
export function missingPeersError(needs: string, names: readonly string[], cause?: unknown): Error {
  const what = names.length === 1 ? `the optional peer dependency "${names[0]}"` : `the optional peer dependencies ${names.map((name) => `"${name}"`).join(" and ")}`;
  const error = new Error(`${needs} needs ${what}: npm install ${names.join(" ")}`, { cause });
  error.name = "MissingPeerDependencyError";
  return error;
}

/** Throws, naming every peer of `peers` that is not installed, that `entry` needs them. */
export function needPeers(entry: string, ...peers: ReadonlyArray<Peer<unknown>>): void {
  const missing = peers.filter((peer) => peer.module === undefined);
  if (missing.length > 0) throw missingPeersError(entry, missing.map((peer) => peer.name), missing[0]?.missing);
}

/** The module of a peer, for `needs` (what calls it: an entry point checked it when it loaded, but a deprecated path may not have). */
export function peerModule<T>(peer: Peer<T>, needs: string): T {
  if (peer.module === undefined) throw missingPeersError(needs, [peer.name], peer.missing);
  return peer.module;
}
