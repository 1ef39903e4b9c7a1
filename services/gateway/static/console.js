// The web console: plain JS over the /v1 API and its SSE stream (docs/gateway.md).
// The key lives in sessionStorage (this tab) and in a SameSite cookie that only the
// stream endpoint reads, because EventSource cannot send an Authorization header.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  key: sessionStorage.getItem("agentRuntimeKey") || "",
  session: sessionStorage.getItem("agentRuntimeSession") || "",
  source: null,
  lastId: null,
  seen: new Set(),        // "invocation:seq" of every delta shown: a resume never doubles text
  bubbles: new Map(),     // turn id -> the assistant bubble being streamed
  shownMessages: new Set(),
  doneTurns: new Set(),   // turns whose answer is shown: a late or held delta of theirs is stale
  held: null,             // events that arrived while the history loads (shown after it)
  onStarted: null,        // resolves when the stream started (or failed): then read the history
};

function status(text) { $("status").textContent = text; }

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: { Authorization: `Bearer ${state.key}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = response.status === 204 ? null : await response.json();
  if (!response.ok) throw new Error(`${data.code || response.status}: ${data.detail || data.title}`);
  return data;
}

function add(kind, text, who) {
  const item = document.createElement("li");
  item.className = kind;
  if (who) {
    const label = document.createElement("span");
    label.className = "who";
    label.textContent = who;
    item.append(label);
  }
  const body = document.createElement("span");
  body.className = "text";
  body.textContent = text;
  item.append(body);
  $("log").append(item);
  item.scrollIntoView({ block: "end" });
  return item;
}

function bubbleFor(turnId, agent) {
  let bubble = state.bubbles.get(turnId);
  if (!bubble || bubble.dataset.agent !== agent) {
    bubble = add("assistant streaming", "", agent);
    bubble.dataset.agent = agent;
    bubble.dataset.turn = turnId;
    state.bubbles.set(turnId, bubble);
  }
  return bubble;
}

const handlers = {
  message_accepted(e) {
    if (state.shownMessages.has(e.message_id)) return;
    state.shownMessages.add(e.message_id);
    add("user", e.content, e.author_name || "you");
  },
  turn_started(e) {
    if (state.doneTurns.has(e.turn_id)) return;
    add("system", `${e.agent} is answering…`);
  },
  agent_switched(e) {
    showAgent(e.to_agent);
    if (e.turn_id && state.doneTurns.has(e.turn_id)) return;
    add("system", `Agent switched: ${e.from_agent} → ${e.to_agent}${e.reason ? ` (${e.reason})` : ""}`);
  },
  token(e) {
    if (state.doneTurns.has(e.turn_id)) return;
    const key = `${e.invocation_id}:${e.seq}`;
    if (state.seen.has(key)) return;
    state.seen.add(key);
    const bubble = bubbleFor(e.turn_id, e.agent);
    bubble.querySelector(".text").textContent += e.delta;
    bubble.dataset.deltas = String(Number(bubble.dataset.deltas || 0) + 1);
  },
  assistant_message(e) {
    state.doneTurns.add(e.turn_id);
    if (state.shownMessages.has(e.message_id)) return;
    state.shownMessages.add(e.message_id);
    const bubble = bubbleFor(e.turn_id, e.agent);
    bubble.querySelector(".text").textContent = e.content;  // the stored answer is the truth
    bubble.classList.remove("streaming");
    state.bubbles.delete(e.turn_id);
  },
  turn_completed() { status("Live"); },
  turn_failed(e) { add("system error", `The turn failed: ${e.reason || e.error_class}`); },
  turn_cancelled(e) { add("system", `Stopped${e.requested_by ? ` by ${e.requested_by}` : ""}`); },
  turn_stopped() { status("Live"); },
  command_rejected(e) { add("system error", `Refused: ${e.reason} ${e.detail || ""}`); },
  session_closed(e) { add("system", `Session closed ${e.reason || ""}`); },
  session_expired() { add("system", "Session expired"); },
  session_reopened() { add("system", "Session reopened"); },
  stream_dropped(e) {
    status(`Stream dropped (${e.reason}); resuming…`);
    connect(state.lastId);
  },
};

function connect(after) {
  if (state.source) state.source.close();
  if (!state.session) return;
  const query = after ? `?after=${encodeURIComponent(after)}` : "";
  const source = new EventSource(`/v1/sessions/${encodeURIComponent(state.session)}/events${query}`);
  state.source = source;
  status("Connecting…");
  const listen = (name) => source.addEventListener(name, (message) => {
    if (message.lastEventId) state.lastId = message.lastEventId;
    if (name === "stream_started") {
      status("Live");
      if (state.onStarted) state.onStarted();
      return;
    }
    const data = JSON.parse(message.data);
    if (state.held) state.held.push([name, data]);
    else handlers[name](data);
  });
  ["stream_started", ...Object.keys(handlers)].forEach(listen);
  // EventSource reconnects by itself with Last-Event-ID after a network error, but gives up
  // on an error answer (503, 410…): then try again from the last id after a jittered pause.
  source.onerror = () => {
    if (state.onStarted) state.onStarted();  // show the history even if the stream cannot open
    if (source.readyState !== EventSource.CLOSED) { status("Reconnecting…"); return; }
    status("Disconnected; retrying…");
    setTimeout(() => { if (state.source === source) recover(); }, 2000 + Math.random() * 3000);
  };
}

// Resume from the last id; if the gateway says it is past retention (410) or not this
// session's (400), show the stored history instead and stream from now. Without a last id
// (no stream of this session ever started) a stream from now would miss what happened since
// the history was read: read it again, after the stream started.
async function recover() {
  const path = `/v1/sessions/${encodeURIComponent(state.session)}/events`;
  if (!state.lastId) {
    await streamWithHistory();
    return;
  }
  try {
    // HEAD: the gateway's decision on the id without opening (and replaying) a stream.
    const answer = await fetch(`${path}?after=${encodeURIComponent(state.lastId)}`,
      { method: "HEAD", headers: { Authorization: `Bearer ${state.key}` } });
    if (answer.status === 410 || answer.status === 400) {
      state.lastId = null;
      await streamWithHistory();
      return;
    }
  } catch (error) { /* network trouble: the EventSource below will say so */ }
  connect(state.lastId);
}

// A stream from now on first, then the history: what happens between the two reads arrives
// on the stream and is held until the history is shown (deduplicated), never lost.
async function streamWithHistory() {
  state.held = [];
  const started = new Promise((resolve) => { state.onStarted = resolve; });
  connect(null);
  await started;
  state.onStarted = null;
  try {
    await loadHistory();
  } finally {
    const held = state.held;
    state.held = null;
    for (const [name, data] of held) handlers[name](data);
  }
}

function showAgent(agent) {
  $("agent-current").textContent = `Current agent: ${agent}`;
  $("agent-pick").value = agent;
}

async function loadHistory() {
  $("log").replaceChildren();
  state.bubbles.clear();
  let cursor = null;
  do {
    const page = await api("GET", `/v1/sessions/${encodeURIComponent(state.session)}/messages?limit=100${cursor === null ? "" : `&cursor=${cursor}`}`);
    for (const m of page.messages) {
      state.shownMessages.add(m.message_id);
      if (m.role === "assistant" && m.turn_id) state.doneTurns.add(m.turn_id);
      add(m.role === "user" ? "user" : m.role === "assistant" ? "assistant" : "system", m.content,
          m.role === "user" ? (m.author_name || "you") : (m.agent || m.role));
    }
    cursor = page.next_cursor;
  } while (cursor !== null && cursor !== undefined);
}

async function openSession(id) {
  // Another session's stream id would resume this one's partition at the wrong place.
  if (state.source) state.source.close();
  state.source = null;
  state.lastId = null;
  state.session = id;
  sessionStorage.setItem("agentRuntimeSession", id);
  $("chat").hidden = false;
  $("chat-session").textContent = id;
  $("session-pick").value = id;
  const context = await api("GET", `/v1/sessions/${encodeURIComponent(id)}/agent`);
  showAgent(context.current_agent);
  await streamWithHistory();
}

async function refreshSessions() {
  const page = await api("GET", "/v1/sessions?page_size=100");
  const pick = $("session-pick");
  pick.replaceChildren(new Option("— choose —", ""));
  for (const s of page.sessions) pick.append(new Option(`${s.title || s.session_id} (${s.status})`, s.session_id));
  if (state.session) pick.value = state.session;
}

async function start() {
  document.cookie = `agent_runtime_key=${encodeURIComponent(state.key)}; path=/v1/; SameSite=Strict`;
  const agents = await api("GET", "/v1/agents");
  $("agent-pick").replaceChildren(...agents.agents.map((a) => new Option(a.name, a.name)));
  $("key-form").hidden = true;
  $("sessions").hidden = false;
  await refreshSessions();
  if (state.session) await openSession(state.session);
  else status("Create or open a session");
}

function guarded(action) {
  return async (event) => {
    if (event) event.preventDefault();
    try { await action(event); } catch (error) { status(String(error.message || error)); }
  };
}

$("key-form").addEventListener("submit", guarded(async () => {
  state.key = $("api-key").value.trim();
  sessionStorage.setItem("agentRuntimeKey", state.key);
  await start();
}));
$("session-new").addEventListener("click", guarded(async () => {
  const created = await api("POST", "/v1/sessions", { title: `Console ${new Date().toLocaleString()}` });
  await refreshSessions();
  await openSession(created.session_id);
}));
$("session-refresh").addEventListener("click", guarded(refreshSessions));
$("session-pick").addEventListener("change", guarded(async () => {
  if ($("session-pick").value) await openSession($("session-pick").value);
}));
$("agent-switch").addEventListener("click", guarded(async () => {
  const context = await api("POST", `/v1/sessions/${encodeURIComponent(state.session)}/agent`,
                            { agent: $("agent-pick").value, reason: "picked in the console" });
  showAgent(context.current_agent);
}));
$("reconnect").addEventListener("click", guarded(recover));
$("send-form").addEventListener("submit", guarded(async () => {
  const text = $("message").value.trim();
  if (!text) return;
  $("message").value = "";
  await api("POST", `/v1/sessions/${encodeURIComponent(state.session)}/messages`, { content: text });
}));
$("message").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("send-form").requestSubmit(); }
});

if (state.key) guarded(start)();
