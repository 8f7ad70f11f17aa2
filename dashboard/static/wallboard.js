// The wallboard: figures replaced from the server-sent events of /wallboard/events.
// A file of its own: the Content-Security-Policy runs no inline script. EventSource
// reconnects by itself; the longest wait ticks here every second between events.
const body = document.body;
const goals = {
  service_level: Number(body.dataset.slGoal),
  completion: Number(body.dataset.completionGoal),
  wait: Number(body.dataset.waitAlert),
};
const link = document.getElementById("wb-link");
let latest = null;
let offset = 0; // this clock minus the server's, seconds

function percent(value) {
  return value === null || value === undefined ? "无数据" : (value * 100).toFixed(1) + "%";
}
function seconds(value) {
  return value === null || value === undefined ? "–" : value.toFixed(1) + "s";
}
function put(section, field, text, low) {
  const el = section.querySelector(`[data-f="${field}"]`);
  if (!el) return;
  el.textContent = text;
  el.classList.toggle("alert", Boolean(low));
}
function longest(q) {
  if (!q.since) return 0;
  return Math.max(0, Math.floor(Date.now() / 1000 - offset - q.since));
}
function render() {
  if (!latest) return;
  for (const q of latest.queues) {
    const section = document.querySelector(`section[data-queue="${q.queue}"]`);
    if (!section) continue;
    const wait = longest(q);
    put(section, "waiting", String(q.waiting), q.waiting > 0 && wait > goals.wait);
    put(section, "longest", wait + "s", wait > goals.wait);
    put(section, "service_level", percent(q.service_level), q.service_level !== null && q.service_level < goals.service_level);
    put(section, "completion", percent(q.completion), q.completion !== null && q.completion < goals.completion);
    put(section, "offered", String(q.offered));
    put(section, "answered", String(q.answered));
    put(section, "abandoned", String(q.abandoned));
    put(section, "asa", seconds(q.asa));
    put(section, "aht", seconds(q.aht));
    for (const [state, count] of Object.entries(q.agents)) {
      const el = section.querySelector(`[data-a="${state}"]`);
      if (el) el.textContent = String(count);
    }
    const reasons = Object.entries(q.paused_by).map(([r, n]) => `${r} ${n}`).join(" · ");
    put(section, "paused_by", reasons ? `(${reasons})` : "");
  }
}
const source = new EventSource("/wallboard/events");
source.addEventListener("open", () => { link.dataset.state = "open"; });
source.addEventListener("error", () => {
  link.dataset.state = "reconnecting";
  link.textContent = "重新连接中 reconnecting…";
});
source.addEventListener("end", () => {
  source.close();
  link.dataset.state = "ended";
  link.textContent = "会话已结束，请重新登录 Session ended: log in again";
});
source.addEventListener("board", (e) => {
  latest = JSON.parse(e.data);
  offset = Date.now() / 1000 - latest.now;
  link.dataset.state = latest.connected ? "live" : "no-asterisk";
  link.textContent = latest.connected ? "实时 live" : downText(latest.down);
  document.getElementById("wb-day").textContent = latest.day;
  body.dataset.version = String((Number(body.dataset.version) || 0) + 1);
  render();
});
setInterval(render, 1000);
