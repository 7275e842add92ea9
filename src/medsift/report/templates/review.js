// medsift review page: one image at a time, keyboard first. No external libraries.
"use strict";

const S = {
  items: [], labels: [], windows: [], index: 0,
  window: "brain", overlays: new Set(["mask", "boxes"]),
  neighbour: null,          // image_id of a neighbouring slice being looked at, or null
  size: 512,
};
const $ = (id) => document.getElementById(id);
let pending = 0;             // decisions sent but not yet confirmed by the server

function imageUrl(id, size) {
  const ov = [...S.overlays].sort().join(",");
  return `/api/image/${encodeURIComponent(id)}.png?window=${S.window}&overlay=${ov}&size=${size || S.size}`;
}

const prefetched = new Map();
function prefetch(id, size) {
  const url = imageUrl(id, size);
  if (prefetched.has(url)) return;
  const img = new Image();
  img.src = url;
  prefetched.set(url, img);
  if (prefetched.size > 200) prefetched.delete(prefetched.keys().next().value);
}

function current() { return S.items[S.index]; }

function setStatus(text, cls) {
  const el = $("status");
  el.textContent = text;
  el.className = cls || "";
}

function renderImage() {
  const it = current();
  if (!it) return;
  const shown = S.neighbour || it.image_id;
  const img = $("image");
  const t0 = performance.now();
  img.dataset.loading = shown;
  img.onload = () => {
    if (img.dataset.loading !== shown) return;
    img.dataset.shown = shown;
    img.dataset.ms = (performance.now() - t0).toFixed(1);
    document.body.dataset.shown = shown;
  };
  img.onerror = () => setStatus(`could not load ${shown}`, "error");
  img.src = imageUrl(shown);
  const nbNote = $("viewing-neighbour");
  nbNote.hidden = !S.neighbour;
  nbNote.textContent = S.neighbour ? `showing ${S.neighbour}, not the item (\\ to go back)` : "";
  const rel = it.related && it.related.length ? it.related[0] : null;
  $("rel-fig").hidden = !rel;
  $("rel-id").textContent = rel ? `related ${rel}` : "related";
  for (const [el, id] of [[$("nb-prev"), it.prev], [$("nb-cur"), it.image_id], [$("nb-next"), it.next],
                          [$("nb-rel"), rel]]) {
    if (id) { el.src = imageUrl(id, 128); el.parentElement.classList.remove("empty"); el.title = id; }
    else { el.removeAttribute("src"); el.parentElement.classList.add("empty"); el.title = "none"; }
    el.parentElement.classList.toggle("active", id === shown);
  }
  // prefetch the next images in the queue and the neighbouring slices
  for (let k = 1; k <= 3; k++) {
    const nx = S.items[S.index + k];
    if (nx) { prefetch(nx.image_id); prefetch(nx.image_id, 128); }
  }
  const pv = S.items[S.index - 1];
  if (pv) prefetch(pv.image_id);
  if (rel) prefetch(rel);
  if (it.prev) prefetch(it.prev);
  if (it.next) prefetch(it.next);
}

function text(tag, content, cls) {
  const el = document.createElement(tag);
  el.textContent = content;
  if (cls) el.className = cls;
  return el;
}

function renderPanel() {
  const it = current();
  if (!it) {
    $("image-id").textContent = "nothing to review";
    setStatus("The audit found nothing to review in this workspace (WS/audit/findings.csv).");
    return;
  }
  $("image-id").textContent = it.image_id;
  $("position").textContent = `${S.index + 1} / ${S.items.length}`;
  const meta = $("meta");
  meta.replaceChildren();
  const labelText = Object.entries(it.labels).map(([k, v]) => `${k.replace("label_", "")}=${v === null ? "?" : v}`).join(" ");
  for (const [k, v] of [["patient", it.patient_id], ["slice", it.slice_index], ["split", it.split || "-"],
                        ["labels", labelText || "-"], ["boxes", it.n_boxes], ["mask", it.has_mask ? "yes" : "no"],
                        ["pixels", it.has_hu ? "HU" : "8-bit (windowed at export)"]]) {
    meta.append(text("dt", k), text("dd", v === null || v === undefined ? "-" : String(v)));
  }
  const ul = $("findings");
  ul.replaceChildren();
  for (const f of it.findings) {
    const li = document.createElement("li");
    li.append(text("span", f.severity || "?", `sev sev-${(f.severity || "").toLowerCase()}`),
              text("b", ` ${f.check} `),
              text("span", f.score === null ? "" : `score ${Number(f.score).toFixed(2)}`, "muted"));
    if (f.detail) li.append(text("div", f.detail, "detail"));
    if (f.related_id) li.append(text("div", `related: ${f.related_id}`, "muted"));
    ul.append(li);
  }
  const d = it.decision;
  const badge = $("current-decision");
  badge.textContent = d ? d.decision + (d.new_label ? ` (${d.new_label})` : "") : "undecided";
  badge.className = "badge " + (d ? "dec-" + d.decision : "dec-none");
  for (const b of document.querySelectorAll("#decide button")) {
    b.classList.toggle("chosen", !!d && b.dataset.decision === d.decision);
  }
  for (const b of document.querySelectorAll("#windows button")) {
    b.classList.toggle("on", b.dataset.window === S.window);
    b.disabled = !it.has_hu && b.dataset.window !== "auto";
  }
  for (const b of document.querySelectorAll("[data-overlay]")) b.classList.toggle("on", S.overlays.has(b.dataset.overlay));
  renderQueue();
  const done = S.items.filter((x) => x.decision).length;
  $("progress").textContent = `${done} of ${S.items.length} decided`;
}

