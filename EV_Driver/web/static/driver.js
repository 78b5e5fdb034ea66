// Driver web app: renders the view pushed by the server ("state" over Socket.IO).
// Each section is redrawn only when its own data changed, so buttons stay put between pushes.
(function () {
  "use strict";
  const {$, esc, fmtDuration} = window.evcLive;
  const changed = window.evcLive.changeTracker();
  const elapsed = window.evcLive.elapsedClock("supply-elapsed");
  window.__evc = {kwhShownAt: {}, ticketShownAt: {}, renders: 0};

  function renderBanner(view) {
    const el = $("banner");
    const text = view.banner || "";
    el.textContent = text;
    el.hidden = !text;
    el.dataset.visible = text ? "true" : "false";
    document.body.dataset.central = view.central;
  }

  function renderCps(view) {
    if (!changed("cps", [view.cps, view.status_seen, !!view.supply, !!view.request, view.batch && !view.batch.finished])) return;
    $("cps-count").textContent = view.cps.length ? "(" + view.cps.length + ")" : "";
    if (!view.cps.length) {
      $("cps").innerHTML = '<p class="muted">' + (view.status_seen ? "La red no tiene puntos de carga." : "Esperando el estado de la red…") + "</p>";
      return;
    }
    const busy = !!view.supply || !!view.request || (view.batch && !view.batch.finished);
    $("cps").innerHTML = view.cps.map((cp) => {
      const temp = cp.temperature !== "" ? '<span class="temp" data-field="temperature">' + esc(cp.temperature) + " °C</span>" : "";
      const button = cp.can_request
        ? '<button class="btn primary request-btn" data-cp-id="' + esc(cp.cp_id) + '"' + (busy ? " disabled" : "") + ">Solicitar</button>"
        : "";
      return '<article class="tile" data-cp-id="' + esc(cp.cp_id) + '" data-state="' + esc(cp.state) + '">' +
        '<div class="tile-head state-' + esc(cp.state) + '"><span class="cp-id">' + esc(cp.cp_id) + "</span>" +
        '<span class="state" data-field="state">' + esc(cp.caption) + "</span></div>" +
        '<div class="tile-body"><div class="place">' + esc(cp.city || "—") + (cp.address ? ' · <span class="muted">' + esc(cp.address) + "</span>" : "") + "</div>" +
        '<div class="figures"><span class="price" data-field="price">' + esc(cp.price_eur_kwh) + " €/kWh</span>" +
        (cp.power_kw ? '<span class="muted">' + esc(cp.power_kw) + " kW</span>" : "") + temp + "</div>" + button + "</div></article>";
    }).join("");
  }

  function renderSupply(view) {
    const s = view.supply, req = view.request, el = $("supply");
    elapsed.sync(s ? s.elapsed_s : null);
    if (!changed("supply", [s, req])) return;
    if (!s && !req) {
      el.dataset.phase = "NONE";
      el.dataset.supplyId = "";
      el.innerHTML = '<p class="muted">No tienes ningún suministro en curso.</p>';
      return;
    }
    if (!s) {
      el.dataset.phase = "REQUESTED";
      el.innerHTML = '<p class="pending">Solicitud en <strong>' + esc(req.cp_id) + "</strong>: " +
        (req.sent ? "esperando respuesta de la CENTRAL…" : "esperando conexión con la CENTRAL…") + "</p>";
      return;
    }
    el.dataset.phase = s.phase;
    el.dataset.supplyId = s.supply_id;
    const status = s.charging ? '<span class="pill live">Cargando</span>'
      : '<span class="pill wait">Autorizado · enchufa el vehículo</span>';
    el.innerHTML =
      '<div class="supply-head"><span class="big" id="supply-cp">' + esc(s.cp_id) + "</span>" + status + "</div>" +
      '<div class="meters">' +
      '<div class="meter"><div class="label">Energía</div><div class="value" id="supply-kwh" data-value="' + esc(s.energy_kwh) + '">' + esc(s.energy_kwh) + ' <small>kWh</small></div></div>' +
      '<div class="meter"><div class="label">Importe</div><div class="value" id="supply-eur">' + esc(s.amount_eur) + " <small>€</small></div></div>" +
      '<div class="meter"><div class="label">Tiempo</div><div class="value" id="supply-elapsed">' + (s.elapsed_s != null ? fmtDuration(s.elapsed_s) : "—") + "</div></div>" +
      '<div class="meter"><div class="label">Tarifa</div><div class="value" id="supply-tariff">' + esc(s.price_eur_kwh || "—") + " <small>€/kWh</small></div></div>" +
      "</div>" +
      '<div class="row"><span class="muted">Potencia ' + esc(s.power_kw || "—") + " kW · suministro " + esc(s.supply_id) + "</span>" +
      '<button id="stop-btn" class="btn danger"' + (s.stop_sent ? " disabled" : "") + ">" + (s.stop_sent ? "Parando…" : "Parar") + "</button></div>";
    if (s.charging && !(s.energy_kwh in window.__evc.kwhShownAt)) window.__evc.kwhShownAt[s.energy_kwh] = Date.now();
  }

  function renderTicket(view) {
    const t = view.last_ticket, el = $("ticket");
    if (!changed("ticket", t)) return;
    if (!t) { el.dataset.ticketId = ""; el.innerHTML = '<p class="muted">Todavía no hay tickets.</p>'; return; }
    const rows = [["Punto de carga", t.cp_id], ["Inicio", t.started_local], ["Fin", t.ended_local],
      ["Duración", t.duration], ["Energía", t.energy_kwh + " kWh"], ["Precio", t.price_eur_kwh + " €/kWh"],
      ["Finalizado por", t.reason_text], ["Suministro", t.supply_id]];
    el.dataset.ticketId = t.ticket_id;
    el.dataset.supplyId = t.supply_id;
    el.innerHTML = '<div class="ticket-total"><span>TOTAL</span><strong id="ticket-total">' + esc(t.amount_eur) + " €</strong></div>" +
      '<dl class="ticket-rows">' + rows.map((r) => "<dt>" + esc(r[0]) + "</dt><dd" +
        (r[0] === "Energía" ? ' id="ticket-kwh"' : r[0] === "Finalizado por" ? ' id="ticket-reason" data-reason="' + esc(t.reason) + '"' : "") +
        ">" + esc(r[1]) + "</dd>").join("") + "</dl>";
    if (!(t.ticket_id in window.__evc.ticketShownAt)) window.__evc.ticketShownAt[t.ticket_id] = Date.now();
  }

  function renderHistory(view) {
    const h = view.history, el = $("history");
    if (!changed("history", h)) return;
    if (h == null) { el.innerHTML = '<p class="muted">Cargando el historial…</p>'; return; }
    if (!h.length) { el.innerHTML = '<p class="muted">Aún no has hecho ningún suministro.</p>'; return; }
    el.innerHTML = '<table class="table"><thead><tr><th>Inicio</th><th>Punto</th><th>Estado</th><th>kWh</th><th>€</th><th>Fin</th></tr></thead><tbody>' +
      h.map((r) => '<tr data-supply-id="' + esc(r.supply_id) + '"><td>' + esc(r.started_local) +
        "</td><td>" + esc(r.cp_id) + "</td><td>" + esc(r.phase) + "</td><td>" + esc(r.energy_kwh) + "</td><td>" + esc(r.amount_eur) +
        "</td><td>" + esc(r.end_reason || "") + "</td></tr>").join("") + "</tbody></table>";
  }

  function renderBatch(view) {
    const b = view.batch, el = $("batch");
    if (!changed("batch", b)) return;
    if (!b) { el.dataset.total = "0"; el.innerHTML = ""; return; }
    el.dataset.total = b.total; el.dataset.done = b.done; el.dataset.finished = b.finished ? "true" : "false";
    const pct = b.total ? Math.round(100 * b.done / b.total) : 0;
    const now = b.finished ? "Terminado" : b.current_cp ? "Servicio " + b.current + "/" + b.total + ": " + b.current_cp
      : b.next_cp ? "Siguiente: " + b.next_cp + " en " + b.wait_s.toFixed(0) + " s" : "";
    el.innerHTML = '<div class="progress-line"><strong id="batch-progress">' + b.done + "/" + b.total + "</strong> <span class=\"muted\">" + esc(now) + "</span></div>" +
      '<div class="bar"><div style="width:' + pct + '%"></div></div>' +
      '<ol class="results">' + b.results.map((r) => '<li data-outcome="' + esc(r.outcome) + '"><span class="cp">' + esc(r.cp_id) +
        '</span> <span class="outcome ' + esc(r.outcome) + '">' + esc(r.outcome) + "</span> " + esc(r.reason) +
        (r.outcome !== "denied" ? ' <span class="muted">' + esc(r.energy_kwh) + " kWh · " + esc(r.amount_eur) + " €</span>" : "") + "</li>").join("") + "</ol>";
  }

  function blockTitle(text) {
    const line = text.split("\n").map((l) => l.trim()).find((l) => l && !/^[=\-]+$/.test(l));
    return line || "…";
  }

  function renderMessages(view) {
    if (!changed("messages", view.messages)) return;
    $("messages").innerHTML = view.messages.slice().reverse().map((msg) =>
      '<li class="msg ' + esc(msg.level) + '"><span class="time">' + esc(msg.time) + "</span>" +
      (msg.level === "block" ? "<details><summary>" + esc(blockTitle(msg.text)) + "</summary><pre>" + esc(msg.text) + "</pre></details>"
        : "<span>" + esc(msg.text) + "</span>") + "</li>").join("");
  }

  function render(view) {
    if (!view) return;
    renderBanner(view); renderCps(view); renderSupply(view); renderTicket(view);
    renderHistory(view); renderBatch(view); renderMessages(view);
    window.__evc.renders += 1;
  }

  async function post(url, body) {
    const response = await fetch(url, {method: "POST", body: body, headers: {"X-Requested-With": "fetch"}});
    if (!response.ok) {
      let text = response.statusText;
      try { text = (await response.json()).message || text; } catch (e) { /* not JSON */ }
      localMessage(text, "error");
    }
    return response;
  }

  function localMessage(text, level) {
    const li = document.createElement("li");
    li.className = "msg " + level;
    li.innerHTML = '<span class="time">' + new Date().toLocaleTimeString() + "</span><span>" + esc(text) + "</span>";
    $("messages").prepend(li);
  }

  document.addEventListener("click", (event) => {
    const req = event.target.closest(".request-btn");
    if (req) { req.disabled = true; post("/api/request/" + encodeURIComponent(req.dataset.cpId)); }
    if (event.target.id === "stop-btn") { event.target.disabled = true; post("/api/stop"); }
  });
  $("upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const file = $("services-file").files[0];
    if (!file) { localMessage("Elige un fichero de servicios.", "warn"); return; }
    const form = new FormData(); form.append("file", file);
    post("/api/services", form).then(() => { $("services-file").value = ""; });
  });

  window.evcLive.connect(render);
})();
