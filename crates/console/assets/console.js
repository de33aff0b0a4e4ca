// The MallBots console: the board, one order's timeline and the queues, kept current by the
// server's event stream (/api/console/live). No polling: a page reads a view once when it
// opens or reconnects, then applies what the stream says.
"use strict";

const STATUSES = ["pending", "approved", "ready", "completed", "rejected", "cancelled"];
const PER_COLUMN = 12;
const $ = (selector) => document.querySelector(selector);

const state = {
  orders: new Map(), // id → order row, the latest of each status
  counts: {},
  view: "board",
  order: null, // the order whose timeline is shown
  steps: [],
  stream: null, // AbortController of the live stream
  dirty: false,
};

// ---- talking to the server ----------------------------------------------------------------

function headers() {
  const token = sessionStorage.getItem("mallbots-token");
  return token ? { Authorization: "Bearer " + token } : {};
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).message || message; } catch (_) { /* not JSON */ }
    const error = new Error(path + ": " + response.status + " " + message);
    error.status = response.status;
    throw error;
  }
  return response.json();
}

// Server-Sent Events read through fetch, so that a token can be sent; reconnects with back-off.
async function live() {
  let delay = 500;
  for (;;) {
    const controller = new AbortController();
    state.stream = controller;
    try {
      const query = new URLSearchParams();
      if (state.order) query.set("order", state.order);
      if (state.view === "operations") query.set("queues", "true");
      const response = await fetch("/api/console/live?" + query, { headers: headers(), signal: controller.signal });
      if (!response.ok) throw new Error("live stream: " + response.status);
      setConnection("live");
      delay = 500;
      await refresh();
      await readEvents(response.body);
    } catch (error) {
      if (controller.signal.aborted && state.stream !== controller) continue; // re-subscribed
      if (error.status === 401 || error.status === 403) setConnection("token needed");
    }
    if (state.stream === controller) {
      setConnection("reconnecting");
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}

async function readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trimStart();
      }
      if (data) handle(name, JSON.parse(data));
    }
  }
}

// Opens the stream again with what the page now watches.
function resubscribe() {
  const old = state.stream;
  state.stream = null;
  if (old) old.abort();
}

function handle(name, data) {
  switch (name) {
    case "summary": state.counts = data.counts; showRate(data.completedPerSecond); break;
    case "order": state.orders.set(data.id, data); break;
    case "step": if (data.orderId === state.order) addStep(data); return;
    case "operations": showOperations(data); return;
    case "resync": refresh(); return;
  }
  schedule();
}

async function refresh() {
  try {
    const board = await api("/api/console/board");
    state.counts = board.summary.counts;
    showRate(board.summary.completedPerSecond);
    state.orders = new Map(board.orders.map((order) => [order.id, order]));
    schedule();
    if (state.view === "timeline" && state.order) await loadTimeline(state.order);
    if (state.view === "operations") await loadOperations();
  } catch (error) {
    setConnection(error.status === 401 || error.status === 403 ? "token needed" : "reconnecting");
  }
}

// ---- the board ---------------------------------------------------------------------------

function schedule() {
  if (state.dirty) return;
  state.dirty = true;
  requestAnimationFrame(() => { state.dirty = false; renderBoard(); });
}

function renderBoard() {
  const columns = $("#columns");
  if (!columns.children.length) {
    for (const status of STATUSES) {
      const column = document.createElement("div");
      column.className = "column";
      column.dataset.status = status;
      column.innerHTML = `<h2 class="${status}"><span>${status}</span><span class="count">0</span></h2><ul></ul>`;
      columns.append(column);
    }
  }
  const byStatus = Object.fromEntries(STATUSES.map((status) => [status, []]));
  for (const order of state.orders.values()) (byStatus[order.status] || byStatus.pending).push(order);
  for (const status of STATUSES) {
    const column = columns.querySelector(`[data-status="${status}"]`);
    column.querySelector(".count").textContent = state.counts[status] ?? 0;
    const newest = byStatus[status].sort((a, b) => b.updatedAt - a.updatedAt).slice(0, PER_COLUMN);
    for (const stale of byStatus[status].slice(PER_COLUMN)) state.orders.delete(stale.id);
    const list = column.querySelector("ul");
    const shown = new Map([...list.children].map((item) => [item.dataset.order, item]));
    const items = newest.map((order) => {
      const item = shown.get(order.id) || card(order);
      item.querySelector(".age").textContent = age(order.updatedAt);
      return item;
    });
    list.replaceChildren(...items);
  }
}

