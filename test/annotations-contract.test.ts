import { setupServer } from "msw/node";
import { afterAll, beforeAll } from "vitest";
import { startFakeAnnotationsServer, createFakeAnnotations } from "./helpers/fake-annotations.ts";
import { describeMediaApiContract } from "./helpers/media-contract.ts";
import { annotationsHandlers, MOCK_BASE_URL } from "./helpers/msw-annotations.ts";

const acceptToken = (token: string) => token === "good-token";

// 1. The msw handlers the unit tests use.
const mock = setupServer(...annotationsHandlers(createFakeAnnotations({ acceptToken })));
describeMediaApiContract("msw handlers", () => ({ baseUrl: MOCK_BASE_URL, token: "good-token", badToken: "secret-bad-token" }));

// 2. The same service on a real loopback port.
let loopback: Awaited<ReturnType<typeof startFakeAnnotationsServer>>;
describeMediaApiContract("loopback HTTP server", () => ({ baseUrl: loopback.url, token: "good-token", badToken: "secret-bad-token" }));

beforeAll(async () => {
  mock.listen({ onUnhandledFrame: "bypass" });
  loopback = await startFakeAnnotationsServer(createFakeAnnotations({ acceptToken }));
});
afterAll(async () => {
  mock.close();
  await loopback.close();
});
