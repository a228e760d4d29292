// The real-browser test of examples/web (issue 21): Debian's chromium,
// driven by playwright-core, uploads testdata/kleiber.jpg through the example
// page and its backend to a real `image-service run`, and checks what a user
// would see.
//
//   node tools/browser/web.test.mjs [embedded] [aws]     (default: both)
//
// Usually through scripts/browser-test, which installs chromium and the npm
// packages first. Scenarios:
//
// - embedded: the all-in-one on its defaults (SQLite, local disk). The page
//   PUTs to the API's own signed upload URL, allowed by CORS_ALLOWED_ORIGINS.
// - aws: the same binary on S3/SQS/SNS/KMS in moto, with the bucket's CORS
//   rule read from terraform/. The page PUTs to a presigned S3 URL.
//
// The page (http://127.0.0.1:P) and the API (http://127.0.0.1:A) are on
// different ports, so every request between them is cross-origin and CORS is
// exercised for real. For each scenario it asserts that:
//
// - the placeholder (the right shape, the dominant colour, the ThumbHash) is
//   in the page before any variant is requested;
// - every <img> loaded (naturalWidth > 0), each variant at its own width,
//   and the <picture> from its AVIF <source> (the service runs WebP and
//   AVIF presets);
// - no delivery request carried an Authorization header, and the API key
//   never reached the browser;
// - nothing went wrong in the console: no console error, uncaught exception,
//   failed request (CORS refusals are both) or 4xx/5xx answer.
//
// It saves $CARGO_TARGET_DIR/browser/web-<scenario>.png and keeps each
// process's log beside it. It exits 1 on any failure, after stopping
// everything it started.

import { mkdir, mkdtemp } from 'node:fs/promises';
import { existsSync, rmSync } from 'node:fs';
import { generateKeyPairSync } from 'node:crypto';
import { tmpdir, homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { Processes, answers200, freePort, run, tail, waitFor } from './support.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const targetDir = process.env.CARGO_TARGET_DIR || join(homedir(), '.cache/image-service/target');
const bin = process.env.IMAGE_SERVICE_BIN || join(targetDir, 'debug/image-service');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const picture = join(root, 'testdata/kleiber.jpg');
const venvPython = join(root, '.venv/test/bin/python');
const motoServer = join(root, '.venv/test/bin/moto_server');
const outDir = join(targetDir, 'browser');

// How long a 20 MP JPEG may take through a debug build on a small machine.
const JOB_TIMEOUT_MS = 120_000;
const DELIVERY_PATH = /^\/(variants|private)\//;

const scenarios = { embedded, aws };

// Each scenario's DATA_DIR, removed when it ends, and on any exit.
const dataDirs = new Set();
async function newDataDir() {
  const dir = await mkdtemp(join(tmpdir(), 'image-service-browser-'));
  dataDirs.add(dir);
  return dir;
}
function removeDataDirs() {
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
  dataDirs.clear();
}

// --- the scenarios' services ------------------------------------------------

// The settings both scenarios share. Nothing is inherited from the caller's
// environment (scripts/test exports AWS settings) but PATH and HOME.
function baseEnv(dataDir, apiPort) {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATA_DIR: dataDir,
    LISTEN_ADDR: `127.0.0.1:${apiPort}`,
    METRICS_ADDR: '127.0.0.1:0',
    // Absolute delivery URLs: without it (and DELIVERY_BASE_URL) they are
    // relative, and the page would resolve them against its own origin.
    PUBLIC_BASE_URL: `http://127.0.0.1:${apiPort}`,
    QUEUE_WAIT_SECS: '1',
    APP_ENV: 'test',
    PRESETS: JSON.stringify(PRESETS),
  };
}

// The default WebP presets and two AVIF ones: the page offers both formats
// in a <picture>, and the browser must decode what the engine wrote.
const PRESETS = [
  { name: 'large', max_edge: 2048, format: 'webp', quality: 80 },
  { name: 'medium', max_edge: 1024, format: 'webp', quality: 80 },
  { name: 'thumb', max_edge: 256, format: 'webp', quality: 60 },
  { name: 'medium-avif', max_edge: 1024, format: 'avif', quality: 60 },
  { name: 'thumb-avif', max_edge: 256, format: 'avif', quality: 50 },
];

// The all-in-one on its embedded defaults. The upload URL is the API's own,
// so the API must answer the page's preflight: CORS_ALLOWED_ORIGINS.
async function embedded({ pageOrigin }) {
  const dataDir = await newDataDir();
  const apiPort = await freePort();
  const env = { ...baseEnv(dataDir, apiPort), CORS_ALLOWED_ORIGINS: pageOrigin };
  return { env, apiPort, uploadOrigin: `http://127.0.0.1:${apiPort}` };
}

