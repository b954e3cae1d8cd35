// What the page shows when the service says no, and what the service does with forged possession
// answers sent from the page's own context: a bad token, a file over MAX_UPLOAD_BYTES and a type
// it does not take are each a sentence in the row (never a JSON body, never the token); a replayed
// challenge, another user's challenge, an answer from the media ID alone and one over other ranges
// are each the one 403, and create nothing. And the development token of a service without JWT_SECRET.
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { sampleMp4, samplePng } from "../../examples/sample-media.ts";
import { computeMediaId, MediaStatus } from "../../src/index.ts";
import { signToken } from "../helpers/fixture.ts";
import { filesUnder, makeTempDir } from "../helpers/temp-dir.ts";
import { choose, type Example, MiB, mp4Chunks, openPage, reaches, rowOf, startExample } from "./helpers.ts";

/** The row of `name` once it failed: its message. */
async function failedWith(page: Page, name: string): Promise<string> {
  const row = rowOf(page, name);
  await reaches(row, "error");
  return (await row.locator(".message").textContent()) ?? "";
}

/** An MP4 whose media data is random (as compressed media are): the challenge's ranges are not the media ID's samples. */
const noisyMp4 = (mediaBytes: number) => {
  const [head] = mp4Chunks(mediaBytes);
  return Buffer.concat([head as Uint8Array, randomBytes(mediaBytes)]);
};

async function history(example: Example, id: string): Promise<number[]> {
  const response = await fetch(`${example.annotationsUrl}/api/media/${id}/history`, { headers: { authorization: `Bearer ${await example.token("alice")}` } });
  return response.status === 404 ? [] : ((await response.json()) as Array<{ mediaStatus: number }>).map((h) => h.mediaStatus);
}

