// The example app's backend: the only place that holds the image-service key.
//
// It serves the page (index.html, app.js and the thumbhash module) and one
// endpoint, POST /api/uploads, that asks image-service for an upload ticket
// with its key and hands the browser only what the browser needs: where to
// PUT the file, and a signed status URL to wait on. The key never leaves
// this process; the file's bytes never pass through it.
//
//   IMAGE_SERVICE_URL=http://127.0.0.1:8080 IMAGE_SERVICE_KEY=... node server.mjs
//
// PORT (default 3000) and HOST (default 127.0.0.1) say where it listens.
// No framework: node:http is enough for three files and one route.

import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const here = (path) => fileURLToPath(new URL(path, import.meta.url));

const serviceUrl = required('IMAGE_SERVICE_URL').replace(/\/+$/, '');
const serviceKey = required('IMAGE_SERVICE_KEY');
const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '127.0.0.1';

// What the page may fetch: a fixed list, so no path can reach other files.
const files = {
  '/': { path: here('./index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { path: here('./app.js'), type: 'text/javascript; charset=utf-8' },
  // The ThumbHash decoder, an ES module straight from node_modules (npm ci).
  '/vendor/thumbhash.js': { path: here('./node_modules/thumbhash/thumbhash.js'), type: 'text/javascript; charset=utf-8' },
};

// image-service signs uploads of these types only (docs/api.md, "Uploads").
const imageTypes = new Set(['image/jpeg', 'image/png', 'image/webp', 'image/gif', 'image/bmp', 'image/tiff']);

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`error: ${name} must be set (see README.md)`);
    process.exit(2);
  }
  return value;
}

function send(res, status, body, type = 'application/json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
  res.end(text);
}

async function readJson(req, limit = 4096) {
  let size = 0;
  const chunks = [];
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new BadRequest('body too large');
    chunks.push(chunk);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new BadRequest('body is not JSON');
  }
}

class BadRequest extends Error {}

// POST /api/uploads {content_type, content_length} → {upload, status_url}.
// A real app would first check who its user is and whether they may upload;
// this example lets anyone who can reach it upload.
async function createUpload(req, res) {
  const { content_type: contentType, content_length: contentLength } = await readJson(req);
  if (!imageTypes.has(contentType)) throw new BadRequest(`content_type must be one of ${[...imageTypes].join(', ')}`);
  if (!Number.isSafeInteger(contentLength) || contentLength <= 0) {
    throw new BadRequest('content_length must be a positive integer');
  }
  const answer = await fetch(`${serviceUrl}/v1/uploads`, {
    method: 'POST',
    headers: { authorization: `Bearer ${serviceKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ content_type: contentType, content_length: contentLength }),
  });
  const body = await answer.json().catch(() => null);
  if (answer.status === 201 && body?.upload && !body.status_url) {
    // The service signs status URLs with its delivery key; on S3 that is
    // DELIVERY_SIGNING_KEY, and without it the page could not wait for its job.
    console.error('image-service gave no status_url: set DELIVERY_SIGNING_KEY on the service (docs/api.md)');
    send(res, 502, { title: 'the image service gave no status URL', code: 'no-status-url' });
    return;
  }
  if (answer.status !== 201 || !body?.upload) {
    // Pass the service's problem on (its title and code say what was wrong,
    // such as 413 too large), never anything of ours.
    console.error(`image-service answered POST /v1/uploads with ${answer.status}`);
    const status = answer.status >= 400 && answer.status < 500 ? answer.status : 502;
    send(res, status, { title: body?.title ?? 'upload refused', code: body?.code ?? 'upstream-error' });
    return;
  }
  send(res, 201, { upload: body.upload, status_url: body.status_url });
}

async function handle(req, res) {
  const { pathname } = new URL(req.url, 'http://localhost');
  if (pathname === '/api/uploads') {
    if (req.method !== 'POST') return send(res, 405, { title: 'use POST' });
    return createUpload(req, res);
  }
  const file = files[pathname];
  if (!file || (req.method !== 'GET' && req.method !== 'HEAD')) return send(res, 404, { title: 'not found' });
  send(res, 200, await readFile(file.path, 'utf8'), file.type);
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => {
    if (err instanceof BadRequest) return send(res, 400, { title: err.message });
    console.error(`${req.method} ${req.url} failed:`, err);
    if (!res.headersSent) send(res, 500, { title: 'internal error' });
  });
});

server.listen(port, host, () => {
  console.log(`example app on http://${host}:${server.address().port}, uploading to ${serviceUrl}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
