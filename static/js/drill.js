// Live view of a running drill: polls the progress endpoint and updates the page in place.
(function () {
  const live = document.getElementById("live");
  if (!live || live.dataset.active !== "1") return;
  const url = live.dataset.progressUrl;
  const text = (id, value) => { document.getElementById(id).textContent = value; };
  // The server restarting, or the network gone: say so, keep asking, and carry on when it answers.
  const connection = document.getElementById("connection");
  let lostSince = null;

  async function refresh() {
    let data;
    try {
      const response = await fetch(url, {headers: {"Accept": "application/json"}});
      // A session that ended is sent to the login page: asking again will not help.
      if (response.redirected || response.status === 403) {
        const login = document.createElement("a");
        login.href = `/accounts/login/?next=${encodeURIComponent(window.location.pathname)}`;
        login.textContent = "Log in again";
        connection.replaceChildren(
          response.status === 403
            ? "You may no longer follow this drill (your role changed). "
            : "Your session has ended. ",
          login, " to follow the drill; it goes on in its worker.");
        connection.hidden = false;
        return;
      }
      if (!response.ok) throw new Error(`the server answered ${response.status}`);
      data = await response.json();
    } catch (err) {
      lostSince = lostSince || new Date();
      connection.textContent = `Lost contact with the server since ${lostSince.toLocaleTimeString()} ` +
        `(${err.message || err}); retrying every 3 s. The drill goes on in its worker.`;
      connection.hidden = false;
      setTimeout(refresh, 3000);
      return;
    }
    if (lostSince) {
      connection.hidden = true;
      lostSince = null;
    }
    const p = data.progress || {};
    text("state", (data.outcome || data.state).toUpperCase());
    text("phase", data.phase || "queued");
    text("elapsed", `${p.elapsed_s ?? 0} s`);
    text("records", `${p.acked ?? 0} acknowledged, ${p.failed ?? 0} failed, ${p.consumed ?? 0} consumed`);
    const guards = Object.entries(p.guardrails || {}).map(([name, g]) => `${name}: ${g.value ?? "—"} (limit ${g.limit})`);
    if (guards.length) text("guardrails", guards.join(", "));
    text("tripped", data.tripped_guardrail || p.tripped || "—");
    const events = document.getElementById("events");
    if (events && data.events) {
      events.replaceChildren(...data.events.map((event) => {
        const row = document.createElement("tr");
        for (const text of [event.at_s === null || event.at_s === undefined ? "" : `${event.at_s} s`, event.text]) {
          const cell = document.createElement("td");
          cell.textContent = text;
          row.appendChild(cell);
        }
        return row;
      }));
    }
    const step = document.getElementById("step");
    step.hidden = !data.awaiting_step;
    text("step-text", data.awaiting_step || "");
    if (data.active) {
      setTimeout(refresh, 1000);
    } else {
      window.location.reload();  // the figures and the timeline are rendered by the server
    }
  }
  setTimeout(refresh, 1000);
})();
