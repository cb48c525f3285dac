// Every page at once: 375 px wide and dark, and axe on each page, light and dark.
import { assert, assertEq, AXE_SOURCE, BASE, go, login, newPage, shot, test } from "../harness.mjs";

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
