// The agent's workspace (/agent): state buttons, the screen pop from /agent/events, the
// ticket form bound to the call (drafts every 2 s and on hang-up), the browser phone, and
// the knowledge base (a search box, proposals from the description, an entry used).
// A file of its own: the Content-Security-Policy runs no inline script.
const $ = (id) => document.getElementById(id);
const csrf = document.body.dataset.csrf;
const form = $("ticket-form");
let phone = null;
let pop = null; // the pop of the call the form is bound to
let dirty = false;
let saveTimer = null;

function showError(message) {
  const box = $("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function post(url, fields) {
  const body = new FormData();
  body.append("csrf", csrf);
  for (const [k, v] of Object.entries(fields)) body.append(k, v);
  const response = await fetch(url, {
    method: "POST", body, headers: { Accept: "application/json", "X-CSRF-Token": csrf },
  });
  let data = {};
  try { data = await response.json(); } catch { data = {}; }
  if (!response.ok) throw new Error(data.detail || `${response.status}`);
  return data;
}

function showState(s) {
  if (!s) return;
  const el = $("state");
  el.dataset.state = s.state;
  el.className = `state s-${s.state}`;
  el.textContent = s.label + (s.reason ? ` · ${s.reason}` : "");
}

async function setState(action) {
  showError("");
  try {
    showState(await post("/agent/state", { action, reason: $("pause-reason").value }));
  } catch (e) {
    showError(`状态未改变：${e.message}`);
  }
}

// -- the pop ---------------------------------------------------------------------------
function renderPop(p) {
  const box = $("pop");
  if (!p) { box.hidden = true; $("no-call").hidden = false; return; }
  box.hidden = false;
  $("no-call").hidden = true;
  box.dataset.uniqueid = p.uniqueid;
  $("pop-number").textContent = p.number || "未知号码";
  $("pop-line").textContent = p.line || "-";
  $("pop-queue").textContent = p.queue || "-";
  const state = { ringing: "振铃", connected: "通话中", ended: "已结束", missed: "未接" }[p.state] || "";
  $("pop-state").textContent = p.callback ? `回拨 callback · ${state}` : state;
  const warn = $("pop-warning");
  warn.textContent = p.warning || "";
  warn.hidden = !p.warning;
  $("pop-tickets").replaceChildren(...p.tickets.map((t) => {
    const li = document.createElement("li");
    li.className = t.open ? "open" : "done";
    li.dataset.number = t.number;
    const link = document.createElement("b");
    link.textContent = t.number;
    li.append(link, ` ${t.status} · ${t.category || "-"} · ${t.unit || "未派单"}`,
      t.due ? ` · 期限 ${t.due}` : "", t.survey ? ` · 回访 ${t.survey}` : "",
      t.summary ? ` — ${t.summary}` : "");
    return li;
  }));
  const merge = $("f-merge-into");
  merge.replaceChildren(merge.options[0], ...p.tickets.filter((t) => t.open).map((t) => {
    const o = document.createElement("option");
    o.value = t.number;
    o.textContent = `${t.number} ${t.category || ""}`;
    return o;
  }));
}

function bind(p) {
  // the form follows a new call only when it is not holding another call's unsaved work
  if (pop && pop.uniqueid !== p.uniqueid && dirty) return;
  if (!pop || pop.uniqueid !== p.uniqueid) {
    form.reset();
    showUsed(null);
    dirty = false;
    $("form-message").textContent = "";
  }
  pop = p;
  $("f-uniqueid").value = p.uniqueid;
  $("bound").textContent = `通话 ${p.uniqueid}`;
  $("file").disabled = false;
  renderPop(p);
  if (!$("f-category").value && p.category) $("f-category").value = p.category;
  showOutcome();
}

// -- drafts ----------------------------------------------------------------------------
function fields() {
  const data = {};
  for (const [k, v] of new FormData(form).entries()) if (k !== "csrf" && k !== "uniqueid") data[k] = v;
  return data;
}

function restore(body) {
  const data = JSON.parse(body);
  for (const el of form.elements) {
    if (!el.name || el.name === "csrf" || el.name === "uniqueid" || !(el.name in data)) continue;
    if (el.type === "radio") el.checked = el.value === data[el.name];
    else if (el.type === "checkbox") el.checked = data[el.name] === el.value;
    else el.value = data[el.name];
  }
  showUsed(data.kb_offer ? { offer_id: data.kb_offer, label: data.kb_label || "" } : null);
  showOutcome();
}

async function saveDraft() {
  clearTimeout(saveTimer);
  saveTimer = null;
  if (!pop || !dirty) return;
  try {
    const saved = await post("/agent/draft", { uniqueid: pop.uniqueid, body: JSON.stringify(fields()) });
    dirty = false;
    $("draft-state").textContent = `草稿已保存 ${saved.updated}`;
  } catch (e) {
    $("draft-state").textContent = `草稿未保存：${e.message}`;
  }
}

function renderDrafts(drafts) {
  $("drafts").replaceChildren(...drafts.map((d) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = `通话 ${d.uniqueid} · ${d.updated}`;
    button.addEventListener("click", () => openDraft(d));
    li.append(button);
    return li;
  }));
}