// The same binary on the emulator. The upload URL is S3's, so only the
// bucket's CORS rule (terraform/, applied by aws_resources.py) lets the page
// PUT; CORS_ALLOWED_ORIGINS is left unset to show it is not what does.
async function aws({ procs, logs, pageOrigin }) {
  for (const path of [venvPython, motoServer]) {
    if (!existsSync(path)) throw new Error(`${path} is missing; scripts/browser-test installs it`);
  }
  const motoPort = await freePort();
  const endpoint = `http://127.0.0.1:${motoPort}`;
  // moto's server answers every preflight itself (flask-cors, `*`) unless
  // told not to; with this it answers from the bucket's CORS configuration,
  // as S3 does, and aws_resources.py checks that it does.
  const moto = procs.start('moto', motoServer, ['-H', '127.0.0.1', '-p', String(motoPort)], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, MOTO_DISABLE_GLOBAL_CORS: '1' },
    log: join(logs, 'moto.log'),
  });
  await waitFor('moto', () => answers200(`${endpoint}/moto-api/data.json`), { child: moto });
  const credentials = { AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing', AWS_REGION: 'us-east-1' };
  const made = JSON.parse(
    await run(venvPython, [join(root, 'tools/browser/aws_resources.py'), '--endpoint', endpoint, '--origin', pageOrigin], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...credentials },
    }),
  );
  const dataDir = await newDataDir();
  const apiPort = await freePort();
  // On S3 the service keeps no signing key of its own: it signs status and
  // private delivery URLs with CloudFront's (Secrets Manager on AWS). Without
  // one, an upload's status_url is null and a page cannot wait for its job.
  const signingKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' });
  const env = {
    ...baseEnv(dataDir, apiPort), ...credentials, ...made.env,
    DELIVERY_SIGNING_KEY: signingKey, DELIVERY_KEY_ID: 'browser-test',
  };
  return { env, apiPort, uploadOrigin: endpoint };
}

// --- one scenario, end to end -----------------------------------------------

async function runScenario(browser, name) {
  const logs = join(outDir, name);
  await mkdir(logs, { recursive: true });
  const procs = new Processes();
  const failures = [];
  let service;
  try {
    const pagePort = await freePort();
    const pageOrigin = `http://127.0.0.1:${pagePort}`;
    const setup = await scenarios[name]({ procs, logs, pageOrigin });
    const apiOrigin = `http://127.0.0.1:${setup.apiPort}`;

    // A client key, as an integrator makes one (`keys create` migrates the
    // embedded database first, so it runs before the service).
    const key = (await run(bin, ['keys', 'create', '--name', 'browser-test', '--tenant', 'default', '--scope', 'client'], {
      env: setup.env,
    })).trim();
    if (!key) throw new Error('`image-service keys create` printed no key');

    service = procs.start('image-service', bin, ['run'], { env: setup.env, log: join(logs, 'service.log') });
    await waitFor('the API to be ready', () => answers200(`${apiOrigin}/readyz`), { child: service, timeoutMs: 60_000 });

    const backend = procs.start('example backend', process.execPath, [join(root, 'examples/web/server.mjs')], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, IMAGE_SERVICE_URL: apiOrigin, IMAGE_SERVICE_KEY: key, PORT: String(pagePort) },
      log: join(logs, 'backend.log'),
    });
    await waitFor('the example backend', () => answers200(`${pageOrigin}/`), { child: backend });

    const seen = await browse(browser, { pageOrigin, key, screenshot: join(outDir, `web-${name}.png`) });
    check(seen, { pageOrigin, uploadOrigin: setup.uploadOrigin, key }, failures);
    if (!failures.length) {
      console.log(`ok ${name}: ${seen.images.length} images loaded; placeholder after ${ms(seen.watch.placeholder.at)}, ` +
        `first variant requested at ${ms(seen.firstDeliveryStart)}; screenshot ${join(outDir, `web-${name}.png`)}`);
    }
  } catch (err) {
    failures.push(err.message);
  } finally {
    await procs.stopAll();
    removeDataDirs();
  }
  if (failures.length) {
    console.error(`FAIL ${name}:\n${failures.map((f) => `  - ${f}`).join('\n')}`);
    console.error(`  logs in ${logs}`);
    if (service) console.error(`  the service's last lines:\n${await tail(service.log)}`);
  }
  return failures.length === 0;
}

