// DOM helpers for every page. Everything from the API (names, tags, usernames, audit fields,
// messages) reaches the page through textContent / createElement, never innerHTML.

import { messageOf } from "./api.js";

export const $ = (sel) => document.querySelector(sel);

export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else e.setAttribute(k, String(v));
  }
  append(e, children);
  return e;
}

export function append(parent, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    parent.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return parent;
}

// Element.append would print `null` and stringify arrays; this skips the one, flattens the other.
export function add(parent, ...children) {
  return append(parent, children);
}

export function clear(e) {
  e.replaceChildren();
  return e;
}

export function table(headers, rows, caption) {
  // Focusable so keyboard users can scroll a wide table sideways on a narrow screen.
  return h(
    "div",
    { class: "table-wrap", tabindex: "0", role: "region", "aria-label": caption || headers.join(", ") },
    h(
      "table",
      {},
      caption ? h("caption", { class: "muted" }, caption) : null,
      h("thead", {}, h("tr", {}, headers.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows),
    ),
  );
}

export function errorBox(err) {
  return h("p", { class: "error", role: "alert" }, messageOf(err));
}

export function loading(text) {
  return h("p", { class: "muted", "aria-busy": "true" }, text || "Loading…");
}

export function note(text) {
  return h("p", { class: "note" }, text);
}

let toastTimer = null;
export function toast(text) {
  const t = $("#toast");
  t.textContent = text;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (t.textContent = ""), 4000);
}

export async function copyText(text, button) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch (_) {
    ok = false;
  }
  if (button) button.dataset.copied = ok ? "yes" : "no";
  toast(ok ? "Copied to the clipboard." : "Could not copy: select the text and copy it by hand.");
}

export function copyButton(text, label) {
  const b = h("button", { type: "button", class: "small", "aria-label": label || "Copy " + text }, "Copy");
  b.addEventListener("click", () => copyText(text, b));
  return b;
}
