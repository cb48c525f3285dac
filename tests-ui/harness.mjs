// What the browser tests share: the stack's addresses from scripts/ui-test.sh, assertions, the
// API called directly (setup and checks), one browser with a fresh context per test, and a small
// sequential runner (the last line is `N passed, N failed`). The tests live in pages/, one file
// per page of the UI; run.mjs imports them in the order they run.
import { readFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

const BASE = process.env.BASE_URL;
const ADMIN = process.env.ADMIN_USER || "admin";
const ADMIN_PW = process.env.ADMIN_PASSWORD;
const EVENTS_TOKEN = process.env.EVENTS_TOKEN;
const SHOTS = process.env.SCREENSHOT_DIR;
const LAUNCH_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const T = 15000;
if (!BASE || !ADMIN_PW || !EVENTS_TOKEN || !SHOTS) {
  console.error("run through scripts/ui-test.sh (BASE_URL, ADMIN_PASSWORD, EVENTS_TOKEN, SCREENSHOT_DIR)");
  process.exit(2);
}
mkdirSync(SHOTS, { recursive: true });

export function assert(cond, message) {
  if (!cond) throw new Error("assertion failed: " + message);
}
export function assertEq(a, b, message) {
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${message}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
}

// Direct API calls for setup and for checking what the UI did.
export async function apiCall(method, path, body, auth) {
  const headers = { Authorization: auth || "Basic " + Buffer.from(ADMIN + ":" + ADMIN_PW).toString("base64") };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch (_) {}
  return { status: r.status, json, text };
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: LAUNCH_ARGS, headless: true });
const cspViolations = [];
let lastPage = null;
const pageErrors = [];

export async function newPage(options = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, ...options });
  const page = await context.newPage();
  lastPage = page;
  page.dialogs = [];
  page.on("dialog", (d) => {
    page.dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
  page.on("console", (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.setDefaultTimeout(T);
  return { context, page };
}

export async function login(page, user = ADMIN, password = ADMIN_PW) {
  await page.goto(BASE + "/ui/");
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#nav").waitFor({ state: "visible" });
}

export async function go(page, hash) {
  const target = await page.evaluate((h) => {
    location.hash = h;
    return location.hash;
  }, hash);
  await page.waitForFunction((t) => document.querySelector("#main").dataset.ready === t, target);
}

export async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, name + ".png"), fullPage: true });
}

export async function endpointExists(path) {
  const r = await apiCall("GET", path);
  return !(r.status === 404 && /no such endpoint/i.test(r.json?.message || ""));
}

export { AXE_SOURCE, BASE, ADMIN, ADMIN_PW, EVENTS_TOKEN, cspViolations, pageErrors };

const tests = [];
const lateTests = [];
// Tests run in the order they are declared, file by file in run.mjs's import order.
export const test = (name, fn) => tests.push({ name, fn });
// A test that runs after all the others (in declaration order): what it leaves behind (an empty
// repository, a long audit entry) then shows on no other test's page or screenshot.
export const lateTest = (name, fn) => lateTests.push({ name, fn });

const REGISTRY = process.env.REGISTRY_URL;
const ADMIN_BASIC = "Basic " + Buffer.from(ADMIN + ":" + ADMIN_PW).toString("base64");

// Stores team/app:v1 again as NAME:TAG with an annotation that gives it its own digest: blob
// mounts and one manifest PUT, straight to the registry.
export async function storeVariant(name, tag, variant) {
  const accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";
  const r = await fetch(`${REGISTRY}/v2/team/app/manifests/v1`, { headers: { Authorization: ADMIN_BASIC, Accept: accept } });
  assertEq(r.status, 200, "base manifest");
  const type = r.headers.get("content-type");
  const m = await r.json();
  for (const d of [m.config, ...m.layers]) {
    const mount = await fetch(`${REGISTRY}/v2/${name}/blobs/uploads/?mount=${d.digest}&from=team/app`, { method: "POST", headers: { Authorization: ADMIN_BASIC } });
    assertEq(mount.status, 201, "mount " + d.digest);
  }
  m.annotations = { "ui-test.variant": variant };
  const put = await fetch(`${REGISTRY}/v2/${name}/manifests/${tag}`, { method: "PUT", headers: { Authorization: ADMIN_BASIC, "Content-Type": type }, body: JSON.stringify(m) });
  assertEq(put.status, 201, "PUT " + name + ":" + tag);
}

export async function tagsOf(name) {
  return (await apiCall("GET", `/images/${name}/tags`)).json.tags;
}

export async function runAll() {
  let passed = 0;
  let failed = 0;
  for (const t of [...tests, ...lateTests]) {
    if (process.env.ONLY && !t.name.includes(process.env.ONLY)) continue;
    const started = Date.now();
    try {
      await t.fn();
      passed++;
      console.log(`ok - ${t.name} (${Date.now() - started} ms)`);
    } catch (err) {
      failed++;
      if (lastPage && !lastPage.isClosed()) await lastPage.screenshot({ path: join(process.env.FAILURE_DIR || "/tmp", "ui-failure-" + failed + ".png") }).catch(() => {});
      console.log(`FAIL - ${t.name}\n    ${String(err && err.stack ? err.stack : err).split("\n").slice(0, 4).join("\n    ")}`);
    }
  }
  await browser.close();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}
