// Browser tests of the web UI: playwright-core drives Debian's chromium against the stack that
// scripts/ui-test.sh starts (real registry:2, real binary). A small sequential runner: each test
// gets a fresh browser context; the last line is `N passed, N failed`.
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

function assert(cond, message) {
  if (!cond) throw new Error("assertion failed: " + message);
}
function assertEq(a, b, message) {
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error(`${message}: expected ${JSON.stringify(b)}, got ${JSON.stringify(a)}`);
}

// Direct API calls for setup and for checking what the UI did.
async function apiCall(method, path, body, auth) {
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

async function newPage(options = {}) {
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

async function login(page, user = ADMIN, password = ADMIN_PW) {
  await page.goto(BASE + "/ui/");
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#nav").waitFor({ state: "visible" });
}

async function go(page, hash) {
  const target = await page.evaluate((h) => {
    location.hash = h;
    return location.hash;
  }, hash);
  await page.waitForFunction((t) => document.querySelector("#main").dataset.ready === t, target);
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, name + ".png"), fullPage: true });
}

async function endpointExists(path) {
  const r = await apiCall("GET", path);
  return !(r.status === 404 && /no such endpoint/i.test(r.json?.message || ""));
}

const tests = [];
const test = (name, fn) => tests.push({ name, fn });

test("signing in with a wrong password shows the API's message and never the browser's dialog", async () => {
  // A context with HTTP credentials: if any request ever got a Basic challenge with credentials
  // allowed, chromium would answer it with these, and the audit log would show this name.
  const { context, page } = await newPage({ httpCredentials: { username: "dialog-trap", password: "dialog-trap-password" } });
  const apiRequests = [];
  page.on("request", async (req) => {
    const u = new URL(req.url());
    if (!u.pathname.startsWith("/ui") && u.pathname !== "/") apiRequests.push({ path: u.pathname, auth: (await req.allHeaders())["authorization"] || "" });
  });
  await page.goto(BASE + "/ui/");
  await shot(page, "login");
  await page.getByLabel("Username").fill(ADMIN);
  await page.getByLabel("Password").fill("wrong-password-1");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#login-status.error").waitFor();
  const msg = await page.locator("#login-status").textContent();
  assert(msg.length > 5 && !/^401/.test(msg), "an API message, got " + msg);
  // A stale token: the first API call is a 401, and the UI goes back to the form with a note.
  await login(page);
  await page.evaluate(() => sessionStorage.setItem("registry-admin.token", "ra1.stale.token"));
  await page.reload();
  await page.locator("#login-status.error").waitFor();
  assert(/session has ended/i.test(await page.locator("#login-status").textContent()), "session-ended note");
  assertEq(page.dialogs, [], "no dialogs");
  const trapped = await apiCall("GET", "/audit?user=dialog-trap");
  assertEq(trapped.status, 200, "audit query");
  assertEq(trapped.json.entries.length, 0, "requests answered with the context's Basic credentials");
  const bad = apiRequests.filter((r) => (r.path === "/auth/token" ? !r.auth.startsWith("Basic ") : !r.auth.startsWith("Bearer ")));
  assertEq(bad, [], "every API request carries the bearer (the login carries Basic)");
  assert(apiRequests.length >= 3, "some API requests were seen");
  await context.close();
});

test("an admin signs in with the keyboard alone and sees the repositories grouped, counted and filterable", async () => {
  const { context, page } = await newPage();
  await page.goto(BASE + "/ui/");
  await page.locator("#login-user").waitFor();
  assertEq(await page.evaluate(() => document.activeElement.id), "login-user", "focus starts on the username");
  await page.keyboard.type(ADMIN);
  await page.keyboard.press("Tab");
  await page.keyboard.type(ADMIN_PW);
  await page.keyboard.press("Enter");
  await page.locator("#repo-count").waitFor();
  assertEq(await page.locator("#repo-count").textContent(), "4 repositories", "count");
  const groups = await page.locator(".groups section h2").allTextContents();
  assertEq(groups, ["library/", "team/", "(top level)"], "namespaces");
  await shot(page, "repositories");
  await page.getByLabel("Filter repositories").fill("team/");
  assertEq(await page.locator("#repo-count").textContent(), "2 of 4 repositories", "filtered count");
  assertEq(await page.locator(".groups li:visible").allTextContents(), ["team/app", "team/multi"], "filtered list");
  // Focus is visible: the focused link has an outline.
  await page.locator(".groups li:visible a").first().focus();
  const outline = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  assert(outline !== "none", "visible focus outline");
  await page.keyboard.press("Enter");
  await page.locator("tr[data-tag]").first().waitFor();
  assertEq(await page.locator("h1").textContent(), "team/app", "keyboard navigation into the repository");
  assertEq(page.dialogs, [], "no dialogs");
  await context.close();
});

