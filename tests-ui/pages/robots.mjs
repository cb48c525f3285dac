// Robot accounts (ui/js/robots.js). Robots exist in token mode only: these tests use the second
// registry-admin that scripts/ui-test.sh starts with AUTH_MODE=token (TOKEN_BASE_URL), with files
// of its own.
import { ADMIN, ADMIN_PW, assert, assertEq, AXE_SOURCE, go, login, newPage, shot, test } from "../harness.mjs";

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