// What the browser did and saw while a user picked the file.
async function browse(browser, { pageOrigin, key, screenshot }) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const seen = { problems: [], requests: [], statuses: [], ticketBodies: [] };
  const pending = [];

  page.on('console', (m) => m.type() === 'error' && seen.problems.push(`console error: ${m.text()}`));
  page.on('pageerror', (err) => seen.problems.push(`uncaught exception: ${err.message}`));
  page.on('requestfailed', (r) => seen.problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  // allHeaders(): what went on the wire, not only what the page set.
  page.on('request', (r) => pending.push(r.allHeaders().catch(() => r.headers())
    .then((headers) => seen.requests.push({ method: r.method(), url: r.url(), headers }))));
  page.on('response', (r) => {
    const { pathname } = new URL(r.url());
    if (r.status() >= 400) seen.problems.push(`${r.status()} for ${r.request().method()} ${r.url()}`);
    if (pathname.startsWith('/v1/status/')) pending.push(r.json().then((body) => seen.statuses.push(body)).catch(() => {}));
    if (pathname === '/api/uploads') pending.push(r.text().then((body) => seen.ticketBodies.push(body)).catch(() => {}));
    if (r.request().method() === 'PUT') seen.put = { url: r.url(), status: r.status() };
  });
  // Watches the DOM from the page's first byte, independently of app.js:
  // when the placeholder box appears, how it is painted, and how many
  // images exist at that moment.
  await page.addInitScript(() => {
    const watch = (window.__watch = { placeholder: null });
    new MutationObserver(() => {
      const box = document.querySelector('[data-role=placeholder]');
      if (box && !watch.placeholder) {
        const style = getComputedStyle(box);
        watch.placeholder = {
          at: performance.now(),
          images: document.images.length,
          colour: style.backgroundColor,
          backgroundImage: style.backgroundImage.slice(0, 40),
        };
      }
    }).observe(document, { childList: true, subtree: true });
  });

  try {
    await page.goto(`${pageOrigin}/`);
    await page.setInputFiles('#file', picture);
    await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state), null, { timeout: JOB_TIMEOUT_MS })
      .catch(async () => { throw new Error(`the page did not finish in ${JOB_TIMEOUT_MS / 1000} s: ${await page.textContent('#status')}`); });
    seen.state = await page.evaluate(() => document.body.dataset.state);
    seen.statusLine = await page.textContent('#status');
    await page.waitForFunction(() => [...document.images].every((img) => img.complete), null, { timeout: 30_000 })
      .catch(() => seen.problems.push('some images had not loaded after 30 s'));
    seen.images = await page.$$eval('img', (imgs) => imgs.map((img) => ({
      src: img.src, currentSrc: img.currentSrc, srcset: img.srcset, naturalWidth: img.naturalWidth, alt: img.alt,
    })));
    seen.watch = await page.evaluate(() => window.__watch);
    seen.frame = await page.$eval('[data-role=placeholder]', (box) => {
      const { width, height } = box.getBoundingClientRect();
      return { width, height };
    }).catch(() => null);
    seen.deliveryStarts = await page.evaluate(() => performance.getEntriesByType('resource')
      .filter((e) => /^\/(variants|private)\//.test(new URL(e.name).pathname)).map((e) => e.startTime));
    seen.firstDeliveryStart = Math.min(...seen.deliveryStarts);
    await page.screenshot({ path: screenshot, fullPage: true });
    await Promise.all(pending);
  } finally {
    await context.close();
  }
  seen.final = seen.statuses.find((s) => s.job?.status === 'succeeded') ?? seen.statuses.at(-1);
  return seen;
}