test("a repository's tags are sorted with digest, size, platforms and created loaded per tag", async () => {
  const { context, page } = await newPage();
  await login(page);
  await go(page, "#/repo?name=team/multi");
  await page.locator("tr[data-tag='1.0'] td").nth(2).filter({ hasText: "linux" }).waitFor();
  assertEq(await page.locator("tr[data-tag='1.0'] td").nth(2).textContent(), "linux/amd64, linux/arm64/v8", "platforms of the index");
  await go(page, "#/repo?name=team/app");
  assertEq(await page.locator("tr[data-tag] th").allTextContents(), ["latest", "stable", "v1", "v2"], "tags sorted");
  await page.waitForFunction(() => [...document.querySelectorAll("tr[data-tag] td.num")].every((td) => /B$/.test(td.textContent)));
  const digests = await page.locator("tr[data-tag] td.mono span").allTextContents();
  assertEq(digests.length, 4, "a digest per tag");
  assertEq(digests[0], digests[2], "latest and v1 share a digest");
  assert(digests[0] !== digests[3], "v2 differs");
  assertEq(await page.locator("tr[data-tag='v1'] td").nth(3).textContent(), "2026-03-01 10:00:00Z", "created");
  await shot(page, "tags");
  await context.close();
});

test("an image's details show platforms, layers and pull commands that copy to the clipboard", async () => {
  const { context, page } = await newPage();
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: BASE });
  await login(page);
  await go(page, "#/image?name=team/app&tag=v1");
  const pull = await page.locator("#pull-tag").textContent();
  assertEq(pull, "docker pull registry.example.test:5000/team/app:v1", "pull by tag");
  assert(/^docker pull registry\.example\.test:5000\/team\/app@sha256:[0-9a-f]{64}$/.test(await page.locator("#pull-digest").textContent()), "pull by digest");
  assertEq(await page.locator("main table tbody tr").count(), 2, "two layers");
  await page.getByRole("button", { name: "Copy pull command by tag" }).click();
  await page.waitForFunction(() => document.querySelector("[aria-label='Copy pull command by tag']").dataset.copied);
  assertEq(await page.evaluate(() => navigator.clipboard.readText()), pull, "clipboard holds the pull command");
  await page.getByRole("button", { name: "Copy pull command by digest" }).click();
  await page.waitForFunction(() => document.querySelector("[aria-label='Copy pull command by digest']").dataset.copied === "yes");
  assertEq(await page.evaluate(() => navigator.clipboard.readText()), await page.locator("#pull-digest").textContent(), "clipboard holds the digest command");
  await shot(page, "image");
  await go(page, "#/image?name=team/multi&tag=1.0");
  assertEq(await page.locator("main h3").allTextContents().then((t) => t.map((x) => x.split(" · ")[0])), ["linux/amd64", "linux/arm64/v8"], "platforms");
  await context.close();
});

test("deleting a tag that has siblings names them in the confirmation and they stay", async () => {
  const { context, page } = await newPage();
  await login(page);
  await go(page, "#/image?name=team/app&tag=latest");
  // Cancel first: nothing is deleted.
  await page.locator("#delete-tag").click();
  await page.locator("#dialog[open] #dialog-siblings").waitFor();
  assertEq(await page.locator("#dialog-siblings li").allTextContents(), ["stable", "v1"], "siblings named");
  await shot(page, "delete-confirmation");
  await page.keyboard.press("Escape");
  await page.locator("#dialog").waitFor({ state: "hidden" });
  assertEq((await apiCall("GET", "/images/team/app/tags")).json.tags, ["latest", "stable", "v1", "v2"], "cancel deletes nothing");
  await page.locator("#delete-tag").click();
  await page.locator("#dialog[open] #dialog-siblings").waitFor();
  await page.locator("#dialog-ok").click();
  await page.locator("#other-tags").waitFor();
  assertEq(await page.locator("#other-tags li").allTextContents(), ["stable", "v1"], "other_tags of the answer");
  assertEq((await apiCall("GET", "/images/team/app/tags")).json.tags, ["stable", "v1", "v2"], "only latest went");
  assertEq(page.dialogs, [], "no browser dialogs");
  await context.close();
});

