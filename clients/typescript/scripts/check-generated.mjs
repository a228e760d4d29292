// Fails when src/schema.ts is not what `npm run generate` makes from
// docs/openapi.json today, so the committed types can't drift from the API.
// It runs the generate script itself (read from package.json, so the flags
// live in one place), writing to a scratch file instead.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const committed = "src/schema.ts";
const generate = JSON.parse(readFileSync("package.json", "utf8")).scripts.generate;
if (!generate.includes(`-o ${committed}`)) {
  throw new Error(`the generate script no longer writes ${committed}: ${generate}`);
}
const scratch = mkdtempSync(join(tmpdir(), "schema-"));
try {
  const fresh = join(scratch, "schema.ts");
  const [bin, ...args] = generate.replace(`-o ${committed}`, `-o ${fresh}`).split(/\s+/);
  execFileSync(join("node_modules", ".bin", bin), args, { stdio: ["ignore", "ignore", "inherit"] });
  if (readFileSync(fresh, "utf8") !== readFileSync(committed, "utf8")) {
    console.error(`${committed} differs from docs/openapi.json: run \`npm run generate\` in clients/typescript and commit it`);
    process.exit(1);
  }
  console.log(`${committed} matches docs/openapi.json`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