async function openDraft(d) {
  await saveDraft();
  const response = await fetch(`/agent/pop?uniqueid=${encodeURIComponent(d.uniqueid)}`);
  if (!response.ok) { showError("无法打开这通电话"); return; }
  dirty = false;
  pop = null;
  bind(await response.json());
  restore(d.body);
}

// -- the form --------------------------------------------------------------------------
function showOutcome() {
  const chosen = form.elements.handling.value;
  for (const box of document.querySelectorAll(".outcome")) box.hidden = box.dataset.for !== chosen;
}

form.addEventListener("input", () => {
  dirty = true;
  showOutcome();
  if (!saveTimer) saveTimer = setTimeout(saveDraft, 2000);
});

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!pop) return;
  clearTimeout(saveTimer);
  showError("");
  try {
    const data = fields();
    const done = await post("/agent/file", { ...data, uniqueid: pop.uniqueid });
    $("form-message").textContent = `已提交工单 ${done.number}（${done.status_label}${done.unit ? " → " + done.unit : ""}${done.due ? "，期限 " + done.due : ""}）`;
    dirty = false;
    form.reset();
    showUsed(null);
    showOutcome();
    $("file").disabled = true;
    loadCurrent();
  } catch (e) {
    showError(`工单未提交：${e.message}`);
  }
});

// -- the phone (agent_phone.js, if it is there) -------------------------------------------
async function startPhone() {
  if (document.body.dataset.phone !== "webrtc") return;
  let module;
  try {
    module = await import("/static/agent_phone.js");
  } catch {
    $("phone-state").textContent = "网页电话不可用 browser phone unavailable";
    return;
  }
  try {
    const seat = await (await fetch("/agent/phone", { cache: "no-store" })).json();
    if (!seat.ok) return;
    phone = module.createPhone({
      wsUrl: seat.wsUrl, uri: seat.uri, password: seat.password,
      audioElement: $("remote-audio"),
      onEvent: (e) => {
        const words = { registered: "网页电话已注册", unregistered: "网页电话未注册", incoming: "来电振铃", connected: "通话中", ended: "通话结束", "registration-failed": "注册失败" };
        if (words[e.type]) $("phone-state").textContent = words[e.type];
        $("answer").disabled = e.type !== "incoming";
        $("hangup").disabled = !(e.type === "incoming" || e.type === "connected");
        if (e.type === "ended") { dirty = true; saveDraft(); }
      },
    });
    await phone.register();
  } catch (e) {
    $("phone-state").textContent = `网页电话出错：${e.message}`;
  }
}

// -- live: state and pops ----------------------------------------------------------------
async function loadCurrent() {
  const response = await fetch("/agent/current", { cache: "no-store" });
  if (!response.ok) return;
  const data = await response.json();
  showState(data.state);
  renderDrafts(data.drafts);
  if (data.pop && !pop) bind(data.pop);
  else if (!pop && data.drafts.length) openDraft(data.drafts[0]);
}

