// The garbage collection page.
import { assertEq, endpointExists, go, login, newPage, shot, test } from "../harness.mjs";

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