function card(order) {
  const item = document.createElement("li");
  item.className = `card fresh ${order.status}`;
  item.dataset.order = order.id;
  item.dataset.status = order.status;
  item.innerHTML = `<div class="id"></div><div class="detail"><span class="what"></span> · <span class="age"></span></div>`;
  item.querySelector(".id").textContent = order.id;
  item.querySelector(".what").textContent = `${order.items} item${order.items === 1 ? "" : "s"} · $${order.total.toFixed(2)}`;
  item.addEventListener("click", () => { location.hash = "order=" + encodeURIComponent(order.id); });
  return item;
}

function age(micros) {
  const seconds = Math.max(0, (Date.now() - micros / 1000) / 1000);
  if (seconds < 60) return seconds.toFixed(0) + " s ago";
  if (seconds < 3600) return (seconds / 60).toFixed(0) + " min ago";
  return new Date(micros / 1000).toLocaleString();
}

function showRate(rate) {
  $("#rate").textContent = rate.toFixed(1) + " orders/s";
}

function setConnection(text) {
  const conn = $("#conn");
  conn.textContent = text;
  conn.dataset.state = text === "live" ? "live" : text === "connecting" ? "connecting" : "reconnecting";
}

// ---- an order's timeline -----------------------------------------------------------------

async function loadTimeline(id) {
  let timeline;
  try {
    timeline = await api("/api/console/orders/" + encodeURIComponent(id));
  } catch (error) {
    if (error.status !== 404) throw error;
    timeline = { order: null, steps: [] };
  }
  if (state.order !== id) return;
  const order = timeline.order;
  $("#timeline-title").textContent = "Order " + id;
  $("#timeline-summary").textContent = order
    ? `${order.status} · ${order.items} items · $${order.total.toFixed(2)} · customer ${order.customerId}`
    : "nothing seen about this order yet";
  state.steps = [];
  $("#steps tbody").replaceChildren();
  for (const step of timeline.steps) addStep(step);
  loadSaga(id);
}

function addStep(step) {
  if (state.steps.some((known) => known.id === step.id)) return;
  state.steps.push(step);
  state.steps.sort((a, b) => a.sentAt - b.sentAt);
  const first = state.steps[0].sentAt;
  const rows = state.steps.map((known, index) => {
    const row = document.createElement("tr");
    row.dataset.name = known.name;
    const since = ((known.sentAt - first) / 1000).toFixed(1);
    const delta = index ? ((known.sentAt - state.steps[index - 1].sentAt) / 1000).toFixed(1) : "";
    const kind = known.outcome === "failure" ? "reply failure" : known.kind;
    row.innerHTML = `<td class="num">${since}</td><td class="num">${delta}</td><td><span class="kind ${kind}"></span></td><td></td><td class="mono"></td><td class="handled"></td>`;
    row.children[2].firstChild.textContent = known.outcome ? `${known.kind} (${known.outcome})` : known.kind;
    row.children[3].textContent = from(known, state.steps.slice(0, index));
    row.children[4].textContent = known.name;
    const handled = (known.handledBy || []).map((by) => `${by.consumer} +${((by.at - known.sentAt) / 1000).toFixed(1)} ms`);
    const dead = (known.deadLetters || []).map((letter) => `dead-lettered by ${letter.consumer} after ${letter.attempts} attempts: ${letter.error}`);
    row.children[5].textContent = handled.join(", ");
    if (dead.length) {
      const span = document.createElement("div");
      span.className = "dead";
      span.textContent = dead.join("; ");
      row.children[5].append(span);
    }
    return row;
  });
  $("#steps tbody").replaceChildren(...rows);
}

// Who sent a step: an event's module; a command goes from the saga to the module of its
// channel; a reply comes back from the module of the command before it.
function from(step, earlier) {
  const module = (subject) => subject.split(".")[1] || "?";
  if (step.kind === "command") return `${step.producer} → ${module(step.subject)}`;
  if (step.kind === "reply") {
    const command = [...earlier].reverse().find((known) => known.kind === "command");
    return `${command ? module(command.subject) : "?"} → ${module(step.subject)}`;
  }
  return step.producer;
}

async function loadSaga(id) {
  const body = $("#saga tbody");
  try {
    const { saga } = await api("/api/cosec/sagas/" + encodeURIComponent(id));
    const first = saga.history.length ? saga.history[0].at : 0;
    body.replaceChildren(...saga.history.map((entry) => {
      const row = document.createElement("tr");
      row.innerHTML = `<td class="num">${((entry.at - first) / 1000).toFixed(1)}</td><td class="num">${entry.step}</td><td><span class="kind"></span></td><td></td><td class="mono"></td>`;
      row.children[2].firstChild.textContent = entry.compensating ? "compensating" : "forward";
      if (entry.compensating) row.children[2].firstChild.classList.add("compensating");
      row.children[3].textContent = entry.event;
      row.children[4].textContent = entry.message;
      return row;
    }));
  } catch (error) {
    body.innerHTML = `<tr><td colspan="5" class="empty"></td></tr>`;
    body.querySelector("td").textContent = error.status === 404 ? "no saga for this order (yet)" : error.message;
  }
}