describe("the page and the service's refusals", () => {
  it("shows 401, 413 and 415 as plain sentences in the file's row", async () => {
    const example = await startExample({ env: { MAX_UPLOAD_BYTES: String(MiB) } });
    const wrong = await signToken("alice", "another-secret-of-at-least-32-characters!", "5m");
    const page = await openPage(example, wrong);
    const dir = await makeTempDir();
    await writeFile(join(dir, "street.png"), samplePng(40, 30, 1));
    await writeFile(join(dir, "big.mp4"), sampleMp4(2 * MiB, 2));

    await choose(page, join(dir, "street.png"));
    const unauthorized = await failedWith(page, "street.png");
    expect(unauthorized).toMatch(/token/i);
    expect(unauthorized).toContain("(HTTP 401)");
    expect(unauthorized).not.toContain(wrong);

    await page.fill("input[name=token]", await example.token("alice"));
    await choose(page, join(dir, "big.mp4"));
    const tooLarge = await failedWith(page, "big.mp4");
    expect(tooLarge).toMatch(/too large/i);
    expect(tooLarge).toContain("(HTTP 413)");

    // Dropped on the page, as from a file manager.
    const dropped = await page.evaluateHandle(() => {
      const transfer = new DataTransfer();
      transfer.items.add(new File(["just some notes\n"], "notes.txt", { type: "text/plain" }));
      return transfer;
    });
    await page.dispatchEvent("#drop", "drop", { dataTransfer: dropped });
    const unsupported = await failedWith(page, "notes.txt");
    expect(unsupported).toMatch(/not accepted|type/i);
    expect(unsupported).toContain("(HTTP 415)");

    for (const message of [unauthorized, tooLarge, unsupported]) expect(message).not.toMatch(/[{}]/);
    expect((await filesUnder(example.root)).filter((path) => /^(videos|images)\/[^/.][^/]*$/.test(path))).toEqual([]);
  });

  it("refuses forged possession answers sent from the page with the one 403, and creates nothing", async () => {
    const example = await startExample();
    const page = await openPage(example, "");
    const held = noisyMp4(256 * 1024);
    const other = noisyMp4(256 * 1024);
    const [heldId, otherId] = [await computeMediaId(held), await computeMediaId(other)];
    const tokens = { alice: await example.token("alice"), bob: await example.token("bob") };
    // What runs in the page: its fetch, WebCrypto for the answers (docs/possession.md "The digest").
    await page.evaluate(() => {
      const fromB64 = (text: string) => Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));
      const toB64u = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
      type Range = { offset: number; length: number };
      type Challenge = { id: string; nonce: string; ranges: Range[] };
      const post = async (path: string, token: string, body: unknown) => {
        const response = await fetch(path, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
        return { status: response.status, body: await response.json() };
      };
      const digest = async (challenge: Challenge, bytes: Uint8Array, ranges = challenge.ranges) => {
        const parts = [fromB64(challenge.nonce), ...ranges.map(({ offset, length }) => bytes.slice(offset, offset + length))];
        const input = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
        parts.reduce((at, part) => (input.set(part, at), at + part.length), 0);
        return toB64u(new Uint8Array(await crypto.subtle.digest("SHA-256", input)));
      };
      Object.assign(globalThis, { forge: { fromB64, post, digest } });
    });
    const toB64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

    // Alice stores the file (a multipart POST /detect from the page), then proves she holds it.
    const proved = await page.evaluate(
      async ({ file, id, token }) => {
        const { fromB64, post, digest } = (globalThis as any).forge;
        const bytes = fromB64(file);
        const form = new FormData();
        form.append("file", new File([bytes], "survey.mp4"));
        const stored = await fetch("/detect", { method: "POST", headers: { authorization: `Bearer ${token}` }, body: form });
        const challenge = (await post("/possession", token, { mediaId: id, size: bytes.length, name: "survey.mp4" })).body.challenge;
        const answer = await digest(challenge, bytes);
        return { stored: stored.status, challenge, answer, proof: await post(`/possession/${challenge.id}`, token, { digest: answer }) };
      },
      { file: toB64(held), id: heldId, token: tokens.alice },
    );
    expect(proved.stored).toBe(200);
    expect(proved.proof).toMatchObject({ status: 200, body: { media: { id: heldId, userId: "alice", created: false }, detections: expect.any(Array) } });

    const storage = async () => [...(await filesUnder(join(example.root, "videos"))), ...(await filesUnder(join(example.root, "images")))];
    const before = { storage: await storage(), held: await history(example, heldId), other: await history(example, otherId) };
    expect(before.held.at(-1)).toBe(MediaStatus.AIProcessed);
    expect(before.other).toEqual([]);

    const forged = await page.evaluate(
      async ({ file, otherFile, id, otherId, tokens, replay }) => {
        const { fromB64, post, digest } = (globalThis as any).forge;
        const [bytes, otherBytes] = [fromB64(file), fromB64(otherFile)];
        const challenge = async (token: string, mediaId = id, size = bytes.length) => (await post("/possession", token, { mediaId, size, name: "survey.mp4" })).body.challenge;
        const answer = (token: string, challengeId: string, answerDigest: string) => post(`/possession/${challengeId}`, token, { digest: answerDigest });
        // What one who knows only the media ID holds: its three 1 KiB samples, zeros elsewhere.
        const samplesOnly = new Uint8Array(bytes.length);
        for (const start of [0, Math.floor((bytes.length - 1024) / 2), bytes.length - 1024]) samplesOnly.set(bytes.subarray(start, start + 1024), start);
        const alices = await challenge(tokens.alice);
        const bobs = [await challenge(tokens.bob), await challenge(tokens.bob), await challenge(tokens.bob, otherId, otherBytes.length)];
        return {
          replayed: await answer(tokens.alice, replay.challenge.id, replay.answer),
          replayedByAnother: await answer(tokens.bob, replay.challenge.id, replay.answer),
          anotherUsersNonce: await answer(tokens.bob, alices.id, await digest(alices, bytes)),
          theIdAlone: await answer(tokens.bob, bobs[0].id, await digest(bobs[0], samplesOnly)),
          wrongRanges: await answer(tokens.bob, bobs[1].id, await digest(bobs[1], bytes, bobs[1].ranges.map((r: { length: number }) => ({ offset: 0, length: r.length })))),
          notHeld: await answer(tokens.bob, bobs[2].id, await digest(bobs[2], otherBytes)),
        };
      },
      { file: toB64(held), otherFile: toB64(other), id: heldId, otherId, tokens, replay: { challenge: proved.challenge, answer: proved.answer } },
    );
    const refusal = forged.replayed;
    expect(refusal).toMatchObject({ status: 403, body: { error: { code: "POSSESSION_NOT_PROVEN", message: expect.stringContaining("upload the file") } } });
    for (const [name, answer] of Object.entries(forged)) expect(answer, name).toEqual(refusal);

    // Nothing created: no file, no journal entry, no record, no status written.
    expect(await storage()).toEqual(before.storage);
    expect(await history(example, heldId)).toEqual(before.held);
    expect(await history(example, otherId)).toEqual([]);
  });

  it("takes the page's development token when the service runs without JWT_SECRET", async () => {
    const example = await startExample({ secret: null });
    const page = await openPage(example, "");
    await page.getByText("No token? Make a development one").click();
    await page.getByLabel("User ID").fill("zoë");
    await page.getByRole("button", { name: "Use a development token" }).click();
    const png = join(await makeTempDir(), "dev.png");
    await writeFile(png, samplePng(50, 40, 9));
    await choose(page, png);
    const row = rowOf(page, "dev.png");
    await reaches(row, "done");
    const id = await computeMediaId(png);
    const record = await fetch(`${example.direct}/media/${id}`, { headers: { authorization: `Bearer ${await page.inputValue("input[name=token]")}` } });
    expect(await record.json()).toMatchObject({ id, userId: "zoë", mediaStatus: MediaStatus.AIProcessed });
  });
});
