// The repositories page: every repository this account may see, grouped by namespace, with a
// filter box and a count.

import { api, session } from "./api.js";
import { add, h, loading, note } from "./dom.js";
import { byteOrder } from "./format.js";
import { link, pageHeader } from "./page.js";

export async function pageRepos(m) {
  add(m, pageHeader("Repositories"));
  const status = loading("Loading repositories…");
  add(m, status);
  performance.mark("ui:repos-request");
  const data = await api("GET", "/images");
  performance.mark("ui:repos-response");
  const repos = (data.repositories || []).slice().sort(byteOrder);
  // Repositories whose every tag is gone: registry:2 keeps listing them until a GC prunes them.
  const empty = new Set(data.empty || []);
  status.remove();
  const filter = h("input", { id: "repo-filter", type: "search", autocomplete: "off", placeholder: "team/app" });
  const count = h("p", { id: "repo-count", "aria-live": "polite" });
  add(m, h("div", { class: "row" }, h("label", { for: "repo-filter" }, "Filter repositories", filter)), count);
  if (repos.length === 0) {
    add(m, note(session.isAdmin ? "The registry holds no repositories yet." : "No repository is visible to this account."));
    count.textContent = "0 repositories";
    return;
  }
  const groups = new Map();
  for (const r of repos) {
    const slash = r.lastIndexOf("/");
    const ns = slash < 0 ? "" : r.slice(0, slash);
    if (!groups.has(ns)) groups.set(ns, []);
    groups.get(ns).push(r);
  }
  const container = h("div", { class: "groups" });
  const items = [];
  const sections = [];
  for (const [ns, names] of groups) {
    const ul = h("ul", {});
    const section = h("section", { "aria-label": ns ? "Namespace " + ns : "Top level" }, h("h2", {}, ns ? ns + "/" : "(top level)"), ul);
    const mine = [];
    for (const name of names) {
      const li = h("li", {}, link("repo", { name }, name), empty.has(name) ? h("span", { class: "badge" }, "empty") : null);
      li.dataset.name = name;
      mine.push(li);
      items.push(li);
      add(ul, li);
    }
    sections.push({ section, mine });
    add(container, section);
  }
  add(m, container);
  const apply = () => {
    const q = filter.value.trim().toLowerCase();
    let shown = 0;
    for (const { section, mine } of sections) {
      let any = false;
      for (const li of mine) {
        const hit = !q || li.dataset.name.includes(q);
        li.hidden = !hit;
        if (hit) {
          any = true;
          shown++;
        }
      }
      section.hidden = !any;
    }
    count.textContent = q ? shown + " of " + repos.length + " repositories" : repos.length + " repositories";
  };
  filter.addEventListener("input", apply);
  apply();
  performance.mark("ui:repos-rendered");
}
