/* Raksha dashboard: local times, the live incident list, incident change notices, the map.
   No inline scripts (the pages' Content-Security-Policy allows scripts from this site only). */
(function () {
  "use strict";

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.local) return;
      var d = new Date(el.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      el.title = el.textContent;
      el.textContent = d.toLocaleString();
      el.dataset.local = "1";
    });
  }

  function events(handlers, onState) {
    if (!window.EventSource) return null;
    var es = new EventSource("/api/events");
    es.addEventListener("open", function () { onState("live"); });
    es.addEventListener("error", function () { onState("reconnecting"); });
    es.addEventListener("session.ended", function () { window.location.href = "/login"; });
    Object.keys(handlers).forEach(function (kind) {
      es.addEventListener(kind, function (e) {
        var data = null;
        try { data = JSON.parse(e.data); } catch (err) { return; }
        handlers[kind](data);
      });
    });
    return es;
  }

  /* ---- the live incident list ---------------------------------------------------- */
  function liveList() {
    if (!document.querySelector("[data-live-list]")) return;
    var KEY = "raksha.unseen";
    var baseTitle = document.title;
    var unseen = {};
    try { unseen = JSON.parse(sessionStorage.getItem(KEY) || "{}") || {}; } catch (e) { unseen = {}; }
    var live = document.getElementById("live");
    var banner = document.getElementById("new-banner");
    var count = document.getElementById("new-count");

    function save() { try { sessionStorage.setItem(KEY, JSON.stringify(unseen)); } catch (e) { /* private mode */ } }
    function mark() {
      var n = Object.keys(unseen).length;
      document.querySelectorAll("#incident-rows tr[data-id]").forEach(function (tr) {
        tr.classList.toggle("is-new", Object.prototype.hasOwnProperty.call(unseen, tr.dataset.id));
      });
      document.title = n > 0 ? "(" + n + ") " + baseTitle : baseTitle;
      count.textContent = String(n);
      banner.hidden = n === 0;
    }
    function refresh() {
      var rows = document.getElementById("incident-rows");
      if (rows && window.htmx) window.htmx.trigger(rows, "refresh");
    }
    function setState(s) {
      live.dataset.state = s;
      live.textContent = s === "live" ? "live" : s === "reconnecting" ? "reconnecting…" : s;
    }
    events({
      "incident.new": function (d) { unseen[d.id] = 1; save(); refresh(); },
      "incident.update": function () { refresh(); }
    }, setState);
    document.body.addEventListener("htmx:afterSwap", function (e) {
      mark();
      localTimes(document);
    });
    document.getElementById("mark-seen").addEventListener("click", function () {
      unseen = {}; save(); mark();
    });
    document.addEventListener("click", function (e) {
      var a = e.target.closest ? e.target.closest("tr[data-id]") : null;
      if (a && unseen[a.dataset.id]) { delete unseen[a.dataset.id]; save(); }
    });
    mark();
  }

  /* ---- the incident page: tell when someone else changed it ------------------------- */
  function incidentPage() {
    var head = document.getElementById("incident");
    if (!head) return;
    var id = head.dataset.incidentId;
    var version = parseInt(head.dataset.version, 10);
    var banner = document.getElementById("changed-banner");
    events({
      "incident.update": function (d) {
        if (d.id === id && d.version > version) banner.hidden = false;
      }
    }, function () {});
  }

  /* ---- the map (Leaflet; tiles only when configured) --------------------------------- */
  var COLORS = { online: "#16a34a", offline: "#dc2626", unknown: "#9ca3af", disabled: "#1f2937" };

  function textNode(lines) {
    var div = document.createElement("div");
    lines.forEach(function (line, i) {
      if (i > 0) div.appendChild(document.createElement("br"));
      div.appendChild(document.createTextNode(line));
    });
    return div;
  }

  function drawMap() {
    var el = document.getElementById("map");
    var src = document.getElementById("map-data");
    if (!el || !src || !window.L) return;
    var L = window.L;
    var data = JSON.parse(src.textContent);
    var map = L.map(el, { attributionControl: !!data.tiles, zoomSnap: 0.25 });
    if (data.tiles) {
      L.tileLayer(data.tiles.url, { attribution: data.tiles.attribution, maxZoom: 19 }).addTo(map);
      map.attributionControl.setPrefix(false);
    }
    L.control.scale({ imperial: false }).addTo(map);
    var points = [];
    var byHotspot = {};
    function add(layer, lat, lon) { layer.addTo(map); points.push([lat, lon]); return layer; }

    data.stations.forEach(function (s) {
      if (s.jurisdiction) {
        L.geoJSON(s.jurisdiction, { style: { color: "#0b3d91", weight: 1, fillOpacity: 0.04 } }).addTo(map);
      }
      add(L.circleMarker([s.lat, s.lon], { radius: 9, color: "#fff", weight: 2, fillColor: "#0b3d91", fillOpacity: 1 }), s.lat, s.lon)
        .bindTooltip(textNode(["Station " + s.name]), { permanent: true, direction: "right", offset: [10, 0], className: "map-label" });
    });
    data.hotspots.forEach(function (h) {
      var m = add(L.circleMarker([h.lat, h.lon], { radius: 6, color: "#92400e", weight: 1, fillColor: "#f59e0b", fillOpacity: 1 }), h.lat, h.lon)
        .bindTooltip(textNode([h.name]), { direction: "top" });
      byHotspot[h.id] = m;
    });
    data.units.forEach(function (u) {
      add(L.circleMarker([u.lat, u.lon], { radius: 5, color: "#fff", weight: 1, fillColor: "#7c3aed", fillOpacity: 1 }), u.lat, u.lon)
        .bindTooltip(textNode(["Unit " + u.id + " (" + u.kind + ")", "station " + u.station]), { direction: "top" });
    });
    var perSpot = {};
    data.cameras.forEach(function (c) {
      if (c.lat === null || c.lon === null) return;
      var k = perSpot[c.hotspot_id] = (perSpot[c.hotspot_id] || 0) + 1;
      var lat = c.lat + 0.0004 * k, lon = c.lon + 0.0004 * k;
      var lines = ["Camera " + c.id, "status: " + c.status];
      if (c.last_frame_at) lines.push("last frame: " + new Date(c.last_frame_at).toLocaleString());
      if (c.last_error) lines.push("error: " + c.last_error);
      add(L.circleMarker([lat, lon], { radius: 7, color: "#fff", weight: 2, fillColor: COLORS[c.status] || "#9ca3af", fillOpacity: 1 }), lat, lon)
        .bindPopup(textNode(lines)).bindTooltip(textNode([c.id + ": " + c.status]), { direction: "bottom" });
    });
    if (points.length) map.fitBounds(points, { padding: [40, 40], maxZoom: 16 });
    else map.setView([22.5, 79.0], 5);
    var m = /#hotspot=([^&]+)/.exec(window.location.hash);
    if (m && byHotspot[decodeURIComponent(m[1])]) {
      var target = byHotspot[decodeURIComponent(m[1])];
      map.setView(target.getLatLng(), 16);
      target.openTooltip();
    }
  }

  localTimes(document);
  liveList();
  incidentPage();
  drawMap();
})();
