import { http, HttpResponse } from "msw";
import { createFakeAnnotations, type FakeAnnotations } from "./fake-annotations.ts";

export const MOCK_BASE_URL = "http://annotations.test";

/** msw handlers that answer like the fake service at MOCK_BASE_URL. */
export function annotationsHandlers(fake: FakeAnnotations = createFakeAnnotations()) {
  return [
    http.all(`${MOCK_BASE_URL}/*`, async ({ request }) => {
      const answer = fake.handle({
        method: request.method,
        path: new URL(request.url).pathname,
        authorization: request.headers.get("authorization"),
        body: await request.text(),
      });
      if (answer.body === undefined) return new HttpResponse(null, { status: answer.status });
      return HttpResponse.json(answer.body, {
        status: answer.status,
        headers: { "content-type": answer.contentType ?? "application/json; charset=utf-8" },
      });
    }),
  ];
}
