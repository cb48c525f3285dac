// Browser tests of the web UI: playwright-core drives Debian's chromium against the stack that
// scripts/ui-test.sh starts (real registry:2, real binary). One file per page in pages/, run in
// this order (later pages see what earlier ones left: users, grants, deleted tags); each test
// gets a fresh browser context; the last line is `N passed, N failed`.
import { assertEq, cspViolations, lateTest, pageErrors, runAll } from "./harness.mjs";
import "./pages/login.mjs";
import "./pages/repos.mjs";
import "./pages/images.mjs";
import "./pages/users.mjs";
import "./pages/access.mjs";
import "./pages/gc.mjs";
import "./pages/audit.mjs";
import "./pages/reference.mjs";
import "./pages/layout.mjs";
import "./pages/robots.mjs";
import "./pages/retention.mjs";

lateTest("no page broke the Content-Security-Policy or threw", async () => {
  assertEq(cspViolations, [], "CSP violations");
  assertEq(pageErrors, [], "uncaught page errors");
});

await runAll();
