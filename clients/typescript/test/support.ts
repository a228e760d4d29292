// What the tests share: the service under test and the repository's images.
import { readFileSync } from "node:fs";

import { createImageServiceClient, type ClientOptions } from "../src/index.js";

/** The API `scripts/test-ts-client` started, and its admin key. */
export function service(): { baseUrl: string; apiKey: string } {
  const baseUrl = process.env.IMAGE_SERVICE_URL;
  const apiKey = process.env.IMAGE_SERVICE_KEY;
  if (!baseUrl || !apiKey) throw new Error("IMAGE_SERVICE_URL and IMAGE_SERVICE_KEY are required (scripts/test-ts-client sets them)");
  return { baseUrl, apiKey };
}

export function client(options: Partial<ClientOptions> = {}) {
  return createImageServiceClient({ ...service(), ...options });
}

/** A file of the repository's testdata/ (compiled, this file is dist/test/support.js). */
export function testdata(name: string): Uint8Array {
  return new Uint8Array(readFileSync(new URL(`../../../../testdata/${name}`, import.meta.url)));
}

/** The format the bytes are, by their magic numbers. */
export function sniff(bytes: Uint8Array): string {
  const ascii = (from: number, to: number) => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return "jpeg";
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WEBP") return "webp";
  if (bytes[0] === 0x89 && ascii(1, 4) === "PNG") return "png";
  if (ascii(4, 12) === "ftypavif") return "avif";
  return "unknown";
}
