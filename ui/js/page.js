// What every page shares with the router: the page title, links between pages, and a timer the
// router cancels when the user moves on (so a page that polls stops polling when left).

import { h } from "./dom.js";

export function link(path, params, text) {
  const q = params ? "?" + new URLSearchParams(params).toString() : "";
  return h("a", { href: "#/" + path + q }, text);
}

export function pageHeader(title) {
  const h1 = h("h1", { tabindex: "-1" }, title);
  return h1;
}

let pageTimer = null;

// Runs `work` once after `ms`, unless the user has moved to another page meanwhile.
export function setPageTimer(work, ms) {
  clearTimeout(pageTimer);
  pageTimer = setTimeout(work, ms);
}

export function clearPageTimer() {
  clearTimeout(pageTimer);
  pageTimer = null;
}
