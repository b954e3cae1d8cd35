// What an integration test starts from, in one place: a fresh temp root with the two storage
// directories, an annotations service on loopback (our fault-injecting fake, or the dev server),
// a caller's HS256 JWT, the client a host would run, and the cleanup after each test.
import { join } from "node:path";
import { SignJWT } from "jose";
import { afterEach, beforeEach } from "vitest";
import { type DevAnnotationsServer, startDevAnnotationsServer } from "../../src/dev-server/index.ts";
import { type AnnotationsClientOptions, createAnnotationsClient, type StorageDirectories } from "../../src/index.ts";
import { createFakeAnnotations, type FakeAnnotations, type FakeRequest, type Fault, startFakeAnnotationsServer } from "./fake-annotations.ts";
import { makeTempDir } from "./temp-dir.ts";

/** The HS256 secret a fixture signs with when the test names none. */
export const defaultSecret = "k".repeat(32);

/** A caller's HS256 JWT for `sub`, signed with `secret`, expiring after `expiresIn` (jose's form: "5m", or seconds since the epoch). */
export function signToken(sub: string, secret = defaultSecret, expiresIn: string | number = "1h"): Promise<string> {
  return new SignJWT({ sub }).setProtectedHeader({ alg: "HS256" }).setExpirationTime(expiresIn).sign(new TextEncoder().encode(secret));
}

/** The two storage directories under `root`, as the examples lay them out. */
export const storageDirectoriesIn = (root: string): StorageDirectories => ({ videosDir: join(root, "videos"), imagesDir: join(root, "images") });

export interface FaultFixtureOptions {
  /** The caller's JWT subject. @default "user-9" */
  sub?: string;
  /** The JWT secret. @default defaultSecret */
  secret?: string;
}

/**
 * A fresh temp root with the two storage directories, a fault-injecting fake annotations server
 * on loopback (close it after the test), and a caller's HS256 JWT for `sub`. For a test that
 * needs one on its own; a file whose every test needs one calls {@link useFaultFixture}.
 */
export async function startFaultFixture(intercept: (request: FakeRequest) => Fault | undefined, options: FaultFixtureOptions = {}) {
  const root = await makeTempDir();
  const directories = storageDirectoriesIn(root);
  const fake = createFakeAnnotations();
  const service = await startFakeAnnotationsServer(fake, intercept);
  const token = await signToken(options.sub ?? "user-9", options.secret);
  return { root, directories, fake, service, token };
}

/** What each test of a file that calls {@link useFaultFixture} finds, fresh for each test. */
export interface FaultFixture {
  root: string;
  directories: StorageDirectories;
  fake: FakeAnnotations;
  service: { url: string; close: () => Promise<void> };
  /** The caller's JWT. */
  token: string;
  /** The test's fault in the annotations service: sees each request first (`undefined` before each test). */
  intercept: ((request: FakeRequest) => Fault | undefined) | undefined;
  /** The client a host would run against the service, with the service's own token ("service-token") unless `options` says otherwise. */
  client(options?: Omit<AnnotationsClientOptions, "baseUrl">): ReturnType<typeof createAnnotationsClient>;
}

/**
 * Gives every test of the calling file a fresh {@link startFaultFixture}: started before each test
 * (before the file's own `beforeEach` hooks that come after this call), its service closed after
 * each test (after the file's own `afterEach` hooks), its temp root removed after that.
 */
export function useFaultFixture(options: FaultFixtureOptions = {}): FaultFixture {
  const fixture = {
    intercept: undefined,
    client: (clientOptions = {}) => createAnnotationsClient({ baseUrl: fixture.service.url, token: "service-token", ...clientOptions }),
  } as FaultFixture;
  beforeEach(async () => {
    fixture.intercept = undefined;
    Object.assign(fixture, await startFaultFixture((request) => fixture.intercept?.(request), options));
  });
  afterEach(() => fixture.service.close());
  return fixture;
}

/** What each test of a file that calls {@link useDevFixture} finds, fresh for each test. */
export interface DevFixture {
  root: string;
  directories: StorageDirectories;
  /** The dev annotations server, its database in `root`, checking tokens against the secret. */
  annotations: DevAnnotationsServer;
  /** The caller's JWT. */
  token: string;
  /** A JWT for the service itself ("detections-service"), for its client. */
  serviceToken: string;
}

/**
 * Gives every test of the calling file a fresh temp root with the two storage directories, the dev
 * annotations server (its database at `root/annotations.db`, HS256 with `secret`), and JWTs for
 * the caller (`sub`) and the service, valid 5 minutes. The server is closed after each test
 * (after the file's own `afterEach` hooks), the temp root removed after that.
 */
export function useDevFixture(options: { secret: string; sub?: string }): DevFixture {
  const fixture = {} as DevFixture;
  beforeEach(async () => {
    const root = await makeTempDir();
    const annotations = await startDevAnnotationsServer({ dbPath: join(root, "annotations.db"), jwtSecret: options.secret });
    Object.assign(fixture, {
      root,
      directories: storageDirectoriesIn(root),
      annotations,
      token: await signToken(options.sub ?? "alice", options.secret, "5m"),
      serviceToken: await signToken("detections-service", options.secret, "5m"),
    });
  });
  afterEach(() => fixture.annotations.close());
  return fixture;
}