const source = new EventSource("/agent/events");
source.addEventListener("desk", (e) => {
  const data = JSON.parse(e.data);
  showState(data.state);
  $("link").textContent = data.connected ? "" : downText(data.down);
  if (!data.pop) return;
  if (pop && pop.uniqueid === data.pop.uniqueid) {
    const ended = pop.state === "connected" && data.pop.state === "ended";
    pop = data.pop;
    renderPop(pop);
    if (ended) { dirty = true; saveDraft(); } // the caller hung up: keep what was typed
  } else {
    bind(data.pop);
  }
});
source.addEventListener("end", () => {
  source.close();
  showError("会话已结束，请重新登录 Session ended: log in again");
});

// -- the knowledge base ------------------------------------------------------------------
// Showing entries records nothing; using one (a button, or Enter on it) is what the caller
// hears, so /agent/kb/use records the offer and the answer goes into the reply.
const kb = { timer: null, asked: 0, source: "" };
const PROPOSE_AFTER_MS = 400;
const KB_QUERY_CHARS = 300; // a long description is asked by its opening (a short URL)

function shortAnswer(text) {
  return text.length > 70 ? `${text.slice(0, 70)}…` : text;
}

function kbItem(m, query) {
  const li = document.createElement("li");
  li.dataset.key = m.key;
  li.dataset.offered = m.offered ? "1" : "0";
  li.className = m.offered ? "offered" : "weak";
  const head = document.createElement("div");
  const title = document.createElement("b");
  title.textContent = m.title;
  const score = document.createElement("span");
  score.className = "score";
  score.textContent = m.offered ? ` ${m.score.toFixed(2)}` : ` ${m.score.toFixed(2)} 低于阈值 below threshold`;
  head.append(title, score);
  const answer = document.createElement("p");
  answer.textContent = shortAnswer(m.answer_zh);
  answer.title = m.answer_zh;
  const use = document.createElement("button");
  use.type = "button";
  use.className = "kb-use";
  use.textContent = "使用 Use";
  use.addEventListener("click", () => useEntry(m, query));
  li.append(head, answer, use);
  return li;
}

function renderKb(data, source) {
  const list = $("kb-results");
  // proposals show only what clears the threshold; a search the agent typed shows all three
  const shown = source === "propose" ? data.matches.filter((m) => m.offered) : data.matches;
  list.replaceChildren(...shown.map((m) => kbItem(m, data.query)));
  list.dataset.query = data.query;
  list.dataset.source = source;
  const words = source === "propose" ? "根据诉求内容推荐 Proposed from the description" : `搜索 Search “${data.query}”`;
  $("kb-status").textContent = !data.query ? "输入诉求内容时自动推荐 Proposed as you type the description"
    : shown.length ? words : `${words}：没有合适的条目 no entry matches`;
}

async function kbAsk(text, source) {
  const query = text.trim().slice(0, KB_QUERY_CHARS);
  const asked = ++kb.asked; // an answer to an older question is dropped
  if (!query) { renderKb({ query: "", matches: [] }, source); return; }
  try {
    const response = await fetch(`/kb/search?q=${encodeURIComponent(query)}`, { cache: "no-store" });
    if (!response.ok) throw new Error(`${response.status}`);
    const data = await response.json();
    if (asked === kb.asked) renderKb(data, source);
  } catch (e) {
    if (asked === kb.asked) $("kb-status").textContent = `知识库不可用 knowledge base unavailable: ${e.message}`;
  }
}

function showUsed(used) {
  $("f-kb-offer").value = used ? used.offer_id : "";
  $("f-kb-label").value = used ? used.label : "";
  $("kb-used-label").textContent = used ? `已使用知识库 Answered from: ${used.label}` : "";
  $("kb-used").hidden = !used;
}