// ---- the queues --------------------------------------------------------------------------

async function loadOperations() {
  showOperations(await api("/api/console/operations"));
}

function rows(selector, items, cells, empty) {
  const body = $(selector + " tbody");
  if (!items.length) {
    body.innerHTML = `<tr><td class="empty" colspan="6"></td></tr>`;
    body.querySelector("td").textContent = empty;
    return;
  }
  body.replaceChildren(...items.map((item) => {
    const row = document.createElement("tr");
    for (const [text, className] of cells(item)) {
      const cell = document.createElement("td");
      if (className) cell.className = className;
      if (text instanceof Node) cell.append(text); else cell.textContent = text;
      row.append(cell);
    }
    return row;
  }));
  return body;
}

function showOperations(data) {
  rows("#outboxes", data.outboxes, (o) => [[o.module], [o.pending ?? "?", "num"], [o.oldestPendingMs == null ? "–" : o.oldestPendingMs + " ms", "num"]], "no outbox in this process");
  rows("#consumers", data.consumers, (c) => [[c.module], [c.consumer, "mono"], [c.lag ?? "?", "num"]], "no consumer in this process");
  const body = rows("#dead-letters", data.deadLetters, (d) => [
    [`${d.module} / ${d.consumer}`],
    [`${d.name} ${d.id}`, "mono"],
    [d.attempts, "num"],
    [age(d.deadAt)],
    [d.error.split("\n")[0]],
    [actions(d)],
  ], "no dead letters");
  if (body) [...body.children].forEach((row, index) => { row.dataset.id = data.deadLetters[index].id; });
  loadStuck();
}

function actions(letter) {
  const span = document.createElement("span");
  if (letter.replayRequested) { span.textContent = "replay requested"; return span; }
  const path = `/api/console/dead-letters/${encodeURIComponent(letter.module)}/${encodeURIComponent(letter.consumer)}/${encodeURIComponent(letter.id)}`;
  const replay = document.createElement("button");
  replay.className = "replay";
  replay.textContent = "Replay";
  replay.onclick = () => act(replay, path + "/replay", "POST");
  const discard = document.createElement("button");
  discard.className = "discard";
  discard.textContent = "Discard";
  discard.onclick = () => { if (confirm("Discard this message for good?")) act(discard, path, "DELETE"); };
  span.append(replay, " ", discard);
  return span;
}

async function act(button, path, method) {
  button.disabled = true;
  try {
    await api(path, { method });
    await loadOperations();
  } catch (error) {
    button.disabled = false;
    button.title = error.message;
  }
}

let stuckShown = 0;
async function loadStuck() {
  if (Date.now() - stuckShown < 5000) return; // a slow-moving list: not at every tick
  stuckShown = Date.now();
  try {
    const { sagas } = await api("/api/cosec/stuck-sagas");
    rows("#stuck", sagas, (s) => {
      const last = s.history[s.history.length - 1] || {};
      return [[s.id, "mono"], [s.status], [s.step, "num"], [s.compensating ? "compensating" : "forward"], [`${last.event || ""} ${last.message || ""}`]];
    }, "no stuck sagas");
  } catch (error) {
    rows("#stuck", [], () => [], error.status === 404 ? "sagas are not in this process" : error.message);
  }
}

// ---- navigation --------------------------------------------------------------------------

function route() {
  const hash = decodeURIComponent(location.hash.slice(1));
  const order = hash.startsWith("order=") ? hash.slice(6) : null;
  const view = order ? "timeline" : hash === "operations" ? "operations" : "board";
  const changed = view !== state.view || order !== state.order;
  state.view = view;
  state.order = order;
  for (const name of ["board", "operations", "timeline"]) $("#" + name).hidden = name !== view;
  $("#tab-board").classList.toggle("active", view === "board");
  $("#tab-operations").classList.toggle("active", view === "operations");
  if (changed) resubscribe();
}

$("#token-button").addEventListener("click", () => {
  const token = prompt("Bearer token (admin) for this mall; empty to forget it", sessionStorage.getItem("mallbots-token") || "");
  if (token === null) return;
  if (token.trim()) sessionStorage.setItem("mallbots-token", token.trim());
  else sessionStorage.removeItem("mallbots-token");
  resubscribe();
});
window.addEventListener("hashchange", route);
setInterval(schedule, 5000); // ages on the cards ("12 s ago"); no request
route();
live();
