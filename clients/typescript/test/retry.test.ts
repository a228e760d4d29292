// Retries, against a scripted server: what the client does when the API
// says "later", and when waiting would not help.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";

import { ApiError, createImageServiceClient } from "../src/index.js";

/** An HTTP answer; `drop` closes the connection without one, `hang` never answers. */
type Answer = { status: number; headers?: Record<string, string>; body?: unknown } | "drop" | "hang";

/** A server answering each request with the next of `answers`, recording what it got. */
async function scripted(answers: Answer[]) {
  const seen: { method: string; url: string; headers: IncomingMessage["headers"]; body: string }[] = [];
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      seen.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers, body });
      const answer = answers[Math.min(seen.length - 1, answers.length - 1)]!;
      if (answer === "hang") return;
      if (answer === "drop") return void request.socket.destroy();
      const isProblem = answer.status >= 400;
      response.writeHead(answer.status, {
        "content-type": isProblem ? "application/problem+json" : "application/json",
        ...answer.headers,
      });
      response.end(JSON.stringify(answer.body ?? {}));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  // closeAllConnections: a hanging request would otherwise keep close() waiting.
  const close = () => new Promise((r) => (server.close(r), server.closeAllConnections()));
  return { baseUrl: `http://127.0.0.1:${port}`, seen, close };
}

const problem = (status: number, code: string) => ({ type: `https://image-service.dev/problems/${code}`, title: "", status, code, detail: code });

describe("retries", () => {
  it("a 503 with Retry-After is retried until the service answers", async () => {
    const unavailable = { status: 503, headers: { "retry-after": "0" }, body: problem(503, "service-unavailable") };
    const server = await scripted([unavailable, unavailable, { status: 200, body: { status: "ok" } }]);
    try {
      const health = await createImageServiceClient({ baseUrl: server.baseUrl, baseDelayMs: 1 }).healthz();

      assert.deepEqual(health, { status: "ok" });
      assert.equal(server.seen.length, 3);
    } finally {
      await server.close();
    }
  });

  it("a connection dropped before the answer is retried", async () => {
    const server = await scripted(["drop", { status: 200, body: { status: "ok" } }]);
    try {
      const health = await createImageServiceClient({ baseUrl: server.baseUrl, baseDelayMs: 1 }).healthz();

      assert.deepEqual(health, { status: "ok" });
      assert.equal(server.seen.length, 2);
    } finally {
      await server.close();
    }
  });

  it("a request the caller aborted is not retried", { timeout: 5_000 }, async () => {
    const server = await scripted(["hang"]);
    try {
      // Backoff this long would make any retry show in the elapsed time.
      const api = createImageServiceClient({ baseUrl: server.baseUrl, baseDelayMs: 5_000 });
      const started = Date.now();

      const call = api.raw.GET("/healthz", { signal: AbortSignal.timeout(100) });

      await assert.rejects(call, (err: unknown) => err instanceof DOMException && err.name === "TimeoutError");
      assert.ok(Date.now() - started < 1_000, "no backoff after the abort");
      assert.equal(server.seen.length, 1);
    } finally {
      await server.close();
    }
  });

  it("a POST's retries carry the same Idempotency-Key and the same body", async () => {
    const bad = { status: 502, body: problem(502, "bad-gateway") };
    const job = { id: "j", image_id: "i", status: "queued", attempts: 0, created_at: "", updated_at: "", links: {} };
    const server = await scripted([bad, { status: 202, body: job }]);
    try {
      const api = createImageServiceClient({ baseUrl: server.baseUrl, apiKey: "k", baseDelayMs: 1 });

      await api.upload(new Uint8Array([1, 2, 3]), { contentType: "image/png" });

      const [first, second] = server.seen;
      assert.ok(first?.headers["idempotency-key"], "a key is sent by default");
      assert.equal(second?.headers["idempotency-key"], first?.headers["idempotency-key"]);
      assert.equal(second?.body, first?.body);
      assert.equal(second?.headers.authorization, "Bearer k");
    } finally {
      await server.close();
    }
  });

  it("a 429 whose Retry-After is past the longest wait is returned at once", { timeout: 5_000 }, async () => {
    const quota = { status: 429, headers: { "retry-after": "3600" }, body: problem(429, "quota-exceeded") };
    const server = await scripted([quota]);
    try {
      const started = Date.now();
      const call = createImageServiceClient({ baseUrl: server.baseUrl, apiKey: "k" }).jobs();

      await assert.rejects(call, (err: unknown) => {
        assert.ok(err instanceof ApiError);
        assert.equal(err.code, "quota-exceeded");
        assert.equal(err.retryAfter, 3600);
        return true;
      });
      assert.equal(server.seen.length, 1, "no retry");
      assert.ok(Date.now() - started < 2000, "no wait");
    } finally {
      await server.close();
    }
  });

  it("a code this client does not know arrives as other, with what was sent", async () => {
    const server = await scripted([{ status: 409, body: problem(409, "brand-new-code") }]);
    try {
      await assert.rejects(createImageServiceClient({ baseUrl: server.baseUrl }).jobs(), (err: unknown) => {
        assert.ok(err instanceof ApiError);
        assert.equal(err.code, "other");
        assert.equal(err.rawCode, "brand-new-code");
        return true;
      });
    } finally {
      await server.close();
    }
  });
});
