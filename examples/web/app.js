// The page's side of a browser upload (docs/api.md, "Uploads" and "Showing
// images in a web page"):
//
// 1. ask our backend for a ticket (it holds the API key; we never see it);
// 2. PUT the file straight to the ticket's URL: image-service's own signed
//    URL on local disk, a presigned S3 URL on AWS (a cross-origin request
//    either way, allowed by CORS_ALLOWED_ORIGINS or the bucket's CORS rule);
// 3. poll the ticket's status_url (signed, no key, CORS `*`) until the job ends;
// 4. paint the placeholder (the right shape, the dominant colour, the
//    ThumbHash), then the image through `<picture>` (AVIF, then WebP).
//
// document.body.dataset.state follows the steps (idle, uploading,
// processing, done, error), for people and for tools/browser.

import { thumbHashToDataURL } from '/vendor/thumbhash.js';

const POLL_EVERY_MS = 300;
const GIVE_UP_AFTER_MS = 120_000;

const input = document.querySelector('#file');
const statusLine = document.querySelector('#status');
const result = document.querySelector('#result');

function show(state, message) {
  document.body.dataset.state = state;
  statusLine.textContent = message;
}

show('idle', 'Pick a file.');

input.addEventListener('change', () => {
  const [file] = input.files;
  if (!file) return;
  upload(file).catch((err) => {
    console.error('upload failed:', err);
    show('error', `Failed: ${err.message}`);
  });
});

async function upload(file) {
  result.replaceChildren();
  show('uploading', `Uploading ${file.name}…`);
  const ticket = await json(
    await fetch('/api/uploads', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ content_type: file.type, content_length: file.size }),
    }),
    'asking for an upload URL',
  );

  // Every signed header but Content-Length: the browser sets that one from
  // the body, and refuses to let a page set it.
  const headers = Object.fromEntries(
    Object.entries(ticket.upload.headers ?? {}).filter(([name]) => name.toLowerCase() !== 'content-length'),
  );
  const put = await fetch(ticket.upload.url, { method: ticket.upload.method, headers, body: file });
  if (!put.ok) throw new Error(`the upload answered ${put.status}: ${await put.text()}`);
  // Read the (empty) answer to its end: an unread body is cancelled, which
  // the browser reports as a failed request.
  await put.arrayBuffer();

  show('processing', 'Uploaded; resizing…');
  const { job, image } = await waitForJob(ticket.status_url);
  if (job.status !== 'succeeded') throw new Error(`the job ended ${job.status}`);
  await render(image);
  show('done', `Done: ${image.width}×${image.height}, ${image.variants.length} variants.`);
}

async function waitForJob(statusUrl) {
  const deadline = Date.now() + GIVE_UP_AFTER_MS;
  for (;;) {
    const status = await json(await fetch(statusUrl), 'reading the job status');
    if (['succeeded', 'failed', 'dead'].includes(status.job.status)) return status;
    if (Date.now() > deadline) throw new Error(`the job is still ${status.job.status} after ${GIVE_UP_AFTER_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, POLL_EVERY_MS));
  }
}

async function render(image) {
  // First the placeholder: a box of the image's shape, painted with its
  // dominant colour and, over it, the ThumbHash decoded to a tiny PNG.
  const frame = document.createElement('div');
  frame.className = 'frame';
  frame.dataset.role = 'placeholder';
  frame.style.aspectRatio = `${image.width} / ${image.height}`;
  frame.style.backgroundColor = image.placeholder.dominant_colour;
  frame.style.backgroundImage = `url("${thumbHashToDataURL(fromBase64(image.placeholder.thumbhash))}")`;
  result.append(frame);
  // Let the browser paint it before any variant is asked for.
  await nextFrame();

  // Then the image, in a <picture>: one <source> per other format, AVIF
  // first, and an <img> with the WebP srcset (the format every browser
  // decodes) for the rest. The browser takes the first type it can decode,
  // and from it the candidate that fits `sizes` at its pixel density.
  const sizes = '(max-width: 62rem) calc(100vw - 2rem), 60rem'; // the page's column (index.html)
  const types = Object.keys(image.srcset);
  const fallback = types.includes('image/webp') ? 'image/webp' : types[0];
  if (fallback) {
    const picture = document.createElement('picture');
    const preferred = ['image/avif', 'image/webp', 'image/jpeg', 'image/png'];
    const rank = (type) => (preferred.includes(type) ? preferred.indexOf(type) : preferred.length);
    for (const type of types.filter((t) => t !== fallback).sort((a, b) => rank(a) - rank(b))) {
      const source = document.createElement('source');
      source.type = type;
      source.srcset = image.srcset[type];
      source.sizes = sizes;
      picture.append(source);
    }
    const img = document.createElement('img');
    img.srcset = image.srcset[fallback];
    img.sizes = sizes;
    img.src = fallbackSrc(image.srcset[fallback]);
    img.width = image.width;
    img.height = image.height;
    img.decoding = 'async';
    img.alt = '';
    img.dataset.type = fallback;
    picture.append(img);
    frame.append(picture);
  }

  // Every variant on its own, as the API lists them.
  const list = document.createElement('div');
  list.className = 'variants';
  for (const variant of image.variants) {
    const figure = document.createElement('figure');
    const img = document.createElement('img');
    img.src = variant.delivery_url;
    img.width = variant.width;
    img.height = variant.height;
    img.alt = variant.preset;
    const caption = document.createElement('figcaption');
    caption.textContent =
      `${variant.preset}: ${variant.width}×${variant.height}, ${Math.round(variant.bytes / 1024)} KiB, ${variant.mime_type}`;
    figure.append(img, caption);
    list.append(figure);
  }
  result.append(list);
}

// The src for browsers without srcset: the candidate nearest 1024w.
function fallbackSrc(srcset) {
  const candidates = srcset.split(',').map((c) => {
    const [url, width] = c.trim().split(/\s+/);
    return { url, width: parseInt(width, 10) || 0 };
  });
  candidates.sort((a, b) => Math.abs(a.width - 1024) - Math.abs(b.width - 1024));
  return candidates[0].url;
}

async function json(response, doing) {
  if (!response.ok) throw new Error(`${doing}: ${response.status} ${await response.text()}`);
  return response.json();
}

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function nextFrame() {
  // Two frames: the first runs before the paint that shows the box.
  return new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
}
