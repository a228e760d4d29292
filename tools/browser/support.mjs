// What the browser test needs around the browser: free ports, child
// processes that are always stopped, and waits that fail with a reason.

import { spawn, execFile } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { promisify } from 'node:util';

// A port nothing listens on right now. Another process may take it before
// the caller binds it; the caller's readiness wait then fails loudly.
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

// Runs a command to its end; its stdout, or an error carrying its stderr.
export async function run(command, args, options = {}) {
  try {
    const { stdout } = await promisify(execFile)(command, args, { maxBuffer: 1 << 20, timeout: 120_000, ...options });
    return stdout;
  } catch (err) {
    throw new Error(`${command} ${args.join(' ')} failed (${err.code ?? err.signal}): ${err.stderr?.trim() || err.message}`);
  }
}

// The long-running processes of one scenario, each logging to its own file.
// stopAll() ends them all; an exit before that is an error the waits report.
export class Processes {
  static #all = new Set();

  #children = [];

  // Starts `command`; its output goes to `log`.
  start(name, command, args, { env, log }) {
    const out = createWriteStream(log);
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(out);
    child.stderr.pipe(out);
    const entry = { name, child, log, exit: null };
    entry.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        entry.exit = signal ?? `exit code ${code}`;
        resolve();
      });
      child.on('error', (err) => {
        entry.exit = `could not start: ${err.message}`;
        resolve();
      });
    });
    this.#children.push(entry);
    Processes.#all.add(entry);
    return entry;
  }

  // SIGTERM to each, SIGKILL to any still running after `graceMs`.
  async stopAll(graceMs = 5000) {
    const running = this.#children.filter((e) => e.exit === null);
    for (const entry of running) entry.child.kill('SIGTERM');
    const timer = setTimeout(() => running.forEach((e) => e.exit === null && e.child.kill('SIGKILL')), graceMs);
    await Promise.all(running.map((e) => e.exited));
    clearTimeout(timer);
    this.#children.forEach((e) => Processes.#all.delete(e));
    this.#children = [];
  }

  // Last resort, when the test itself is ending: kill whatever is left, now.
  static killAll() {
    for (const entry of Processes.#all) if (entry.exit === null) entry.child.kill('SIGKILL');
  }
}

// Polls `probe` (truthy: done) every 100 ms until `timeoutMs`; fails early
// when `child` (a Processes entry) has exited.
export async function waitFor(what, probe, { timeoutMs = 30_000, child } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    if (child?.exit) throw new Error(`${child.name} exited (${child.exit}) while waiting for ${what}; see ${child.log}\n${await tail(child.log)}`);
    try {
      if (await probe()) return;
    } catch (err) {
      last = err.cause?.code ?? err.message;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what} (${last})`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// Whether GET `url` answers 200.
export async function answers200(url) {
  const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
  await response.arrayBuffer();
  return response.status === 200;
}

// The last `lines` lines of a file, indented, for a failure message.
export async function tail(path, lines = 25) {
  const text = await readFile(path, 'utf8').catch(() => '');
  return text.trimEnd().split('\n').slice(-lines).map((line) => `    | ${line}`).join('\n');
}
