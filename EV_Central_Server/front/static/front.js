/* Operator Front: renders the state pushed by the Front over Socket.IO; commands go to /front/...
 * Everything from the network is written with textContent (never innerHTML). */
(function () {
  "use strict";

  const $ = (sel, root) => (root || document).querySelector(sel);
  const STATE_TEXT = {DESCONECTADO: "Desconectado", ACTIVADO: "Activado", SUMINISTRANDO: "Suministrando",
                      PARADO: "Parado", AVERIADO: "Averiado"};
  const PHASE_TEXT = {AUTHORIZED: "Autorizado, esperando enchufe", CHARGING: "Cargando"};
  let centralUp = null;

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function when(iso) {
    if (!iso) return {date: "—", time: "—"};
    const d = new Date(iso);
    return {date: d.toLocaleDateString("es-ES"), time: d.toLocaleTimeString("es-ES")};
  }

  function price(value) {
    const text = String(value ?? "—");
    const decimals = (text.split(".")[1] || "").length;
    const n = Number(value);
    return Number.isFinite(n) ? n.toFixed(Math.max(2, decimals)) : text;
  }

  function fixed(value, places) {
    const n = Number(value);
    return Number.isFinite(n) ? n.toFixed(places) : String(value ?? "—");
  }

  /* ---------------------------------------------------------------- tiles */
  function buildTile(cpId) {
    const tile = el("article", {"class": "tile", "data-cp": cpId});
    tile.innerHTML = `
      <header class="tile-head"><span class="cp-id"></span><span class="temp" data-field="temperature"></span></header>
      <div class="where"><span data-field="city"></span> · <span data-field="address"></span></div>
      <div class="price" data-field="price"></div>
      <div class="caption" data-field="caption"></div>
      <dl class="supply" data-field="supply" hidden>
        <div><dt>Conductor</dt><dd data-field="driver"></dd></div>
        <div><dt>Potencia</dt><dd data-field="kw"></dd></div>
        <div><dt>Energía</dt><dd data-field="kwh"></dd></div>
        <div><dt>Importe</dt><dd data-field="eur"></dd></div>
        <div class="phase" data-field="phase"></div>
      </dl>
      <footer class="tile-actions">
        <button type="button" class="btn btn-stop" data-action="stop">Parar</button>
        <button type="button" class="btn btn-resume" data-action="resume">Reanudar</button>
        <button type="button" class="btn btn-ghost" data-action="remove" title="Dar de baja">Baja</button>
      </footer>`;
    $(".cp-id", tile).textContent = cpId;
    tile.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (button) tileAction(cpId, button.dataset.action);
    });
    return tile;
  }

  function setText(tile, field, text) {
    const node = $(`[data-field="${field}"]`, tile);
    if (node.textContent !== text) node.textContent = text;
  }

  function fillTile(tile, cp) {
    const state = cp.state;
    tile.className = `tile state-${state}`;
    tile.dataset.state = state;
    tile.dataset.colour = cp.colour || "";
    setText(tile, "city", cp.city || "");
    setText(tile, "address", cp.address || "");
    setText(tile, "price", `${price(cp.price_eur_kwh)} €/kWh · ${cp.power_kw} kW`);
    setText(tile, "caption", cp.caption || STATE_TEXT[state] || state);
    const hasTemp = cp.temperature !== undefined && cp.temperature !== null;
    setText(tile, "temperature", hasTemp ? `${fixed(cp.temperature, 1)} °C` : "");
    const supply = cp.supply;
    $('[data-field="supply"]', tile).hidden = !supply;
    if (supply) {
      setText(tile, "driver", supply.driver_id);
      setText(tile, "kw", `${fixed(supply.power_kw, 1)} kW`);
      setText(tile, "kwh", `${fixed(supply.energy_kwh, 3)} kWh`);
      setText(tile, "eur", `${fixed(supply.amount_eur, 2)} €`);
      setText(tile, "phase", PHASE_TEXT[supply.phase] || supply.phase);
    }
    const operatorStopped = (cp.out_of_service || []).includes("OPERATOR");
    $('[data-action="stop"]', tile).hidden = operatorStopped;
    $('[data-action="resume"]', tile).hidden = !operatorStopped;
  }

  function renderTiles(cps) {
    const grid = $("#tiles");
    const seen = new Set();
    cps.forEach((cp, index) => {
      seen.add(cp.cp_id);
      let tile = grid.querySelector(`[data-cp="${CSS.escape(cp.cp_id)}"]`);
      if (!tile) tile = buildTile(cp.cp_id);
      if (grid.children[index] !== tile) grid.insertBefore(tile, grid.children[index] || null);
      fillTile(tile, cp);
    });
    for (const tile of Array.from(grid.children)) if (!seen.has(tile.dataset.cp)) tile.remove();
    $("#no-cps").hidden = cps.length > 0;
    $("#cp-count").textContent = cps.length ? `(${cps.length})` : "";
  }

  /* ---------------------------------------------------------------- tables and lists */
  function renderOngoing(rows) {
    const body = $("#ongoing tbody");
    body.replaceChildren(...rows.map((s) => {
      const start = when(s.started_at || s.authorized_at);
      const tr = el("tr", {"data-supply": s.supply_id, "data-ongoing-cp": s.cp_id});
      [start.date, start.time, s.driver_id, s.cp_id, PHASE_TEXT[s.phase] || s.phase].forEach((t) => tr.append(el("td", {}, t)));
      tr.append(el("td", {"class": "num"}, fixed(s.energy_kwh, 3)), el("td", {"class": "num"}, fixed(s.amount_eur, 2)));
      return tr;
    }));
    $("#no-ongoing").hidden = rows.length > 0;
  }

  function renderMessages(rows) {
    const list = $("#messages");
    list.replaceChildren(...rows.slice(0, 100).map((m) => {
      const t = when(m.ts);
      const li = el("li", {"class": `msg level-${m.level}`, "data-message": m.id});
      li.append(el("time", {datetime: m.ts}, `${t.date} ${t.time}`), el("span", {"class": "component"}, m.component),
                el("span", {"class": "text"}, m.text));
      return li;
    }));
    $("#no-messages").hidden = rows.length > 0;
  }

  function renderDrivers(rows) {
    $("#drivers").replaceChildren(...rows.map((d) => el("li", {"data-driver": d.driver_id}, d.driver_id)));
    $("#driver-count").textContent = rows.length ? `(${rows.length})` : "";
  }

  function renderWeather(w) {
    const status = $("#weather-status");
    const form = $("#thresholds-form");
    $("#weather").dataset.available = w.available ? "true" : "false";
    const cities = w.available ? (w.cities || []) : [];
    const alerts = w.available ? (w.alerts || []).slice(0, 5) : [];
    if (!w.available) {
      status.textContent = w.message || "Sin datos del clima.";
    } else {
      const th = w.thresholds || {};
      status.textContent = th.max_c === null || th.max_c === undefined
        ? `Alerta por debajo de ${th.min_c} °C`
        : `Alerta fuera de ${th.min_c} … ${th.max_c} °C`;
      if (!form.contains(document.activeElement)) {
        $("#min_c").value = th.min_c ?? "";
        $("#max_c").value = th.max_c ?? "";
      }
    }
    $("#weather-cities tbody").replaceChildren(...cities.map((c) => {
      const tr = el("tr", {"data-city": c.city, "class": c.alert ? "alert" : ""});
      tr.append(el("td", {}, `${c.city}${c.country ? " (" + c.country + ")" : ""}`),
                el("td", {"class": "num"}, c.temperature === null || c.temperature === undefined ? "—" : fixed(c.temperature, 1)),
                el("td", {}, c.alert ? "ALERTA" : "OK"));
      return tr;
    }));
    $("#weather-cities").hidden = cities.length === 0;
    $("#no-weather").hidden = cities.length > 0 || !w.available;
    $("#weather-alerts").replaceChildren(...alerts.map((a) => {
      const t = when(a.created_at);
      return el("li", {"class": a.kind === "ALERT" ? "alert" : "clear"},
                `${t.date} ${t.time} · ${a.kind} ${a.city} ${a.temperature === null ? "" : fixed(a.temperature, 1) + " °C"}`);
    }));
  }

  function renderCentral(status) {
    centralUp = status.up;
    const down = status.up === false;
    $("#central-banner").hidden = !down;
    document.body.classList.toggle("central-down", down);
    const link = $("#central-link");
    link.dataset.up = status.up === null ? "unknown" : String(status.up);
    link.textContent = status.up ? "CENTRAL conectada" : status.up === false ? "CENTRAL caída" : "CENTRAL …";
  }

  function renderSnapshot(s) {
    renderTiles(s.charging_points || []);
    renderOngoing(s.ongoing || []);
  }

  function renderState(s) {
    renderCentral(s.central);
    renderSnapshot(s);
    renderMessages(s.messages || []);
    renderDrivers(s.drivers || []);
    renderWeather(s.weather || {});
  }

  /* ---------------------------------------------------------------- commands */
  let noticeTimer = null;
  function notice(kind, text) {
    const box = $("#notice");
    box.dataset.kind = kind;
    box.textContent = text;
    box.hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => { box.hidden = true; }, kind === "error" ? 12000 : 5000);
  }

  async function command(path, body) {
    try {
      const resp = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                      body: JSON.stringify(body || {})});
      const answer = await resp.json().catch(() => ({ok: false, message: `El Front respondió ${resp.status}`}));
      notice(answer.ok ? "ok" : "error", answer.message || (answer.ok ? "Hecho" : "Error"));
      return answer.ok;
    } catch (err) {
      notice("error", "Sin conexión con el Front: la orden no se ha enviado");
      return false;
    }
  }

  function tileAction(cpId, action) {
    const path = `/front/charging_points/${encodeURIComponent(cpId)}/${action}`;
    if (action === "remove" && !window.confirm(`¿Dar de baja el punto de carga ${cpId}?`)) return;
    command(path);
  }

  function formObject(form) {
    return Object.fromEntries(Array.from(new FormData(form).entries()).map(([k, v]) => [k, String(v).trim()]));
  }

  /* ---------------------------------------------------------------- wiring */
  function start() {
    renderState(JSON.parse($("#initial-state").textContent));
    $("#stop-all").addEventListener("click", () => command("/front/charging_points/stop"));
    $("#resume-all").addEventListener("click", () => command("/front/charging_points/resume"));
    $("#add-cp-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      if (await command("/front/charging_points", formObject(event.target))) event.target.reset();
    });
    $("#thresholds-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const values = formObject(event.target);
      command("/front/weather/thresholds", {min_c: values.min_c, max_c: values.max_c || null});
    });

    const socket = io({transports: ["websocket", "polling"]});
    const frontLink = (up) => {
      $("#front-banner").hidden = up;
      $("#front-link").dataset.up = String(up);
      $("#front-link").textContent = up ? "Front en directo" : "Front sin conexión";
    };
    socket.on("connect", () => frontLink(true));
    socket.on("disconnect", () => frontLink(false));
    socket.on("state", renderState);
    socket.on("snapshot", renderSnapshot);
    socket.on("central", renderCentral);
    socket.on("messages", renderMessages);
    socket.on("drivers", renderDrivers);
    socket.on("weather", renderWeather);
    window.evcFront = {socket, centralUp: () => centralUp};
  }

  document.addEventListener("DOMContentLoaded", start);
})();
