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
  document.getElementById("link-state").textContent = data.connected ? "已连接 Asterisk connected" : "Asterisk 未连接 not connected";
  body.replaceChildren(...data.calls.map((c) => {
    const tr = document.createElement("tr");
    tr.className = "live-call";
    for (const [label, value] of [["号码", c.number], ["所在", c.where], ["步骤", c.step], ["线路", c.did], ["时长", c.seconds]]) {
      const td = document.createElement("td"); td.dataset.label = label; td.textContent = value; tr.appendChild(td);
    }
    return tr;
  }));
});
