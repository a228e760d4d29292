// The client against the real service (scripts/test-ts-client starts it on
// the embedded defaults): what an integrator's code sees.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";

import { ApiError } from "../src/index.js";
import { client, sniff, testdata } from "./support.js";

describe("images", () => {
  it("an upload becomes an image with variants a page can fetch, until it is deleted", async () => {
    const api = client();

    const { job, replayed } = await api.upload(testdata("kleiber.jpg"), {
      contentType: "image/jpeg",
      externalId: `ts-${randomUUID()}`,
      metadata: { album: "holidays" },
    });
    const done = await api.waitForJob(job.id);
    const image = await api.image(done.image_id);

    assert.equal(replayed, false);
    assert.equal(done.status, "succeeded", JSON.stringify(done.error));
    assert.equal(image.format, "jpeg");
    assert.deepEqual(image.metadata, { album: "holidays" });
    assert.ok(image.variants.length > 0, "variants");
    for (const variant of image.variants) {
      assert.ok(variant.width > 0 && variant.height > 0, `${variant.preset} has its size`);
    }
    const first = image.variants[0]!;
    const { bytes, contentType } = await api.variant(image.id, first.preset);
    assert.equal(sniff(bytes), first.format, `${first.preset}'s bytes are ${first.format}`);
    assert.equal(contentType, first.mime_type);

    const listed: string[] = [];
    for await (const each of api.allImages({ limit: 1 })) listed.push(each.id);
    assert.ok(listed.includes(image.id), "every page, walked one at a time, holds it");

    await api.deleteImage(image.id);
    await assert.rejects(api.image(image.id), (err: unknown) => {
      assert.ok(err instanceof ApiError);
      assert.equal(err.status, 404);
      assert.equal(err.code, "not-found");
      assert.ok(err.requestId, "the error names its request for the logs");
      return true;
    });
  });

  it("the same Idempotency-Key answers with the same job, marked replayed", async () => {
    const api = client();
    const idempotencyKey = randomUUID();

    const first = await api.upload(testdata("dice_rgba.png"), { contentType: "image/png", idempotencyKey });
    const again = await api.upload(testdata("dice_rgba.png"), { contentType: "image/png", idempotencyKey });

    assert.equal(again.job.id, first.job.id);
    assert.equal(again.replayed, true);
  });

  it("a presigned upload, ticket then bytes, is processed like any other", async () => {
    const api = client();

    const ticket = await api.uploadPresigned(testdata("orient3.jpg"), { contentType: "image/jpeg" });
    const done = await api.waitForJob(ticket.job.id);

    assert.equal(ticket.job.status, "awaiting_upload");
    assert.equal(done.status, "succeeded", JSON.stringify(done.error));
  });
});

describe("errors", () => {
  const refused = (status: number, code: string) => (err: unknown) => {
    assert.ok(err instanceof ApiError, String(err));
    assert.equal(err.status, status);
    assert.equal(err.code, code);
    return true;
  };

  it("a bad key is unauthorized", async () => {
    await assert.rejects(client({ apiKey: "not-a-key" }).jobs(), refused(401, "unauthorized"));
  });

  it("a text file named .jpg is not an image", async () => {
    const upload = client().upload(testdata("notimage.jpg"), { contentType: "image/jpeg" });
    await assert.rejects(upload, refused(415, "unsupported-media-type"));
  });

  it("a malformed id is a bad request", async () => {
    await assert.rejects(client().job("not-a-uuid"), refused(400, "bad-request"));
  });

  it("an unknown tenant is not found", async () => {
    await assert.rejects(client({ tenant: "no-such-tenant" }).jobs(), refused(404, "not-found"));
  });

  it("a reprocess of a preset that does not exist is unprocessable", async () => {
    await assert.rejects(client().reprocess({ preset: "poster", dry_run: true }), refused(422, "unprocessable"));
  });
});

describe("admin", () => {
  it("dry runs of the replays and reprocessing report what they would do", async () => {
    const api = client();

    const dlq = await api.replayDlq({ dry_run: true });
    const jobs = await api.replayJobs({ dry_run: true, statuses: ["failed", "dead"] });
    const reprocess = await api.reprocess({ preset: "thumb", dry_run: true });

    assert.deepEqual(
      [dlq, jobs, reprocess].map(({ operation, dry_run }) => [operation, dry_run]),
      [["replay dlq", true], ["replay jobs", true], ["reprocess", true]],
    );
    assert.equal(dlq.counts.would_move, 0, "nothing is dead-lettered on a fresh service");
  });
});

describe("health", () => {
  it("the service is alive and ready", async () => {
    const api = client({ apiKey: undefined });

    assert.deepEqual(await api.healthz(), { status: "ok" });
    const ready = await api.readyz();
    assert.equal(ready.ready, true);
    assert.deepEqual(ready.checks, { database: true, queue: true, store: true });
  });
});
