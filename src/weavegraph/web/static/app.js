// weavegraph live run page: follows one run's events over SSE (vanilla JS, no build step).
// The model mirrors weavegraph/_progress.py (the terminal view): lifecycle diagnostics drive
// the node states, LLM chunks are joined per stream, GAP diagnostics count dropped events.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const P = "__weavegraph_";
  const SCOPES = {
    started: P + "node_started__",
    finished: P + "node_finished__",
    retry: P + "node_retry__",
    failed: P + "node_failed__",
    gap: P + "gap__",
    end: P + "stream_end__",
  };
  const MAX_ROWS = 2000; // the log keeps the newest rows only, so a long run stays light

  // Everything the page knows about the run it follows (window.weavegraph, for tests too).
  const view = (window.weavegraph = {
    runId: null,
    source: null,
    lastId: 0,
    events: 0,
    duplicates: 0,
    holes: 0,
    dropped: 0,
    reconnects: 0,
    step: 0,
    status: null,
    nodes: new Map(),
    streams: new Map(),
  });
  let pendingRows = [];
  let flushScheduled = false;

  // -- graph -------------------------------------------------------------------------------

  async function loadGraph() {
    const response = await fetch("/graph.svg");
    $("graph").innerHTML = await response.text();
    const select = $("node-filter");
    for (const g of document.querySelectorAll("#graph .wg-node[data-node]")) {
      const name = g.dataset.node;
      if (!name || g.classList.contains("wg-terminal")) continue;
      view.nodes.set(name, { el: g, state: "pending", runs: 0 });
      const option = document.createElement("option");
      option.value = option.textContent = name;
      select.append(option);
    }
  }

  function terminal(name, state) {
    const g = document.querySelector(`#graph .wg-node[data-node="${name}"]`);
    if (g) g.dataset.state = state;
  }

  function setNode(name, state, event) {
    const node = view.nodes.get(name);
    if (!node) return;
    node.state = state;
    node.el.dataset.state = state;
    if (state === "running" && (event.metadata.attempt || 1) === 1) {
      node.runs += 1;
      const badge = node.el.querySelector(".wg-badge");
      if (badge && node.runs > 1) badge.textContent = "×" + node.runs;
    }
  }

  // -- events ------------------------------------------------------------------------------

  function handle(event) {
    if (event.id > 0) {
      if (event.id <= view.lastId) {
        view.duplicates += 1; // resent after a reconnection: already shown
        return;
      }
      if (view.lastId && event.id > view.lastId + 1) view.holes += event.id - view.lastId - 1;
      view.lastId = event.id;
    }
    view.events += 1;
    const meta = event.metadata || {};
    if (typeof meta.step === "number") view.step = Math.max(view.step, meta.step);
    if (event.type === "llm") llm(event, meta);
    else if (event.type === "diagnostic") diagnostic(event, meta);
    queueRow(event, meta);
    updateStats();
  }

  function diagnostic(event, meta) {
    const node = meta.node_id;
    if (event.scope === SCOPES.started && node) setNode(node, "running", event);
    else if (event.scope === SCOPES.finished && node) setNode(node, "done", event);
    else if (event.scope === SCOPES.retry && node) setNode(node, "retrying", event);
    else if (event.scope === SCOPES.failed && node) setNode(node, "failed", event);
    else if (event.scope === SCOPES.gap) view.dropped += meta.missed || 0;
    else if (event.scope === SCOPES.end) finish(meta.status || "completed");
  }

  function llm(event, meta) {
    const key = meta.stream_id || meta.node_id || "llm";
    let stream = view.streams.get(key);
    if (!stream) {
      const empty = document.querySelector("#streams .empty");
      if (empty) empty.remove();
      const card = document.createElement("div");
      card.className = "stream";
      card.dataset.stream = key;
      card.innerHTML = '<div class="stream-head"><span class="name"></span><span class="who"></span></div>';
      card.querySelector(".name").textContent = key;
      card.querySelector(".who").textContent = meta.node_id ? "node " + meta.node_id : "";
      const text = document.createElement("p");
      text.className = "stream-text";
      card.append(text);
      $("streams").append(card);
      stream = { card, text: text.appendChild(document.createTextNode("")) };
      view.streams.set(key, stream);
    }
    if (event.scope === "error") {
      stream.card.classList.add("error", "done");
      stream.text.appendData((stream.text.data ? "\n" : "") + "error: " + event.message);
    } else if (meta.is_final) {
      stream.card.classList.add("done");
      if (event.message && !stream.text.data) stream.text.appendData(event.message);
    } else {
      stream.text.appendData(event.message);
    }
    const box = $("streams");
    box.scrollTop = box.scrollHeight;
  }

  // -- the event log -----------------------------------------------------------------------

  function queueRow(event, meta) {
    pendingRows.push([event, meta]);
    if (!flushScheduled) {
      flushScheduled = true;
      requestAnimationFrame(flushRows);
    }
  }

  function flushRows() {
    flushScheduled = false;
    const log = $("log");
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    const fragment = document.createDocumentFragment();
    for (const [event, meta] of pendingRows) fragment.append(row(event, meta));
    pendingRows = [];
    log.append(fragment);
    while (log.childElementCount > MAX_ROWS) log.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function row(event, meta) {
    const div = document.createElement("div");
    const life = event.scope.startsWith(P);
    div.className = `row k-${event.type}${life ? " life" : ""}`;
    if (event.scope === SCOPES.gap) div.classList.add("gap");
    if (event.scope === SCOPES.end) div.classList.add("end");
    if (event.scope === SCOPES.failed) div.classList.add("failed");
    div.dataset.id = event.id;
    div.dataset.node = meta.node_id || "";
    const scope = life ? event.scope.slice(P.length, -2) : event.scope;
    const cells = [event.id || "·", (event.timestamp || "").slice(11, 23), event.type, meta.node_id || "", scope, event.message];
    for (const [index, name] of ["id", "time", "kind", "node", "scope", "msg"].entries()) {
      const span = document.createElement("span");
      span.className = name;
      span.textContent = cells[index];
      if (name === "msg") span.title = event.message;
      div.append(span);
    }
    return div;
  }

  function applyFilters() {
    const log = $("log");
    for (const box of document.querySelectorAll("#filters input[data-kind]")) {
      log.classList.toggle("hide-" + box.dataset.kind, !box.checked);
    }
    const node = $("node-filter").value;
    let style = $("node-filter-style");
    if (!style) {
      style = document.createElement("style");
      style.id = "node-filter-style";
      document.head.append(style);
    }
    style.textContent = node ? `#log .row:not([data-node="${CSS.escape(node)}"]) { display: none; }` : "";
  }

  // -- the connection ----------------------------------------------------------------------

  function setConn(state, text) {
    const pill = $("conn");
    pill.dataset.state = state;
    pill.textContent = text || state;
  }

  function connect() {
    // A fresh EventSource cannot set Last-Event-ID; the query parameter says it instead.
    const query = view.lastId ? `?last_event_id=${view.lastId}` : "";
    const source = new EventSource(`/runs/${encodeURIComponent(view.runId)}/events${query}`);
    view.source = source;
    source.addEventListener("workflow-event", (message) => {
      if (view.source === source) handle(JSON.parse(message.data));
    });
    source.onopen = () => setConn("live");
    source.onerror = () => {
      if (view.source !== source) return;
      view.reconnects += 1;
      updateStats();
      setConn("reconnecting", "reconnecting…");
      // CONNECTING: the browser retries by itself, sending Last-Event-ID. CLOSED: the
      // server refused (e.g. 204, the run is over): ask how the run ended, or try again.
      if (source.readyState === EventSource.CLOSED) setTimeout(() => recover(source), 1000);
    };
  }

  async function recover(source) {
    if (view.source !== source) return;
    try {
      const response = await fetch(`/runs/${encodeURIComponent(view.runId)}`);
      const info = await response.json();
      if (response.status === 404) {
        view.source = null;
        setConn("error", "unknown run");
        showMessage(info.error);
        $("start").disabled = false;
        return;
      }
      const live = info.status === "running" || info.status === "queued";
      if (response.ok && !live && view.lastId >= info.events) {
        finish(info.status);
        return;
      }
    } catch (error) {
      // the server is unreachable: keep trying
    }
    if (view.source === source) connect();
  }

  async function finish(status) {
    view.status = status;
    if (view.source) view.source.close();
    view.source = null;
    setConn("ended", "ended · " + status);
    const ok = status === "completed" || status === "succeeded";
    terminal("__end__", ok ? "done" : "failed");
    $("cancel").disabled = true;
    $("start").disabled = false;
    updateStats();
    try {
      const response = await fetch(`/runs/${encodeURIComponent(view.runId)}`);
      const info = await response.json();
      if (info.error) showMessage(info.error);
    } catch (error) {
      // the summary is a nicety; the events already told the story
    }
  }

  // -- runs --------------------------------------------------------------------------------

  function reset(runId) {
    if (view.source) view.source.close();
    Object.assign(view, { runId, source: null, lastId: 0, events: 0, duplicates: 0, holes: 0, dropped: 0, reconnects: 0, step: 0, status: null });
    for (const node of view.nodes.values()) {
      node.state = "pending";
      node.runs = 0;
      node.el.dataset.state = "pending";
      const badge = node.el.querySelector(".wg-badge");
      if (badge) badge.textContent = "";
    }
    terminal("__start__", "done");
    terminal("__end__", "pending");
    view.streams.clear();
    $("streams").innerHTML = '<p class="empty">Streamed text appears here as it is generated.</p>';
    $("log").replaceChildren();
    pendingRows = [];
    showMessage("");
  }

  function watch(runId) {
    reset(runId);
    history.replaceState(null, "", "#run=" + encodeURIComponent(runId));
    $("cancel").disabled = false;
    $("start").disabled = true;
    setConn("connecting", "connecting…");
    updateStats();
    connect();
  }

  async function startRun(event) {
    event.preventDefault();
    showMessage("");
    const response = await fetch("/runs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ input: $("input").value }),
    });
    const body = await response.json();
    if (!response.ok) {
      showMessage(body.error || `the server answered ${response.status}`);
      return;
    }
    watch(body.session_id);
  }

  async function cancelRun() {
    if (!view.runId) return;
    const response = await fetch(`/runs/${encodeURIComponent(view.runId)}/cancel`, { method: "POST" });
    if (!response.ok) showMessage((await response.json()).error);
  }

  function showMessage(text, info) {
    const box = $("message");
    box.textContent = text;
    box.classList.toggle("info", Boolean(info));
  }

  function updateStats() {
    $("run-id").textContent = view.runId ? view.runId.slice(0, 12) : "–";
    $("run-id").title = view.runId || "";
    const status = view.status || (view.runId ? "running" : "–");
    $("run-status").textContent = status;
    $("run-status").dataset.state = status;
    $("run-step").textContent = view.step;
    $("run-events").textContent = view.events;
    $("run-dropped").textContent = view.dropped;
    $("run-reconnects").textContent = view.reconnects;
  }

  async function pollHealth() {
    try {
      const health = await (await fetch("/health")).json();
      const pill = $("health");
      pill.dataset.state = health.status;
      pill.textContent = health.status;
      const errors = health.sinks.reduce((sum, sink) => sum + sink.errors, 0);
      $("sink-errors").textContent = errors;
      const last = health.sinks.find((sink) => sink.last_error);
      const m = health.metrics || {};
      pill.title = `sinks: ${health.sinks.map((s) => `${s.name} ${s.errors} errors`).join(", ") || "none"}` +
        `\nruns running: ${m.runs_running} · events dropped (server): ${m.events_dropped} · SSE clients: ${m.sse_clients}` +
        (last ? `\nlast error: ${last.last_error}` : "");
    } catch (error) {
      $("health").dataset.state = "unknown";
      $("health").textContent = "health ?";
    }
  }

  // -- start -------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", async () => {
    $("start-form").addEventListener("submit", startRun);
    $("cancel").addEventListener("click", cancelRun);
    $("input").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        $("start-form").requestSubmit();
      }
    });
    for (const box of document.querySelectorAll("#filters input")) box.addEventListener("change", applyFilters);
    $("node-filter").addEventListener("change", applyFilters);
    await loadGraph();
    pollHealth();
    setInterval(pollHealth, 2000);
    const match = location.hash.match(/^#run=([\w-]+)$/);
    if (match) watch(decodeURIComponent(match[1]));
    else updateStats();
    document.body.dataset.ready = "true";
  });
})();
