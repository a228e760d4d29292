// The sharp side of scripts/bench-compare: the same job as `bench run`.
//
//   node bench.js --format webp|jpeg|avif [--effort N] [--quality Q] [--out DIR] FILE...
//   node bench.js --to-png DIR...
//
// Reads every file into memory, then times one pass: decode once (auto-orient,
// shrink-on-load to 2048), then cascade 2048 -> 1024 -> 256 from the previous
// raw size, encoding each at quality 80 (AVIF: sharp's default, 50) with
// metadata stripped (sharp's default). One thread: sharp.concurrency(1); run
// it with UV_THREADPOOL_SIZE=1.
//
// `--to-png` writes a PNG beside every AVIF file in each DIR, decoded by
// sharp's libheif, for the DSSIM step (the engine has no AVIF decoder).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const sharp = require('sharp');

sharp.concurrency(1);
sharp.cache(false);

function parse(argv) {
  const opts = { format: 'webp', effort: null, quality: null, out: null, toPng: false, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--format') opts.format = argv[++i];
    else if (a === '--effort') opts.effort = Number(argv[++i]);
    else if (a === '--quality') opts.quality = Number(argv[++i]);
    else if (a === '--out') opts.out = argv[++i];
    else if (a === '--to-png') opts.toPng = true;
    else opts.files.push(a);
  }
  return opts;
}

function encoder(opts) {
  switch (opts.format) {
    case 'webp': return (img) => img.webp({ quality: opts.quality ?? 80, effort: opts.effort ?? 4 });
    case 'avif': return (img) => img.avif({ quality: opts.quality ?? 50, effort: opts.effort ?? 4 });
    default: return (img) => img.jpeg({ quality: opts.quality ?? 80 });
  }
}

async function toPng(dirs) {
  for (const dir of dirs) {
    for (const name of fs.readdirSync(dir).filter((n) => n.endsWith('.avif'))) {
      await sharp(path.join(dir, name)).png().toFile(path.join(dir, name.replace(/\.avif$/, '.png')));
    }
  }
}

async function job(input, encode) {
  const outputs = [];
  let raw = await sharp(input)
    .rotate()
    .resize(2048, 2048, { fit: 'inside', withoutEnlargement: true })
    .raw()
    .toBuffer({ resolveWithObject: true });
  for (const edge of [2048, 1024, 256]) {
    if (Math.max(raw.info.width, raw.info.height) > edge) {
      raw = await sharp(raw.data, { raw: raw.info })
        .resize(edge, edge, { fit: 'inside' })
        .raw()
        .toBuffer({ resolveWithObject: true });
    }
    outputs.push(await encode(sharp(raw.data, { raw: raw.info })).toBuffer());
  }
  return outputs;
}

async function main() {
  const opts = parse(process.argv.slice(2));
  if (opts.toPng) return toPng(opts.files);
  const inputs = opts.files.map((f) => [f, fs.readFileSync(f)]);
  const encode = encoder(opts);
  const medium = [];
  let bytes = 0;
  const started = process.hrtime.bigint();
  for (const [file, input] of inputs) {
    const outputs = await job(input, encode);
    for (const o of outputs) bytes += o.length;
    medium.push([file, outputs[1]]);
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`RESULT engine=sharp format=${opts.format} effort=${opts.effort ?? 'default'} images=${inputs.length} seconds=${seconds.toFixed(4)} bytes=${bytes}`);
  if (opts.out) {
    fs.mkdirSync(opts.out, { recursive: true });
    const ext = { webp: 'webp', avif: 'avif' }[opts.format] ?? 'jpg';
    for (const [file, data] of medium) {
      fs.writeFileSync(path.join(opts.out, `${path.parse(file).name}.1024.${ext}`), data);
    }
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