async function useEntry(m, query) {
  showError("");
  try {
    const used = await post("/agent/kb/use", {
      entry_id: m.entry_id, query, score: m.score, uniqueid: pop ? pop.uniqueid : "",
    });
    showUsed({ offer_id: used.offer_id, label: `${used.title}（${used.key} v${used.version}）` });
    $("f-reply").value = used.answer_zh;
    form.querySelector('input[name="handling"][value="direct"]').checked = true;
    $("f-closed-as").value = "explained";
    if (!$("f-category").value && used.category) $("f-category").value = used.category;
    showOutcome();
    dirty = true;
    if (!saveTimer) saveTimer = setTimeout(saveDraft, 2000);
    $("form-message").textContent = "请向来电人宣读答复 Read the reply to the caller";
    $("f-reply").focus();
  } catch (e) {
    showError(`条目未使用：${e.message}`);
  }
}

$("f-description").addEventListener("input", () => {
  clearTimeout(kb.timer);
  kb.timer = setTimeout(() => kbAsk($("f-description").value, "propose"), PROPOSE_AFTER_MS);
});
$("kb-q").addEventListener("keydown", (e) => {
  if (e.key === "Enter") { e.preventDefault(); clearTimeout(kb.timer); kbAsk($("kb-q").value, "search"); }
  if (e.key === "ArrowDown") { e.preventDefault(); $("kb-results").querySelector("button")?.focus(); }
});
$("kb-q").addEventListener("input", () => {
  clearTimeout(kb.timer);
  kb.timer = setTimeout(() => kbAsk($("kb-q").value, "search"), PROPOSE_AFTER_MS);
});
$("kb-results").addEventListener("keydown", (e) => {
  if (e.key !== "ArrowDown" && e.key !== "ArrowUp") return;
  const buttons = [...$("kb-results").querySelectorAll("button")];
  const at = buttons.indexOf(document.activeElement);
  if (at < 0) return;
  e.preventDefault();
  if (e.key === "ArrowUp" && at === 0) { $("kb-q").focus(); return; }
  buttons[Math.min(buttons.length - 1, Math.max(0, at + (e.key === "ArrowDown" ? 1 : -1)))].focus();
});
$("kb-unuse").addEventListener("click", () => { showUsed(null); dirty = true; });

// -- keys --------------------------------------------------------------------------------
$("btn-ready").addEventListener("click", () => setState("ready"));
$("btn-pause").addEventListener("click", () => setState("pause"));
$("btn-logout").addEventListener("click", () => setState("logout"));
$("answer").addEventListener("click", () => phone && phone.answer());
$("hangup").addEventListener("click", () => phone && phone.hangup());
$("transfer").addEventListener("click", async () => {
  if (!pop) return;
  showError("");
  try {
    await post("/agent/transfer", { uniqueid: pop.uniqueid, queue: $("transfer-queue").value });
    $("form-message").textContent = `已转接到 ${$("transfer-queue").value}`;
  } catch (e) {
    showError(`未转接：${e.message}`);
  }
});
$("three-way").addEventListener("click", async () => {
  if (!pop) return;
  const target = $("three-way-target").value;
  showError("");
  $("form-message").textContent = `正在呼叫 ${target}…`;
  $("three-way").disabled = true;
  try {
    await post("/agent/three-way", { uniqueid: pop.uniqueid, target });
    $("form-message").textContent = `${target} 已加入通话（三方通话）`;
  } catch (e) {
    $("form-message").textContent = "";
    showError(`三方通话未接通：${e.message}`);
  } finally {
    $("three-way").disabled = false;
  }
});
document.addEventListener("keydown", (e) => {
  const keys = {
    F2: () => setState("ready"), F3: () => setState("pause"),
    F4: () => $("answer").click(), F7: () => $("hangup").click(),
    F8: () => form.requestSubmit(), F9: () => $("transfer").click(),
  };
  if (keys[e.key]) { e.preventDefault(); keys[e.key](); return; }
  if (e.altKey && (e.key === "k" || e.key === "K" || e.code === "KeyK")) {
    e.preventDefault(); $("kb-q").focus(); $("kb-q").select(); return;
  }
  if (e.altKey && /^[1-5]$/.test(e.key)) {
    const radio = form.querySelectorAll('input[name="request_type"]')[Number(e.key) - 1];
    if (radio) { e.preventDefault(); radio.checked = true; dirty = true; }
  }
});
window.addEventListener("pagehide", () => { if (dirty) saveDraft(); });

showOutcome();
loadCurrent();
startPhone();