test("an admin adds a user, changes its role and gives it a grant", async () => {
  const { context, page } = await newPage();
  await login(page);
  await go(page, "#/users");
  await page.getByLabel("Username").fill("carol");
  await page.getByLabel("Password (8–72 bytes)").fill("carol-password-1");
  await page.getByRole("button", { name: "Add user" }).click();
  await page.locator("tr[data-user='carol']").waitFor();
  assertEq((await apiCall("GET", "/users/carol")).json.role, "user", "created as user");
  // A refused value shows the API's message.
  await page.getByLabel("Username").fill("-bad");
  await page.getByLabel("Password (8–72 bytes)").fill("whatever-123");
  await page.getByRole("button", { name: "Add user" }).click();
  await page.locator("p.error").waitFor();
  await page.getByRole("button", { name: "Disable carol" }).click();
  // The confirmation says what ends at once; this stack is in htpasswd mode (no registry tokens).
  const revocation = await page.locator("#dialog[open] #dialog-revocation").textContent();
  assertEq(/stop working at once/.test(revocation) && /at once there too/.test(revocation), true, "disable bound shown: " + revocation);
  await page.locator("#dialog-ok").click();
  await page.locator("tr[data-user='carol'] td", { hasText: "disabled" }).waitFor();
  assertEq((await apiCall("GET", "/users/carol")).json.disabled, true, "disabled");
  await page.getByRole("button", { name: "Enable carol" }).click();
  await page.locator("tr[data-user='carol'] td", { hasText: "enabled" }).waitFor();
  await page.getByLabel("Role of carol").selectOption("admin");
  await page.locator("tr[data-user='carol'] button", { hasText: "Set role" }).click();
  await page.locator("tr[data-user='carol'] td:nth-child(2)", { hasText: "admin" }).waitFor();
  assertEq((await apiCall("GET", "/users/carol")).json.role, "admin", "promoted");
  await page.getByLabel("Role of carol").selectOption("user");
  await page.locator("tr[data-user='carol'] button", { hasText: "Set role" }).click();
  await page.locator("tr[data-user='carol'] td:nth-child(2)", { hasText: "user" }).waitFor();
  assertEq((await apiCall("GET", "/users/carol")).json.role, "user", "back to user");
  await shot(page, "users");
  await go(page, "#/user?name=carol");
  if (await endpointExists("/users/carol/grants")) {
    await page.getByLabel("Repository pattern").fill("team/**");
    await page.getByRole("button", { name: "Add grant" }).click();
    await page.locator("#user-grants-save").click();
    await page.getByText("Saved.").waitFor();
    assertEq((await apiCall("GET", "/users/carol/grants")).json.grants, [{ repository: "team/**", actions: ["pull"] }], "grant stored");
  } else {
    // TODO(lead): once the grants API is merged this branch is dead; drop it.
    await page.getByText("Grants are not available on this server").waitFor();
  }
  await shot(page, "user");
  await context.close();
});

test("a user sees only its own pages and no admin controls", async () => {
  const made = await apiCall("POST", "/users", { username: "dave", password: "dave-password-1", role: "user" });
  assertEq(made.status, 201, "dave created");
  const { context, page } = await newPage();
  await login(page, "dave", "dave-password-1");
  const nav = await page.locator("#nav a").allTextContents();
  assertEq(nav, ["Repositories", "My account", "API"], "user nav");
  await go(page, "#/users");
  assertEq(await page.locator("h1").textContent(), "Not found", "admin page hidden");
  await go(page, "#/account");
  await shot(page, "account");
  await context.close();
});

