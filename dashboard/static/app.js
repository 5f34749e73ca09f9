// ARES dashboard live updates: on each Server-Sent Event the page fetches itself again and swaps
// its main content. Every page is complete without this script.
(function () {
  "use strict";
  if (!window.EventSource || !window.fetch || !window.DOMParser) return;
  var live = document.getElementById("live");
  var busy = false, again = false, last = 0, timer = null;
  function setLive(on) { if (live) { live.className = "live " + (on ? "on" : "off"); live.title = on ? "live updates on" : "live updates reconnecting"; } }
  function editing() {
    var a = document.activeElement;
    return a && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA") && a.value !== "";
  }
  function refresh() {
    timer = null;
    if (busy) { again = true; return; }
    if (editing()) { schedule(); return; }
    busy = true; last = Date.now();
    fetch(location.href, { credentials: "same-origin", headers: { "X-Ares-Live": "1" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html || editing()) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        var cur = document.getElementById("content"), next = doc.getElementById("content");
        if (cur && next) cur.replaceWith(next);
        var hdr = document.querySelector("header.top .status"), nh = doc.querySelector("header.top .status");
        if (hdr && nh) { hdr.innerHTML = nh.innerHTML; live = document.getElementById("live"); setLive(true); }
        document.dispatchEvent(new CustomEvent("ares:refreshed"));
      })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; schedule(); } });
  }
  function schedule() {
    if (timer) return;
    var wait = Math.max(0, 700 - (Date.now() - last));
    timer = setTimeout(refresh, wait);
  }
  var es = new EventSource("/api/v1/events");
  es.onopen = function () { setLive(true); };
  es.onerror = function () { setLive(false); };
  ["tick", "incident", "action", "activity"].forEach(function (t) { es.addEventListener(t, schedule); });
})();
