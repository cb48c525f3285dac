// Benchmark of the web UI (run by `scripts/ui-test.sh bench`, which seeds 2,000 repositories):
// how long until the repositories page is usable in headless chromium — from navigation start
// until the list is rendered and counted — and how many bytes the UI's files weigh. Prints
// markdown rows in the format of scripts/bench.sh.
import { readdirSync, statSync } from "node:fs";
import { join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const BASE = process.env.BASE_URL;
const ADMIN = process.env.ADMIN_USER || "admin";
const PW = process.env.ADMIN_PASSWORD;
const RUNS = 7;
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const basic = "Basic " + Buffer.from(ADMIN + ":" + PW).toString("base64");
const { token } = await (await fetch(BASE + "/auth/token", { method: "POST", headers: { Authorization: basic } })).json();
const catalog = await (await fetch(BASE + "/images", { headers: { Authorization: "Bearer " + token } })).json();
const repos = catalog.repositories.length;

// Reference: the API call the page makes, timed from here.
const apiTimes = [];
for (let i = 0; i < RUNS; i++) {
  const t = performance.now();
  await (await fetch(BASE + "/images", { headers: { Authorization: "Bearer " + token } })).json();
  apiTimes.push(performance.now() - t);
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ARGS, headless: true });
const times = [];
const filterTimes = [];
const requestStart = [];
const apiInPage = [];
const renderInPage = [];
let pageBytes = 0;
for (let i = 0; i < RUNS; i++) {
  const context = await browser.newContext();
  await context.addInitScript((t) => {
    sessionStorage.setItem("registry-admin.token", t);
    sessionStorage.setItem("registry-admin.user", "admin");
    sessionStorage.setItem("registry-admin.role", "admin");
  }, token);
  const page = await context.newPage();
  const bodies = [];
  page.on("response", (r) => {
    if (new URL(r.url()).pathname.startsWith("/ui/")) bodies.push(r.body().then((b) => b.length).catch(() => 0));
  });
  await page.goto(BASE + "/ui/#/repos");
  await page.waitForFunction((n) => document.querySelector("#repo-count")?.textContent === n + " repositories" && document.querySelector("#main").dataset.ready, repos, { timeout: 30000 });
  const marks = await page.evaluate(() => Object.fromEntries(performance.getEntriesByType("mark").map((m) => [m.name, m.startTime])));
  // Usable: the links are in the document, counted, and the filter box answers (measured in the
  // page, so the test driver's polling does not add to it).
  times.push(marks["ui:repos-rendered"]);
  requestStart.push(marks["ui:repos-request"]);
  apiInPage.push(marks["ui:repos-response"] - marks["ui:repos-request"]);
  renderInPage.push(marks["ui:repos-rendered"] - marks["ui:repos-response"]);
  // One keystroke's worth of filtering, through style and layout (forced by reading a size).
  filterTimes.push(
    await page.evaluate(() => {
      const box = document.querySelector("#repo-filter");
      const t = performance.now();
      box.value = "repo-19";
      box.dispatchEvent(new Event("input"));
      void document.querySelector("#main").offsetHeight;
      return performance.now() - t;
    }),
  );
  if (!/^100 of /.test(await page.locator("#repo-count").textContent())) throw new Error("filter did not narrow to 100");
  pageBytes = (await Promise.all(bodies)).reduce((a, b) => a + b, 0);
  await context.close();
}
await browser.close();

// Every embedded file, as served: build.rs embeds every file under ui/ but hidden ones.
const uiDir = fileURLToPath(new URL("../ui/", import.meta.url));
const files = readdirSync(uiDir, { recursive: true }).filter((f) => !f.split(sep).some((p) => p.startsWith(".")) && statSync(join(uiDir, f)).isFile());
let total = 0;
for (const f of files) {
  const r = await fetch(BASE + "/ui/" + f.split(sep).join("/"));
  if (!r.ok) throw new Error("/ui/" + f + ": " + r.status);
  total += (await r.arrayBuffer()).byteLength;
}
const ms = (x) => x.toFixed(0) + " ms";
const kib = (x) => (x / 1024).toFixed(1) + " KiB";
console.log("| figure | value | reference | ratio | target |");
console.log("|---|---|---|---|---|");
const t = median(times);
const a = median(apiTimes);
console.log(`| ui: repositories page usable, ${repos} repositories (median of ${RUNS}) | ${ms(t)} | GET /images alone ${ms(a)} | ${(t / a).toFixed(1)} | ≤ 1000 ms |`);
console.log(`| ui: of which: page start until GET /images is sent | ${ms(median(requestStart))} | — | — | — |`);
console.log(`| ui: of which: GET /images seen from the page | ${ms(median(apiInPage))} | — | — | — |`);
console.log(`| ui: of which: rendering ${repos} links grouped by namespace | ${ms(median(renderInPage))} | — | — | — |`);
console.log(`| ui: filter ${repos} repositories to 100, with layout (median of ${RUNS}) | ${ms(median(filterTimes))} | — | — | — |`);
console.log(`| ui: bytes loaded by the repositories page | ${kib(pageBytes)} | — | — | — |`);
console.log(`| ui: all embedded assets (incl. Swagger UI) | ${kib(total)} | — | — | — |`);
if (t > 1000) console.error("note: the repositories page took longer than the 1 s target");
