// The retention page.
import { apiCall, assert, assertEq, AXE_SOURCE, go, login, newPage, shot, storeVariant, tagsOf, test } from "../harness.mjs";

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