test("the access page shows public patterns, everyone grants and explains access", async () => {
  const { context, page } = await newPage();
  await login(page);
  await go(page, "#/access");
  if (await endpointExists("/grants")) {
    await page.locator("#public-patterns").waitFor();
    await page.locator("#explain-user").fill("carol");
    await page.locator("#explain-repo").fill("team/app");
    await page.getByRole("button", { name: "Explain" }).click();
    await page.locator("#explain-result p").waitFor();
    assert(/carol may/.test(await page.locator("#explain-result p").textContent()), "explanation");
  } else {
    // TODO(lead): flip to the branch above once /grants is merged.
    await page.getByText("Grants are not available on this server").waitFor();
  }
  await shot(page, "access");
  await context.close();
});

test("a dry-run garbage collection runs to the end and shows in the history", async () => {
  const { context, page } = await newPage();
  await login(page);
  await go(page, "#/gc");
  if (await endpointExists("/gc")) {
    await page.locator("#gc-dry").click();
    await page.waitForFunction(() => ["succeeded", "failed"].includes(document.querySelector("#gc-state")?.dataset.state), null, { timeout: 90000 });
    assertEq(await page.locator("#gc-state").getAttribute("data-state"), "succeeded", "dry run finished");
    await page.locator("#gc-history tr[data-job]").first().waitFor();
  } else {
    // TODO(lead): flip to the branch above once /gc is merged.
    await page.getByText("Garbage collection is not available on this server").waitFor();
  }
  await shot(page, "gc");
  await context.close();
});

test("the audit page filters by user, pages with the cursor and shows the chain status", async () => {
  const { context, page } = await newPage();
  await login(page);
  await go(page, "#/audit");
  await page.locator("#chain-status.ok").waitFor();
  await page.locator("#audit-user").fill("carol");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.waitForFunction(() => /entr/.test(document.querySelector("#audit-status")?.textContent || "") && location.hash.includes("user=carol"));
  const rows = await page.locator("#audit-table tbody tr").evaluateAll((trs) => trs.map((tr) => [...tr.children].map((td) => td.textContent)));
  assert(rows.length >= 3, "carol's entries: " + rows.length);
  for (const r of rows) assert(r[2] === "carol" || r[5] === "carol", "row about carol: " + r.join("|"));
  assert(rows.some((r) => r[1] === "user.create"), "user.create listed");
  await shot(page, "audit");
  // Paging: limit 50 per page; the admin's own actions and the pushes make more than that? Use
  // the API to compare: the UI shows exactly what /audit pages give.
  await go(page, "#/audit");
  await page.locator("#audit-status").filter({ hasText: "entr" }).waitFor();
  const first = await page.locator("#audit-table tbody tr").count();
  const all = await apiCall("GET", "/audit?limit=1000");
  assertEq(first, Math.min(50, all.json.entries.length), "first page");
  if (all.json.entries.length > 50) {
    await page.locator("#audit-more").click();
    await page.waitForFunction((n) => document.querySelectorAll("#audit-table tbody tr").length > n, first);
  } else {
    assert(await page.locator("#audit-more").isHidden(), "no more button at the end");
  }
  await context.close();
});

test("an audit actor holding markup is shown as text and runs nothing", async () => {
  const hostile = "<img src=x onerror=alert(1)>";
  const tags = await apiCall("GET", "/images/team/app/tags/v1");
  const event = {
    events: [
      {
        id: "ui-xss-1",
        timestamp: new Date().toISOString(),
        action: "pull",
        target: { mediaType: "application/vnd.oci.image.manifest.v1+json", repository: "team/app", digest: tags.json.digest, tag: "v1" },
        request: { addr: "127.0.0.1:1" },
        actor: { name: hostile },
      },
    ],
  };
  const r = await fetch(BASE + "/events", { method: "POST", headers: { Authorization: "Bearer " + EVENTS_TOKEN, "Content-Type": "application/json" }, body: JSON.stringify(event) });
  assertEq(r.status, 200, "event accepted");
  const { context, page } = await newPage();
  await login(page);
  await go(page, "#/audit?action=image.pull&image=team%2Fapp");
  await page.locator("#audit-table td.actor", { hasText: "onerror" }).first().waitFor();
  assertEq(await page.locator("#audit-table td.actor", { hasText: "onerror" }).first().textContent(), hostile, "shown as text");
  assertEq(await page.evaluate(() => document.querySelectorAll("img").length), 0, "no <img> element");
  await page.waitForTimeout(300);
  assertEq(page.dialogs, [], "no alert ran");
  await shot(page, "audit-hostile-actor");
  await context.close();
});

