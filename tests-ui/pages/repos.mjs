// The repositories page.
import { ADMIN, ADMIN_PW, apiCall, assert, assertEq, BASE, go, lateTest, login, newPage, shot, storeVariant, test } from "../harness.mjs";

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

lateTest("empty repositories are marked in the repository list", async () => {
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
