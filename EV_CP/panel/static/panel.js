// Engine panel: renders the view pushed by the Engine ("state" over Socket.IO); buttons POST commands.
(function () {
  "use strict";
  const {$, esc, fmtDuration} = window.evcLive;
  const changed = window.evcLive.changeTracker();
  const elapsed = window.evcLive.elapsedClock("supply-elapsed");
  const fmtTime = (iso) => {
    if (!iso) return "—";
    const t = new Date(iso);
    if (isNaN(t)) return iso;
    const p = (n) => String(n).padStart(2, "0");
    return t.getFullYear() + "-" + p(t.getMonth() + 1) + "-" + p(t.getDate()) + " " + p(t.getHours()) + ":" + p(t.getMinutes()) + ":" + p(t.getSeconds());
  };
  const led = (id, on, text) => { $(id.replace("-led", "") + "-led").className = "led " + (on === true ? "on" : on === false ? "off" : "unknown"); };

  function renderState(v) {
    const box = $("state");
    box.className = "state-box state-" + v.state;
    box.dataset.state = v.state;
    const stopped = v.state === "PARADO" && v.out_of_service_text;  // CENTRAL's reason, e.g. Out of Order (OPERATOR)
    box.textContent = (stopped ? v.out_of_service_text : v.state_text) + (v.forced_ko ? " · KO forzado" : "");
    box.classList.toggle("long", Boolean(stopped));
    const oos = $("out-of-service");  // reasons kept while another state wins (e.g. AVERIADO while stopped)
    oos.textContent = !stopped && v.out_of_service_text ? v.out_of_service_text : ""; oos.hidden = !oos.textContent;
    $("cp-id").textContent = v.cp_id || "—";
    $("cp-info").textContent = v.cp_id ? [v.address, v.price_eur_kwh + " €/kWh", v.power_kw + " kW", "zona " + v.zone].filter(Boolean).join(" · ")
      : "Esperando a que el Monitor identifique el punto de carga…";
    $("monitor-link").textContent = v.monitor_up ? "conectado" : "sin monitor"; led("monitor-led", v.monitor_up);
    $("central-link").textContent = v.central_up === true ? "conectada" : v.central_up === false ? "sin conexión" : "desconocida"; led("central-led", v.central_up);
    $("kafka-link").textContent = v.kafka_up ? "listo" : "sin canal"; led("kafka-led", v.kafka_up);
    $("engine-status").textContent = v.engine; led("engine-led", v.engine === "OK");
    const banner = v.monitor_up && v.central_up === false ? "Imposible conectar con la CENTRAL" : (!v.monitor_up && v.cp_id ? "Sin monitor" : "");
    $("banner").textContent = banner; $("banner").hidden = !banner; $("banner").dataset.visible = banner ? "true" : "false";
    for (const [name, enabled] of Object.entries(v.actions)) { const b = $("btn-" + name); if (b) b.disabled = !enabled; }
    $("btn-request").title = v.refusal || "";
    $("refusal").textContent = v.request_pending ? "Solicitud enviada; esperando la respuesta de la CENTRAL…" : (v.refusal ? "No se pueden iniciar suministros: " + v.refusal : "");
  }

  function renderSupply(v) {
    const s = v.supply, el = $("supply");
    elapsed.sync(s ? s.elapsed_s : null);
    if (!changed("supply", s)) return;
    if (!s) { el.dataset.phase = "NONE"; el.dataset.supplyId = ""; el.innerHTML = '<p class="muted">Sin suministro.</p>'; return; }
    el.dataset.phase = s.phase; el.dataset.supplyId = s.supply_id;
    const who = s.anonymous ? "anónimo" : s.driver_id;
    const pill = s.phase === "CHARGING" ? '<span class="pill live">Cargando</span>' : '<span class="pill wait">Autorizado · pulsa Enchufar</span>';
    el.innerHTML = '<div class="supply-head"><span class="big">' + esc(who) + "</span>" + pill + "</div>" +
      '<div class="meters">' +
      '<div class="meter"><div class="label">Energía</div><div class="value" id="supply-kwh">' + esc(s.energy_kwh) + " <small>kWh</small></div></div>" +
      '<div class="meter"><div class="label">Importe</div><div class="value" id="supply-eur">' + esc(s.amount_eur) + " <small>€</small></div></div>" +
      '<div class="meter"><div class="label">Tiempo</div><div class="value" id="supply-elapsed">' + (s.elapsed_s != null ? fmtDuration(s.elapsed_s) : "—") + "</div></div>" +
      '<div class="meter"><div class="label">Tarifa</div><div class="value">' + esc(s.price_eur_kwh) + " <small>€/kWh</small></div></div></div>" +
      '<p class="muted small">Suministro ' + esc(s.supply_id) + (s.power_kw ? " · " + esc(s.power_kw) + " kW" : "") + "</p>";
  }

  function renderLast(v) {
    const f = v.last_finished, t = v.last_ticket, el = $("last");
    if (!changed("last", [f, t])) return;
    if (!f && !t) { el.innerHTML = '<p class="muted">Aún no ha terminado ningún suministro.</p>'; return; }
    const ticket = t && (!f || t.supply_id === f.supply_id) ? t : null;
    const src = ticket || f;
    el.dataset.supplyId = src.supply_id;
    el.dataset.ticketId = ticket ? ticket.ticket_id : "";
    const rows = [["Suministro", src.supply_id], ["Conductor", ticket ? ticket.driver_id : (src.driver_id || "—")], ["Inicio", fmtTime(src.started_at)],
      ["Fin", fmtTime(src.ended_at)], ["Energía", src.energy_kwh + " kWh"], ["Finalizado por", src.reason_text]];
    if (ticket) rows.splice(4, 0, ["Precio", ticket.price_eur_kwh + " €/kWh"]);
    el.innerHTML = '<div class="ticket-total"><span>' + (ticket ? "TICKET" : "Registro final") + '</span><strong id="last-total">' + esc(src.amount_eur) + " €</strong></div>" +
      '<dl class="ticket-rows">' + rows.map((r) => "<dt>" + esc(r[0]) + "</dt><dd>" + esc(r[1]) + "</dd>").join("") + "</dl>" +
      (v.finals_pending ? '<p class="hint">' + v.finals_pending + " registro(s) final(es) esperando confirmación de la CENTRAL.</p>" : "");
  }

  function renderMessages(v) {
    if (!changed("messages", v.messages)) return;
    $("messages").innerHTML = v.messages.slice().reverse().map((m) =>
      '<li class="msg"><span class="time">' + esc(m.time) + "</span><span>" + esc(m.text) + "</span></li>").join("");
  }

  function render(v) { if (!v) return; renderState(v); renderSupply(v); renderLast(v); renderMessages(v); }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-command]");
    if (!button) return;
    button.disabled = true;
    const response = await fetch("/api/command/" + button.dataset.command, {method: "POST"});
    if (!response.ok) { try { alert((await response.json()).message); } catch (e) { /* ignore */ } }
  });

  window.evcLive.connect(render);
})();