test("signing out forgets the token and returns to the form", async () => {
  const { context, page } = await newPage();
  await login(page);
  assert(await page.evaluate(() => sessionStorage.getItem("registry-admin.token")), "token kept for the tab");
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.locator("#login-user").waitFor();
  assertEq(await page.evaluate(() => sessionStorage.getItem("registry-admin.token")), null, "token forgotten");
  await context.close();
});

test("the API reference renders /openapi.json with the vendored Swagger UI", async () => {
  const { context, page } = await newPage();
  await login(page);
  await go(page, "#/api");
  await page.locator("#api-link").click();
  await page.locator(".swagger-ui .opblock").first().waitFor({ timeout: 30000 });
  assert((await page.locator(".swagger-ui .opblock").count()) > 15, "operations listed");
  await shot(page, "api-reference");
  await page.goto(BASE + "/docs");
  await page.locator(".swagger-ui .opblock").first().waitFor({ timeout: 30000 });
  await context.close();
});

test("at 375 px wide and in dark mode the pages fit without sideways scrolling", async () => {
  const { context, page } = await newPage({ viewport: { width: 375, height: 800 }, colorScheme: "dark" });
  await login(page);
  for (const [hash, name] of [
    ["#/repos", "repositories-375-dark"],
    ["#/repo?name=team/app", null],
    ["#/image?name=team/multi&tag=1.0", "image-375-dark"],
    ["#/users", null],
    ["#/audit", "audit-375-dark"],
  ]) {
    await go(page, hash);
    await page.waitForTimeout(200);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert(width <= 376, `${hash}: page is ${width}px wide`);
    if (name) await shot(page, name);
  }
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assertEq(bg, "rgb(15, 19, 23)", "dark background");
  await context.close();
});