function renderQueue() {
  const ol = $("queue");
  if (ol.children.length !== S.items.length) {
    ol.replaceChildren();
    S.items.forEach((it, i) => {
      const li = document.createElement("li");
      li.dataset.index = i;
      li.addEventListener("click", () => go(i));
      ol.append(li);
    });
  }
  S.items.forEach((it, i) => {
    const li = ol.children[i];
    li.textContent = `${it.image_id} · ${it.findings.map((f) => f.check).join(", ")}`;
    li.className = (it.decision ? "dec-" + it.decision.decision : "dec-none") + (i === S.index ? " current" : "");
  });
  const cur = ol.children[S.index];
  if (cur) ol.scrollTop = cur.offsetTop - ol.clientHeight / 2;  // only the queue list scrolls, not the panel
}

function go(i) {
  if (i < 0 || i >= S.items.length) return;
  S.index = i;
  S.neighbour = null;
  history.replaceState(null, "", "#" + encodeURIComponent(current().image_id));
  $("comment").value = current().decision ? current().decision.comment : "";
  $("relabel").hidden = true;  // only here: a save finishing late must not close a form being filled in
  renderImage();
  renderPanel();
}

async function decide(decision, newLabel) {
  // Move on at once (the next image is prefetched); the decision is saved in the background and
  // a failure is shown with the image id and leaves that item undecided.
  const it = current();
  if (!it) return;
  const body = { image_id: it.image_id, decision, comment: $("comment").value };
  if (newLabel) body.new_label = newLabel;
  const before = it.decision;
  it.decision = { ...body, new_label: newLabel || "", pending: true };
  pending += 1;
  document.body.dataset.pending = String(pending);
  if (S.index + 1 < S.items.length) go(S.index + 1); else renderPanel();
  setStatus(`saving ${it.image_id}…`);
  let resp, data;
  try {
    resp = await fetch("/api/decision", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    data = await resp.json();
  } catch (e) {
    data = { error: String(e) };
  }
  pending -= 1;
  document.body.dataset.pending = String(pending);
  if (!resp || !resp.ok) {
    it.decision = before;
    setStatus(`NOT saved: ${it.image_id}: ${data.error}`, "error");
  } else {
    it.decision = data;
    setStatus(`saved: ${it.image_id} ${data.decision} (${data.timestamp})`, "ok");
    document.body.dataset.saved = String(Number(document.body.dataset.saved || 0) + 1);
  }
  renderPanel();
}

function openRelabel() {
  const it = current();
  if (!it) return;
  const box = $("relabel-fields");
  box.replaceChildren();
  S.labels.forEach((name, k) => {
    const cur = it.labels[name];
    const proposed = k === 0 ? (cur === 1 ? 0 : 1) : (cur === null ? 0 : cur);
    const lab = text("label", name.replace("label_", "") + " ");
    const sel = document.createElement("select");
    sel.name = name;
    for (const v of [0, 1]) {
      const o = text("option", String(v));
      o.value = String(v);
      if (v === proposed) o.selected = true;
      sel.append(o);
    }
    lab.append(sel);
    box.append(lab);
  });
  $("relabel").hidden = false;
  const first = box.querySelector("select");
  if (first) first.focus();
}

function submitRelabel(ev) {
  ev.preventDefault();
  const parts = [...$("relabel-fields").querySelectorAll("select")].map((s) => `${s.name}=${s.value}`);
  $("relabel").hidden = true;
  decide("relabel", parts.join(";"));
}

function setWindow(name) {
  if (!S.windows.includes(name)) return;
  S.window = name;
  renderImage();
  renderPanel();
}

function toggleOverlay(name) {
  if (S.overlays.has(name)) S.overlays.delete(name); else S.overlays.add(name);
  renderImage();
  renderPanel();
}

function showNeighbour(which) {
  const it = current();
  if (!it) return;
  const id = which === "prev" ? it.prev : which === "next" ? it.next : (it.related || [])[0];
  if (id) { S.neighbour = S.neighbour === id ? null : id; renderImage(); }
}

function onKey(ev) {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const inField = ["TEXTAREA", "INPUT", "SELECT"].includes(document.activeElement.tagName);
  if (inField) {
    if (ev.key === "Escape") { document.activeElement.blur(); if (!$("relabel").hidden) $("relabel").hidden = true; ev.preventDefault(); }
    else if (ev.key === "Enter" && $("relabel").contains(document.activeElement)) submitRelabel(ev);
    return;
  }
  if ($("help").open && ev.key !== "?") return;
  const k = ev.key;
  const windowIndex = "123456".indexOf(k);
  if (windowIndex >= 0 && S.windows[windowIndex]) { setWindow(S.windows[windowIndex]); }
  else if (k === "ArrowRight" || k === "j") go(S.index + 1);
  else if (k === "ArrowLeft" || k === "k") go(S.index - 1);
  else if (k === "a") decide("accept");
  else if (k === "x") decide("exclude");
  else if (k === "r") openRelabel();
  else if (k === "c") { $("comment").focus(); }
  else if (k === "m") toggleOverlay("mask");
  else if (k === "b") toggleOverlay("boxes");
  else if (k === "[") showNeighbour("prev");
  else if (k === "]") showNeighbour("next");
  else if (k === "o") showNeighbour("related");
  else if (k === "\\") { S.neighbour = null; renderImage(); }
  else if (k === "u") { const j = S.items.findIndex((x, i) => i > S.index && !x.decision); if (j >= 0) go(j); }
  else if (k === "?") { if ($("help").open) $("help").close(); else $("help").showModal(); }
  else return;
  ev.preventDefault();
}

async function init() {
  const resp = await fetch("/api/items");
  const data = await resp.json();
  S.items = data.items; S.labels = data.labels; S.windows = data.windows;
  S.window = data.default_window;
  S.overlays = new Set(data.default_overlays.split(",").filter(Boolean));
  $("reviewer").textContent = data.reviewer;
  $("ws").textContent = `${data.workspace} · ${data.queue}`;
  const wins = $("windows");
  S.windows.forEach((w, i) => {
    const b = document.createElement("button");
    b.type = "button"; b.dataset.window = w;
    b.append(text("kbd", String(i + 1)), document.createTextNode(" " + w));
    b.addEventListener("click", () => setWindow(w));
    wins.append(b);
  });
  for (const b of document.querySelectorAll("[data-overlay]")) b.addEventListener("click", () => toggleOverlay(b.dataset.overlay));
  for (const b of document.querySelectorAll("#decide button")) {
    b.addEventListener("click", () => (b.dataset.decision === "relabel" ? openRelabel() : decide(b.dataset.decision)));
  }
  $("relabel").addEventListener("submit", submitRelabel);
  $("relabel-cancel").addEventListener("click", () => { $("relabel").hidden = true; });
  $("help-btn").addEventListener("click", () => $("help").showModal());
  $("help-close").addEventListener("click", () => $("help").close());
  $("nb-prev").addEventListener("click", () => showNeighbour("prev"));
  $("nb-next").addEventListener("click", () => showNeighbour("next"));
  $("nb-rel").addEventListener("click", () => showNeighbour("related"));
  $("nb-cur").addEventListener("click", () => { S.neighbour = null; renderImage(); });
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", () => {
    const j = S.items.findIndex((x) => x.image_id === decodeURIComponent(location.hash.slice(1)));
    if (j >= 0 && j !== S.index) go(j);
  });
  const wanted = decodeURIComponent(location.hash.slice(1));
  let start = S.items.findIndex((x) => x.image_id === wanted);
  if (start < 0) start = Math.max(0, S.items.findIndex((x) => !x.decision));
  document.body.dataset.ready = "1";
  if (S.items.length) go(start); else renderPanel();
}

document.addEventListener("DOMContentLoaded", init);
