// The live-calls page: rows replaced from the server-sent events of /live/events.
// A file of its own: the Content-Security-Policy runs no inline script.
const body = document.getElementById("live-body");
const source = new EventSource("/live/events");
source.addEventListener("end", () => {  // the session is over: stop, and say so
  source.close();
  document.getElementById("link-state").textContent = "会话已结束，请重新登录 Session ended: log in again";
  body.replaceChildren();
});
source.addEventListener("calls", (e) => {
  const data = JSON.parse(e.data);
  document.getElementById("link-state").textContent = data.connected ? "已连接 Asterisk connected" : downText(data.down);
  body.replaceChildren(...data.calls.map((c) => {
    const tr = document.createElement("tr");
    tr.className = "live-call";
    for (const [label, value] of [["号码", c.number], ["所在", c.where], ["步骤", c.step], ["线路", c.did], ["时长", c.seconds]]) {
      const td = document.createElement("td"); td.dataset.label = label; td.textContent = value; tr.appendChild(td);
    }
    return tr;
  }));
});

// Listening in (监听 / 耳语 / 强插): shown only to roles that may (GET /live/listen answers 200).
const listenBox = document.getElementById("listen");
async function listenPost(url, fields) {
  const form = new URLSearchParams({...fields, csrf: listenBox.dataset.csrf});
  const reply = await fetch(url, {method: "POST", body: form, headers: {"Accept": "application/json"}});
  const data = await reply.json().catch(() => ({}));
  const done = url.endsWith("/stop") ? "已结束 stopped" : "已接通 connected";
  document.getElementById("listen-state").textContent = reply.ok ? `${done} (#${data.session ?? ""})` : (data.detail || reply.status);
  refreshListen();
}
async function refreshListen() {
  const reply = await fetch("/live/listen", {headers: {"Accept": "application/json"}});
  if (!reply.ok) { listenBox.hidden = true; return false; }
  const data = await reply.json();
  listenBox.hidden = false;
  const phone = document.getElementById("listen-phone");
  if (!phone.options.length) phone.replaceChildren(...data.phones.map((p) => new Option(p, p)));
  document.getElementById("listen-body").replaceChildren(...data.calls.map((c) => {
    const tr = document.createElement("tr");
    for (const [label, value] of [["坐席", c.agent], ["号码", c.number], ["队列", c.queue]]) {
      const td = document.createElement("td"); td.dataset.label = label; td.textContent = value; tr.appendChild(td);
    }
    const td = document.createElement("td"); td.dataset.label = "监听";
    for (const [mode, name] of data.modes) {
      const button = document.createElement("button");
      button.className = `listen-${mode}`; button.textContent = name;
      button.addEventListener("click", () => listenPost("/live/listen", {uniqueid: c.uniqueid, mode, phone: phone.value}));
      td.appendChild(button);
    }
    for (const s of data.sessions.filter((s) => s.uniqueid === c.uniqueid)) {
      const button = document.createElement("button");
      button.className = "listen-stop"; button.textContent = `结束 stop ${s.mode}`;
      button.addEventListener("click", () => listenPost(`/live/listen/${s.id}/stop`, {}));
      td.appendChild(button);
    }
    tr.appendChild(td);
    return tr;
  }));
  document.getElementById("listen-sessions").replaceChildren(...data.sessions.map((s) => {
    const li = document.createElement("li");
    li.className = "listen-session"; li.dataset.session = String(s.id);
    li.textContent = `#${s.id} ${s.mode} · ${s.phone} · ${s.supervisor} `;
    const button = document.createElement("button");
    button.className = "listen-stop"; button.textContent = "结束 stop";
    button.addEventListener("click", () => listenPost(`/live/listen/${s.id}/stop`, {}));
    li.appendChild(button);
    return li;
  }));
  return true;
}
refreshListen().then((may) => {
  if (may) { source.addEventListener("calls", refreshListen); setInterval(refreshListen, 5000); }
});