test("axe finds no serious or critical violation on any page, light or dark", async () => {
  const pages = ["#/repos", "#/repo?name=team/app", "#/image?name=team/multi&tag=1.0", "#/users", "#/user?name=carol", "#/access", "#/account", "#/audit", "#/gc", "#/api"];
  const found = [];
  for (const colorScheme of ["light", "dark"]) {
    const { context, page } = await newPage({ colorScheme });
    const check = async (label) => {
      // page.evaluate runs outside the page's CSP, so axe needs no inline script.
      await page.evaluate(AXE_SOURCE);
      const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
      for (const v of result.violations) {
        if (v.impact === "serious" || v.impact === "critical") found.push(`${colorScheme} ${label}: ${v.id} (${v.impact}) ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
      }
    };
    await page.goto(BASE + "/ui/");
    await page.locator("#login-user").waitFor();
    await check("login");
    await login(page);
    for (const p of pages) {
      await go(page, p);
      await page.waitForTimeout(300);
      await check(p);
    }
    await context.close();
  }
  assertEq(found, [], "serious or critical violations");
});

// ---------- robot accounts (ui/robots.js) ----------
// Robots exist in token mode only: these tests use the second registry-admin that
// scripts/ui-test.sh starts with AUTH_MODE=token (TOKEN_BASE_URL), with files of its own.

const TOKEN_BASE = process.env.TOKEN_BASE_URL;

async function tokenApi(method, path, body, user = ADMIN, password = ADMIN_PW) {
  const headers = { Authorization: "Basic " + Buffer.from(user + ":" + password).toString("base64") };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(TOKEN_BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch (_) {}
  return { status: r.status, json, text };
}

async function loginToken(page, user = ADMIN, password = ADMIN_PW) {
  await page.goto(TOKEN_BASE + "/ui/");
  await page.getByLabel("Username").fill(user);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#nav").waitFor({ state: "visible" });
}

async function registryToken(user, secret) {
  const r = await fetch(TOKEN_BASE + "/token?service=registry&scope=repository:team/app:pull", {
    headers: { Authorization: "Basic " + Buffer.from(user + ":" + secret).toString("base64") },
  });
  return r.status;
}

test("robots: in htpasswd mode the nav has no robots page and the page says why", async () => {
  const { context, page } = await newPage();
  await login(page);
  await go(page, "#/robots");
  await page.getByText("Robot accounts need token mode").waitFor();
  assert(!(await page.locator("#nav a").allTextContents()).includes("Robots"), "no Robots link in htpasswd mode");
  await context.close();
});

test("robots: a user creates a robot and sees its secret once, with copy buttons, and the secret works", async () => {
  assert(TOKEN_BASE, "TOKEN_BASE_URL is set by scripts/ui-test.sh");
  assertEq((await tokenApi("POST", "/users", { username: "erin", password: "erin-password-1", role: "user" })).status, 201, "erin created");
  assertEq((await tokenApi("PUT", "/users/erin/grants", { grants: [{ repository: "team/**", actions: ["push"] }] })).status, 200, "erin's grants");
  const { context, page } = await newPage();
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: TOKEN_BASE });
  await loginToken(page, "erin", "erin-password-1");
  await page.locator("#nav a", { hasText: "Robots" }).waitFor();
  await go(page, "#/robots");
  assert(!(await page.locator("#robot-owner").count()), "a user names no other owner");
  await page.getByLabel("Name (a-z, 0-9, -)").fill("ci");
  await page.getByLabel("Description").fill("release <b>pipeline</b>");
  await page.getByLabel("Grants, one per line").fill("team/app pull,push");
  await page.getByRole("button", { name: "Create robot" }).click();
  await page.locator("#robot-secret").waitFor();
  const secret = await page.locator("#robot-secret-value").textContent();
  assert(/^ra_[A-Za-z0-9_-]{40,64}$/.test(secret), "a secret: " + secret);
  assertEq(
    await page.locator("#robot-login-command").textContent(),
    "echo '" + secret + "' | docker login -u robot.erin.ci --password-stdin registry.example.test:5000",
    "the login command",
  );
  await page.getByRole("button", { name: "Copy the secret" }).click();
  await page.waitForFunction(() => document.querySelector("[aria-label='Copy the secret']").dataset.copied === "yes");
  assertEq(await page.evaluate(() => navigator.clipboard.readText()), secret, "clipboard holds the secret");
  await page.getByRole("button", { name: "Copy the docker login command" }).click();
  await page.waitForFunction(() => document.querySelector("[aria-label='Copy the docker login command']").dataset.copied === "yes");
  assert((await page.evaluate(() => navigator.clipboard.readText())).includes("docker login -u robot.erin.ci"), "clipboard holds the command");
  const row = page.locator("tr[data-robot='robot.erin.ci']");
  await row.waitFor();
  assertEq(await row.locator("td").nth(2).textContent(), "release <b>pipeline</b>", "the description is text");
  assertEq(await row.locator(".badge").textContent(), "expires in 89 days", "default expiry badge");
  await shot(page, "robots");
  assertEq(await registryToken("robot.erin.ci", secret), 200, "the secret works at /token");
  // Shown once: after leaving the page, it is nowhere in it.
  await go(page, "#/repos");
  await go(page, "#/robots");
  assert(!(await page.content()).includes(secret), "the secret is not shown again");
  // A grant beyond erin's own is refused with the API's message.
  await page.getByLabel("Name (a-z, 0-9, -)").fill("wide");
  await page.getByLabel("Grants, one per line").fill("other/** pull");
  await page.getByRole("button", { name: "Create robot" }).click();
  await page.locator("#robot-create-status.error").waitFor();
  assert(/may not pull/.test(await page.locator("#robot-create-status").textContent()), "grants_exceed_owner message");
  await context.close();
});

test("robots: an admin sees the expiry banner and badges, rotates with an overlap and deletes", async () => {
  const made = await tokenApi("POST", "/robots", { name: "nightly", owner: "erin", grants: [{ repository: "team/app", actions: ["pull"] }], expires_in_days: 3 });
  assertEq(made.status, 201, "nightly created");
  const old = made.json.secret;
  const { context, page } = await newPage();
  await loginToken(page);
  await go(page, "#/robots");
  const banner = page.locator("#robot-banner");
  await banner.waitFor({ state: "visible" });
  assert((await banner.textContent()).includes("robot.erin.nightly"), "the banner names the robot");
  const row = page.locator("tr[data-robot='robot.erin.nightly']");
  assertEq(await row.locator(".badge.warn").textContent(), "expires in 2 days", "an expiring badge");
  assertEq(await page.locator("main tbody tr").count(), 2, "an admin sees every robot");
  await row.getByRole("button", { name: "Rotate the secret of robot.erin.nightly" }).click();
  await page.locator("#robot-overlap").fill("3600");
  await page.locator("#dialog-ok").click();
  await page.locator("#robot-secret").waitFor();
  const fresh = await page.locator("#robot-secret-value").textContent();
  assert(fresh !== old, "a new secret");
  assertEq([await registryToken("robot.erin.nightly", old), await registryToken("robot.erin.nightly", fresh)], [200, 200], "both work during the overlap");
  await row.getByRole("button", { name: "Delete robot.erin.nightly" }).click();
  await page.locator("#dialog-ok").click();
  await row.waitFor({ state: "detached" });
  assertEq((await tokenApi("GET", "/robots/robot.erin.nightly")).status, 404, "deleted");
  assertEq(await registryToken("robot.erin.nightly", fresh), 401, "refused once deleted");
  await context.close();
});

test("robots: the page fits 375 px in dark mode and axe finds nothing serious", async () => {
  const found = [];
  for (const colorScheme of ["light", "dark"]) {
    const { context, page } = await newPage({ viewport: { width: 375, height: 800 }, colorScheme });
    await loginToken(page);
    await go(page, "#/robots");
    await page.waitForTimeout(200);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert(width <= 376, `#/robots: page is ${width}px wide`);
    await page.evaluate(AXE_SOURCE);
    const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
    for (const v of result.violations) {
      if (v.impact === "serious" || v.impact === "critical") found.push(`${colorScheme}: ${v.id} ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
    }
    if (colorScheme === "dark") await shot(page, "robots-375-dark");
    await context.close();
  }
  assertEq(found, [], "serious or critical violations on #/robots");
});

// ---------- end of robot accounts ----------
// ---------- retention, empty repositories, the audit table at 1280 px (issue 22) ----------

const REGISTRY = process.env.REGISTRY_URL;
const ADMIN_BASIC = "Basic " + Buffer.from(ADMIN + ":" + ADMIN_PW).toString("base64");

// Stores team/app:v1 again as NAME:TAG with an annotation that gives it its own digest: blob
// mounts and one manifest PUT, straight to the registry.
async function storeVariant(name, tag, variant) {
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

async function tagsOf(name) {
  return (await apiCall("GET", `/images/${name}/tags`)).json.tags;
}

test("retention: policies are edited as JSON, a plan is reviewed per repository with reasons, and applying it deletes only the candidates", async () => {
  await storeVariant("ret/app", "keep-1", "k1");
  await storeVariant("ret/app", "old-1", "o1");
  await storeVariant("ret/app", "old-2", "o2");
  // The registry's push notifications date the tags: wait until all three are known.
  for (let i = 0; i < 100; i++) {
    const pushes = await apiCall("GET", "/audit?action=image.push&image=ret/app");
    if (pushes.json.entries.length >= 3) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const { context, page } = await newPage();
  await login(page);
  await go(page, "#/retention");
  // An invalid policy is refused with the API's message and saves nothing.
  await page.locator("#retention-json").fill(JSON.stringify({ policies: [{ repositories: "ret/*", rules: [{ newest_push: 1 }] }] }));
  await page.locator("#retention-save").click();
  await page.locator("#retention-status.error").waitFor();
  assert(/newest_push/.test(await page.locator("#retention-status").textContent()), "names the unknown field");
  assertEq((await apiCall("GET", "/retention")).json, { policies: [] }, "nothing saved");

  const policies = { policies: [{ repositories: "ret/*", protect: ["keep-.*"], rules: [{ include: "release-.*" }] }] };
  await page.locator("#retention-json").fill(JSON.stringify(policies));
  await page.locator("#retention-save").click();
  await page.locator("#retention-status.ok").waitFor();
  assertEq((await apiCall("GET", "/retention")).json, policies, "saved");

  await page.locator("#retention-only").fill("ret/**");
  await page.locator("#retention-make").click();
  await page.locator("#retention-plan").waitFor();
  const section = page.locator('.plan-repo[data-name="ret/app"]');
  await section.waitFor();
  const rows = await section.locator("tbody tr").allTextContents();
  assertEq(rows.length, 3, "three tags");
  assert(rows.some((r) => r.startsWith("keep-1") && /protected by/.test(r)), "keep-1 protected: " + rows);
  assert(rows.filter((r) => /^old-\d.*delete.*no rule keeps it/.test(r)).length === 2, "old tags to delete: " + rows);
  assert(/2 to delete/.test(await page.locator("#plan-summary").textContent()), "summary");
  assertEq(await tagsOf("ret/app"), ["keep-1", "old-1", "old-2"], "a plan deletes nothing");
  await shot(page, "retention-plan");

  // Cancel first: nothing happens.
  page.once("dialog", () => {});
  await page.locator("#retention-apply").click();
  await page.locator("#dialog-cancel").click();
  assertEq(await tagsOf("ret/app"), ["keep-1", "old-1", "old-2"], "cancel deletes nothing");
  await page.locator("#retention-apply").click();
  await page.locator("#dialog-ok").click();
  await page.locator("#retention-result").waitFor();
  assert(/2 deleted, 0 skipped/.test(await page.locator("#retention-result h2").textContent()), "result");
  assertEq(await tagsOf("ret/app"), ["keep-1"], "only the candidates went");
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const serious = result.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => v.id);
  assertEq(serious, [], "axe on the retention page");
  await apiCall("PUT", "/retention", { policies: [] });
  await context.close();
});

test("empty repositories are marked in the repository list", async () => {
  await storeVariant("ret/empty", "only", "e1");
  const del = await apiCall("DELETE", "/images/ret/empty/tags/only");
  assertEq(del.status, 200, "delete the only tag");
  const { context, page } = await newPage();
  await login(page);
  await go(page, "#/repos");
  const li = page.locator('li[data-name="ret/empty"]');
  assertEq((await li.locator(".badge").textContent()).trim(), "empty", "ret/empty is marked");
  assertEq(await page.locator('li[data-name="team/app"] .badge').count(), 0, "a repository with tags is not");
  await context.close();
});

test("the audit table fits a 1280 px window, long details wrapping instead of running off the page", async () => {
  // A registry event whose user agent is one long unbroken word ends up in `detail`.
  const ua = "agent/" + "x".repeat(120);
  const ev = { events: [{ id: "ui-long-" + Date.now(), timestamp: new Date().toISOString(), action: "pull",
    target: { mediaType: "application/vnd.oci.image.manifest.v1+json", digest: "sha256:" + "a".repeat(64), repository: "ret/app", tag: "keep-1" },
    request: { addr: "127.0.0.1:5000", useragent: ua }, actor: { name: "ci" } }] };
  const posted = await apiCall("POST", "/events", ev, "Bearer " + EVENTS_TOKEN);
  assertEq(posted.status, 200, "event recorded");
  const { context, page } = await newPage({ viewport: { width: 1280, height: 860 } });
  await login(page);
  await go(page, "#/audit?image=ret/app");
  await page.locator("#audit-table td.detail", { hasText: "agent/" }).first().waitFor();
  const fit = await page.evaluate(() => {
    const wrap = document.querySelector("#audit-table").parentElement;
    return { scroll: wrap.scrollWidth, client: wrap.clientWidth, page: document.documentElement.scrollWidth };
  });
  assert(fit.scroll <= fit.client + 1, `the table is ${fit.scroll}px in a ${fit.client}px box`);
  assert(fit.page <= 1280, `the page is ${fit.page}px wide`);
  await shot(page, "audit-1280");
  await context.close();
});

// ---------- end of issue 22 ----------

test("no page broke the Content-Security-Policy or threw", async () => {
  assertEq(cspViolations, [], "CSP violations");
  assertEq(pageErrors, [], "uncaught page errors");
});

let passed = 0;
let failed = 0;
for (const t of tests) {
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
