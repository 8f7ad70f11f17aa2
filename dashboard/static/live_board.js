// The compact wallboard panel on /live (supervisors and admins): the hotline's figures from
// /wallboard/events, as the wallboard shows them: waiting now, the longest wait (ticking
// here between events), today's service level and 接通率 (green at the goal, red under it),
// and the agents by state. A block of its own: live.js shares this page's global scope.
{
  const panel = document.getElementById("live-board");
  const goals = {
    service_level: Number(panel.dataset.slGoal),
    completion: Number(panel.dataset.completionGoal),
    wait: Number(panel.dataset.waitAlert),
  };
  const link = document.getElementById("lb-link");
  let latest = null;
  let offset = 0; // this clock minus the server's, seconds

  const percent = (v) => (v === null || v === undefined ? "无数据" : (v * 100).toFixed(1) + "%");
  function put(field, text, state) { // state: "ok", "alert" or ""
    const el = panel.querySelector(`[data-f="${field}"]`);
    el.textContent = text;
    el.classList.toggle("ok", state === "ok");
    el.classList.toggle("alert", state === "alert");
  }
  const against = (value, goal) => (value === null || value === undefined ? "" : value < goal ? "alert" : "ok");
  function render() {
    const q = latest && latest.queues.find((row) => row.queue === "all");
    if (!q) return;
    const wait = q.since ? Math.max(0, Math.floor(Date.now() / 1000 - offset - q.since)) : 0;
    put("waiting", String(q.waiting), q.waiting > 0 && wait > goals.wait ? "alert" : "");
    put("longest", wait + "s", wait > goals.wait ? "alert" : "");
    put("service_level", percent(q.service_level), against(q.service_level, goals.service_level));
    put("completion", percent(q.completion), against(q.completion, goals.completion));
    for (const [state, count] of Object.entries(q.agents)) {
      const el = panel.querySelector(`[data-a="${state}"]`);
      if (el) el.textContent = String(count);
    }
    const reasons = Object.entries(q.paused_by).map(([r, n]) => `${r} ${n}`).join(" · ");
    put("paused_by", reasons ? `(${reasons})` : "", "");
  }
  const board = new EventSource("/wallboard/events");
  board.addEventListener("open", () => { link.dataset.state = "open"; });
  board.addEventListener("error", () => { link.dataset.state = "reconnecting"; link.textContent = "重新连接中 reconnecting…"; });
  board.addEventListener("end", () => { board.close(); link.dataset.state = "ended"; link.textContent = "会话已结束 session ended"; });
  board.addEventListener("board", (e) => {
    latest = JSON.parse(e.data);
    offset = Date.now() / 1000 - latest.now;
    link.dataset.state = latest.connected ? "live" : "no-asterisk";
    link.textContent = latest.connected ? "实时 live" : downText(latest.down);
    panel.dataset.version = String((Number(panel.dataset.version) || 0) + 1);
    render();
  });
  setInterval(render, 1000);
}