// Every assertion, each failure a sentence naming what was seen.
function check(seen, { pageOrigin, uploadOrigin, key }, failures) {
  const fail = (message) => failures.push(message);
  if (seen.state !== 'done') fail(`the page ended "${seen.state}": ${seen.statusLine}`);
  const image = seen.final?.image;
  if (!image) {
    fail(`no status answer carried a succeeded job's image (last: ${JSON.stringify(seen.final?.job ?? null)})`);
  }

  // The upload: straight from the browser to the store, cross-origin.
  if (!seen.put) fail('the page made no PUT');
  else {
    if (new URL(seen.put.url).origin !== uploadOrigin) fail(`the PUT went to ${new URL(seen.put.url).origin}, not ${uploadOrigin}`);
    if (new URL(seen.put.url).origin === pageOrigin) fail('the PUT was not cross-origin, so CORS was not tested');
    if (seen.put.status >= 300) fail(`the PUT answered ${seen.put.status}`);
  }

  // The key stays in the backend.
  if (seen.ticketBodies.some((body) => body.includes(key))) fail('the backend handed the API key to the browser');
  const leaked = seen.requests.filter((r) => r.url.includes(key) || Object.values(r.headers).some((v) => v.includes(key)));
  if (leaked.length) fail(`the browser sent the API key: ${leaked.map((r) => r.url).join(', ')}`);

  // The placeholder came first, painted as the API described it.
  const shown = seen.watch?.placeholder;
  if (!shown) fail('the placeholder box never appeared');
  else if (image) {
    const expected = rgb(image.placeholder.dominant_colour);
    if (shown.colour !== expected) fail(`the placeholder's colour was ${shown.colour}, not ${expected} (${image.placeholder.dominant_colour})`);
    if (!shown.backgroundImage.startsWith('url("data:image/png;base64,')) {
      fail(`the placeholder's background-image was not the ThumbHash's PNG: ${shown.backgroundImage}`);
    }
    if (shown.images !== 0) fail(`${shown.images} <img> were already in the page when the placeholder appeared`);
    if (!(shown.at < seen.firstDeliveryStart)) {
      fail(`a variant was requested at ${ms(seen.firstDeliveryStart)}, before the placeholder appeared at ${ms(shown.at)}`);
    }
    if (seen.frame) {
      const ratio = seen.frame.width / seen.frame.height;
      const want = image.width / image.height;
      if (Math.abs(ratio - want) / want > 0.01) fail(`the box's aspect ratio was ${ratio.toFixed(3)}, not ${want.toFixed(3)}`);
    }
  }

  // Every image loaded, the main one from its srcset.
  const images = seen.images ?? [];
  for (const img of images.filter((i) => !(i.naturalWidth > 0))) fail(`<img alt="${img.alt}"> did not load: ${img.currentSrc || img.src}`);
  if (image) {
    if (images.length !== image.variants.length + 1) fail(`${images.length} <img> in the page, want ${image.variants.length + 1}`);
    const main = images.find((i) => i.srcset);
    // Chromium decodes AVIF, so the <picture> shows a candidate of its
    // AVIF <source>.
    const srcset = image.srcset['image/avif'];
    if (!srcset || !image.srcset['image/webp']) fail(`the image has no AVIF and WebP srcsets: ${JSON.stringify(image.srcset)}`);
    else if (!main) fail('no <img srcset> in the page');
    else if (!srcset.split(',').some((c) => c.trim().split(/\s+/)[0] === main.currentSrc)) {
      fail(`the <picture> showed ${main.currentSrc}, which its AVIF srcset does not name`);
    }
    // Every variant, AVIF ones included, decoded at the size the API gives.
    for (const v of image.variants) {
      const shown = images.find((i) => i.alt === v.preset);
      if (shown && shown.naturalWidth !== v.width) fail(`${v.preset} (${v.mime_type}) decoded ${shown.naturalWidth} px wide, not ${v.width}`);
    }
    const formats = new Set(image.variants.map((v) => v.mime_type));
    if (!formats.has('image/avif')) fail(`no AVIF variant: ${[...formats]}`);
    const requested = new Set(seen.requests.map((r) => r.url));
    for (const v of image.variants) if (!requested.has(v.delivery_url)) fail(`the variant ${v.preset} (${v.delivery_url}) was never requested`);
  }

  // Delivery needs no key, and the browser sent none.
  const deliveries = seen.requests.filter((r) => DELIVERY_PATH.test(new URL(r.url).pathname));
  if (!deliveries.length) fail('the browser requested no delivery URL');
  for (const r of deliveries.filter((r) => 'authorization' in r.headers)) fail(`${r.url} was requested with an Authorization header`);

  for (const problem of seen.problems) fail(problem);
}

// `#5b6e8c` as getComputedStyle writes it: `rgb(91, 110, 140)`.
function rgb(hex) {
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return `rgb(${r}, ${g}, ${b})`;
}

function ms(t) {
  return Number.isFinite(t) ? `${Math.round(t)} ms` : String(t);
}

// --- main -------------------------------------------------------------------

async function main() {
  const wanted = process.argv.slice(2);
  const names = wanted.length ? wanted : Object.keys(scenarios);
  const unknown = names.filter((n) => !(n in scenarios));
  if (unknown.length) throw new Error(`unknown scenario ${unknown.join(', ')}; choose from ${Object.keys(scenarios).join(', ')}`);
  for (const [what, path] of [['the image-service binary', bin], ['chromium', chromiumPath], ['the test picture', picture]]) {
    if (!existsSync(path)) throw new Error(`${what} is missing at ${path}`);
  }
  await mkdir(outDir, { recursive: true });
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    // As root (a CI container), chromium starts only without its sandbox.
    args: ['--disable-dev-shm-usage', ...(process.getuid?.() === 0 ? ['--no-sandbox'] : [])],
  });
  let passed = true;
  try {
    for (const name of names) passed = (await runScenario(browser, name)) && passed;
  } finally {
    await browser.close();
  }
  return passed;
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    Processes.killAll();
    process.exit(130);
  });
}
process.on('exit', () => {
  Processes.killAll();
  removeDataDirs();
});

main().then(
  (passed) => { process.exitCode = passed ? 0 : 1; },
  (err) => { console.error(`FAIL: ${err.message}`); process.exitCode = 1; },
);
