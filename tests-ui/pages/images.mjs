// A repository's tags, an image's details and the tag delete.
import { apiCall, assert, assertEq, BASE, go, login, newPage, shot, test } from "../harness.mjs";

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
