// The audit page.
import { apiCall, assert, assertEq, BASE, EVENTS_TOKEN, go, lateTest, login, newPage, shot, test } from "../harness.mjs";

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

lateTest("the audit table fits a 1280 px window, long details wrapping instead of running off the page", async () => {
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
