import { join } from "node:path";
import { SignJWT } from "jose";
import type { StorageDirectories } from "../../src/index.ts";
import { createFakeAnnotations, type FakeRequest, type Fault, startFakeAnnotationsServer } from "./fake-annotations.ts";
import { makeTempDir } from "./temp-dir.ts";

/**
 * What a lifecycle test starts from: a fresh temp root with the two storage directories, a
 * fault-injecting fake annotations server on loopback (close it after the test), and a caller's
 * HS256 JWT for `sub`.
 */
export async function startFaultFixture(intercept: (request: FakeRequest) => Fault | undefined, options: { sub?: string; secret?: string } = {}) {
  const root = await makeTempDir();
  const directories: StorageDirectories = { videosDir: join(root, "videos"), imagesDir: join(root, "images") };
  const fake = createFakeAnnotations();
  const service = await startFakeAnnotationsServer(fake, intercept);
  const token = await new SignJWT({ sub: options.sub ?? "user-9" })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("1h")
    .sign(new TextEncoder().encode(options.secret ?? "k".repeat(32)));
  return { root, directories, fake, service, token };
}
