// Helpers shared by the Engine panel and the driver web app (served at /shared/live.js): both render a
// view pushed as "state" over Socket.IO, redraw a section only when its data changed, and tick the
// elapsed time of the supply in progress between pushes.
window.evcLive = (function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const esc = (v) => String(v == null ? "" : v).replace(/[&<>"']/g,
    (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));

  // changed(key, value) is true the first time and whenever value differs from the last one under key.
  function changeTracker() {
    const last = {};
    return (key, value) => {
      const text = JSON.stringify(value);
      if (last[key] === text) return false;
      last[key] = text;
      return true;
    };
  }

  function fmtDuration(s) {
    s = Math.max(0, Math.floor(s));
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h + ":" + String(m).padStart(2, "0") + ":" + String(r).padStart(2, "0");
  }

  // Every second, element id shows the server's elapsed seconds plus the time since they arrived.
  function elapsedClock(id) {
    let base = null;                // [elapsed_s from the server, performance.now() when it arrived]
    setInterval(() => {
      const el = $(id);
      if (el && base) el.textContent = fmtDuration(base[0] + (performance.now() - base[1]) / 1000);
    }, 1000);
    return {sync: (seconds) => { base = seconds != null ? [seconds, performance.now()] : null; }};
  }

  // Renders the view embedded in the page, then every pushed one; #link-dot shows the socket's link.
  function connect(render) {
    render(JSON.parse($("initial-view").textContent));
    const socket = io({transports: ["websocket", "polling"]});
    socket.on("state", render);
    socket.on("connect", () => { $("link-dot").className = "dot up"; });
    socket.on("disconnect", () => { $("link-dot").className = "dot down"; });
    socket.on("connect_error", () => { $("link-dot").className = "dot down"; });
    return socket;
  }

  return {$, esc, changeTracker, fmtDuration, elapsedClock, connect};
})();
