// The banner on every page while a garbage collection job freezes writes (admins only: the
// job list is theirs to see).

import { api, session } from "./api.js";
import { $ } from "./dom.js";

export async function refreshBanner() {
  const banner = $("#banner");
  if (!session.token || !session.isAdmin) {
    banner.hidden = true;
    return;
  }
  try {
    const data = await api("GET", "/gc");
    const active = (data.jobs || []).find((j) => j.state === "freezing" || j.state === "collecting");
    if (active) {
      banner.textContent =
        "Writes are frozen: garbage collection job " + active.id + " is " + active.state + ". Tag deletes wait until it ends.";
      banner.hidden = false;
    } else {
      banner.hidden = true;
    }
  } catch (_) {
    banner.hidden = true;
  }
}
