/* Raksha map (Leaflet; tiles only when configured): stations, hotspots and cameras; for the
   station staff also the open incidents (from the live events) and the patrol units where
   they are now (polling /api/units every 5 s). Labels are placed so that they do not cover
   each other: each tries right, left, above, below; one that fits nowhere is hidden until
   its marker is hovered or tapped. Needs app.js (window.Raksha). */
(function () {
  "use strict";

  var R = window.Raksha, L = window.L;
  var el = document.getElementById("map");
  var src = document.getElementById("map-data");
  if (!el || !src || !L || !R) return;
  var data = JSON.parse(src.textContent);
  var _ = R._, ngettext = R.ngettext;

  var CAMERA = { online: "#16a34a", offline: "#dc2626", unknown: "#9ca3af", disabled: "#1f2937" };
  var INCIDENT = { NEW: "#dc2626", ACKNOWLEDGED: "#f59e0b", CONFIRMED: "#ea580c", DISPATCHED: "#2563eb" };
  var UNIT = { available: "#16a34a", dispatched: "#2563eb", on_scene: "#7c3aed", off_duty: "#6b7280" };
  var UNIT_LABEL = { available: _("available"), dispatched: _("dispatched"), on_scene: _("on scene"), off_duty: _("off duty") };
  var CAMERA_LABEL = { online: _("online"), offline: _("offline"), unknown: _("unknown"), disabled: _("disabled") };
  var TERMINAL = { RESOLVED: 1, DISMISSED: 1 };
  var MAX_AGE_MS = (data.position_max_age_s || 600) * 1000;
  var UNITS_EVERY_MS = 5000;

  var map = L.map(el, { attributionControl: !!data.tiles, zoomSnap: 0.25 });
  if (data.tiles) {
    L.tileLayer(data.tiles.url, { attribution: data.tiles.attribution, maxZoom: 19 }).addTo(map);
    map.attributionControl.setPrefix(false);
  }
  L.control.scale({ imperial: false }).addTo(map);
  var points = [];
  var byHotspot = {};
  var hotspotAt = {};
  /* Permanent labels, most important first when they compete for room. */
  var labels = [];
  function add(layer, lat, lon) { layer.addTo(map); points.push([lat, lon]); return layer; }
  function label(marker, lines, rank, within) {
    marker.bindTooltip(R.textNode(lines), { permanent: true, direction: "right", offset: [10, 0],
      className: "map-label", opacity: 0.95 });
    var entry = { marker: marker, rank: rank, within: within || function () { return 0; }, hidden: false };
    labels.push(entry);
    marker.on("mouseover", function () { showLabel(entry, true); });
    marker.on("mouseout", function () { showLabel(entry, !entry.hidden); });
    return entry;
  }
  function showLabel(entry, visible) {
    var tt = entry.marker.getTooltip();
    var c = tt && tt.getElement();
    if (c) c.classList.toggle("label-hidden", !visible);
  }

  data.stations.forEach(function (s) {
    if (s.jurisdiction) {
      L.geoJSON(s.jurisdiction, { style: { color: "#0b3d91", weight: 1, fillOpacity: 0.04 } }).addTo(map);
    }
    var m = add(L.circleMarker([s.lat, s.lon], { radius: 9, color: "#fff", weight: 2, fillColor: "#0b3d91", fillOpacity: 1 }), s.lat, s.lon);
    label(m, [_("Station %(name)s", { name: s.name })], 3);
  });
  data.hotspots.forEach(function (h) {
    var m = add(L.circleMarker([h.lat, h.lon], { radius: 6, color: "#92400e", weight: 1, fillColor: "#f59e0b", fillOpacity: 1 }), h.lat, h.lon)
      .bindTooltip(R.textNode([h.name]), { direction: "top" });
    byHotspot[h.id] = m;
    hotspotAt[h.id] = [h.lat, h.lon];
  });
  var perSpot = {};
  data.cameras.forEach(function (c) {
    if (c.lat === null || c.lon === null) return;
    var k = perSpot[c.hotspot_id] = (perSpot[c.hotspot_id] || 0) + 1;
    var lat = c.lat + 0.0004 * k, lon = c.lon + 0.0004 * k;
    var status = CAMERA_LABEL[c.status] || c.status;
    var lines = [_("Camera %(id)s", { id: c.id }), _("status: %(status)s", { status: status })];
    if (c.last_frame_at) lines.push(_("last frame: %(time)s", { time: R.showTime(c.last_frame_at, true) }));
    if (c.last_error) lines.push(_("error: %(error)s", { error: c.last_error }));
    add(L.circleMarker([lat, lon], { radius: 7, color: "#fff", weight: 2, fillColor: CAMERA[c.status] || "#9ca3af", fillOpacity: 1 }), lat, lon)
      .bindPopup(R.textNode(lines)).bindTooltip(R.textNode([c.id + ": " + status]), { direction: "bottom" });
  });

  /* ---- patrol units ----------------------------------------------------------------- */
  var units = {};
  function unitPlace(u) {
    var t = R.parseTime(u.position_at);
    var fresh = u.lat !== null && u.lat !== undefined && !isNaN(t) && R.now() - t <= MAX_AGE_MS;
    if (fresh) return { at: [u.lat, u.lon], live: true };
    if (u.home_lat !== undefined) return { at: [u.home_lat, u.home_lon], live: false };
    return { at: [u.lat, u.lon], live: false };
  }
  function unitLines(u, where) {
    var status = UNIT_LABEL[u.status] || u.status;
    return [_("Unit %(unit)s", { unit: u.id }) + (status ? " · " + status : "")];
  }
  function unitPopup(u, where) {
    var lines = [_("Unit %(unit)s", { unit: u.id }) + " (" + u.kind + ")", _("station %(station)s", { station: u.station_id || u.station })];
    if (u.status) lines.push(_("status: %(status)s", { status: UNIT_LABEL[u.status] || u.status }));
    if (u.incident_id) lines.push(_("job: incident %(id)s", { id: u.incident_id.slice(0, 8) }));
    if (where.live) lines.push(_("live position, %(time)s", { time: R.showTime(u.position_at, false) }) +
      (u.accuracy_m ? " (±" + Math.round(u.accuracy_m) + " m)" : ""));
    else if (u.status) lines.push(u.position_at ? _("at its base (last position too old)") : _("at its base (no position yet)"));
    return R.textNode(lines);
  }
  function unitStyle(u, where) {
    return { radius: 7, color: where.live ? "#fff" : "#111827", weight: 2, dashArray: where.live ? null : "3 3",
      fillColor: UNIT[u.status] || "#7c3aed", fillOpacity: 1 };
  }
  function drawUnit(u, initial) {
    var where = unitPlace(u);
    if (where.at[0] === null || where.at[0] === undefined) return;
    var known = units[u.id];
    var key = [where.at[0], where.at[1], where.live, u.status, u.incident_id, u.position_at].join("|");
    if (!known) {
      var m = L.circleMarker(where.at, unitStyle(u, where));
      if (initial) add(m, where.at[0], where.at[1]); else m.addTo(map);
      m.bindPopup(unitPopup(u, where));
      units[u.id] = { marker: m, label: label(m, unitLines(u, where), 1), key: key };
      return true;
    }
    if (known.key === key) return false;
    known.key = key;
    known.marker.setLatLng(where.at).setStyle(unitStyle(u, where));
    known.marker.setPopupContent(unitPopup(u, where));
    known.marker.setTooltipContent(R.textNode(unitLines(u, where)));
    return true;
  }
  data.units.forEach(function (u) { drawUnit(u, true); });

  /* ---- open incidents ------------------------------------------------------------- */
  var incidents = {};
  var atSpot = {};
  function incidentLines(d) {
    var marks = [];
    if (d.origin === "sos") marks.push("SOS");
    if (d.priority === "high" && d.origin !== "sos") marks.push(_("high"));
    if (d.escalation_level > 0) marks.push(_("escalated ×%(n)s", { n: d.escalation_level }));
    return [d.id.slice(0, 8) + " · " + (R.STATES[d.state] || d.state) + (marks.length ? " · " + marks.join(" · ") : "")];
  }
  function incidentPopup(d) {
    var div = document.createElement("div");
    var a = document.createElement("a");
    a.href = "/incidents/" + encodeURIComponent(d.id);
    a.textContent = _("Incident %(id)s", { id: d.id.slice(0, 8) });
    div.appendChild(a);
    var lines = [(R.STATES[d.state] || d.state) + (d.origin === "sos" ? " · SOS" : "") + (d.priority === "high" ? " · " + _("high priority") : ""),
      d.place || d.hotspot_id || "", _("station %(station)s", { station: d.station_id })];
    var c = R.countdown(d.deadline_at, d.deadline_kind);
    if (c) lines.push(c.text);
    if (d.escalation_level > 0) lines.push(_("escalated ×%(n)s", { n: d.escalation_level }));
    if (d.unit_id) lines.push(_("unit %(unit)s", { unit: d.unit_id }));
    div.appendChild(R.textNode(lines.filter(Boolean)));
    return div;
  }
  function incidentStyle(d) {
    var urgent = d.priority === "high" || d.origin === "sos";
    return { radius: urgent ? 11 : 9, color: urgent ? "#7f1d1d" : "#fff", weight: urgent ? 4 : 2,
      fillColor: INCIDENT[d.state] || "#dc2626", fillOpacity: 0.95, className: "incident-marker" };
  }
  /* Which incident's label wins the room: SOS or high priority, then new, then the newest. */
  function urgency(d) {
    var opened = R.parseTime(d.opened_at) || 0;
    return (d.priority === "high" || d.origin === "sos" ? 0 : 2e13) + (d.state === "NEW" ? 0 : 1e13) - opened / 1000;
  }
  function incidentAt(d) {
    if (d.lat !== null && d.lat !== undefined && d.lon !== null && d.lon !== undefined) return [d.lat, d.lon];
    return hotspotAt[d.hotspot_id] || null;
  }
  function drawIncident(d, initial) {
    var known = incidents[d.id];
    if (TERMINAL[d.state]) {
      if (known) {
        map.removeLayer(known.marker);
        labels = labels.filter(function (l) { return l !== known.label; });
        delete incidents[d.id];
      }
      return;
    }
    if (!known) {
      var at = incidentAt(d);
      if (!at) return;
      // Incidents at one place (a hotspot's camera) sit in a small ring, each tappable.
      var spot = at[0].toFixed(5) + "," + at[1].toFixed(5);
      var n = atSpot[spot] = (atSpot[spot] || 0) + 1;
      if (n > 1) {
        var angle = (n - 2) * Math.PI / 3, r = 0.00035 * (1 + Math.floor((n - 2) / 6) * 0.6);
        at = [at[0] + r * Math.sin(angle), at[1] + r * Math.cos(angle)];
      }
      var m = L.circleMarker(at, incidentStyle(d));
      if (initial) add(m, at[0], at[1]); else m.addTo(map);
      m.bindPopup(function () { return incidentPopup(incidents[d.id] ? incidents[d.id].data : d); });
      known = incidents[d.id] = { marker: m, data: d };
      known.label = label(m, incidentLines(d), 0, function () { return urgency(known.data); });
      if (!initial) m.bringToFront();
      return;
    }
    // An event carries no position: keep the one we have.
    d.lat = known.data.lat; d.lon = known.data.lon;
    known.data = d;
    known.marker.setStyle(incidentStyle(d));
    known.marker.setTooltipContent(R.textNode(incidentLines(d)));
  }
  (data.incidents || []).forEach(function (d) { drawIncident(d, true); });

  /* ---- labels that do not cover each other -------------------------------------------- */
  var DIRS = [["right", [10, 0]], ["left", [-10, 0]], ["top", [0, -8]], ["bottom", [0, 8]]];
  function overlaps(a, b) {
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  }
  var pending = false;
  function declutter() {
    pending = false;
    var placed = [];
    labels.slice().sort(function (a, b) { return a.rank - b.rank || a.within() - b.within(); }).forEach(function (entry) {
      var tt = entry.marker.getTooltip();
      var c = tt && tt.getElement();
      if (!c || !map.hasLayer(entry.marker)) return;
      c.classList.remove("label-hidden");
      var fit = null;
      for (var i = 0; i < DIRS.length && !fit; i++) {
        tt.options.direction = DIRS[i][0];
        tt.options.offset = L.point(DIRS[i][1][0], DIRS[i][1][1]);
        tt.update();
        var r = c.getBoundingClientRect();
        var box = { left: r.left - 2, right: r.right + 2, top: r.top - 1, bottom: r.bottom + 1 };
        if (!placed.some(function (p) { return overlaps(p, box); })) fit = box;
      }
      entry.hidden = !fit;
      if (fit) placed.push(fit);
      else {
        tt.options.direction = DIRS[0][0];
        tt.options.offset = L.point(DIRS[0][1][0], DIRS[0][1][1]);
        tt.update();
        c.classList.add("label-hidden");
      }
    });
  }
  function relabel() {
    if (pending) return;
    pending = true;
    (window.requestAnimationFrame || setTimeout)(declutter);
  }
  map.on("zoomend", relabel);
  map.on("resize", relabel);

  if (points.length) map.fitBounds(points, { padding: [40, 40], maxZoom: 16 });
  else map.setView([22.5, 79.0], 5);
  var hs = /#hotspot=([^&]+)/.exec(window.location.hash);
  if (hs && byHotspot[decodeURIComponent(hs[1])]) {
    var target = byHotspot[decodeURIComponent(hs[1])];
    map.setView(target.getLatLng(), 16);
    target.openTooltip();
  }
  relabel();

  var counts = document.getElementById("map-counts");
  function recount() {
    if (!counts) return;
    var n = Object.keys(incidents).length, u = Object.keys(units).length;
    counts.textContent = ngettext("%(count)s open incident", "%(count)s open incidents", n, { count: n }) + ", " +
      ngettext("%(count)s patrol unit", "%(count)s patrol units", u, { count: u });
  }

  if (!data.live) return;

  /* ---- live: events for the incidents, polling for the units ---------------------------- */
  R.showState(document.getElementById("live"));
  var polling = false;
  function pollUnits() {
    if (polling || !window.fetch) return;
    polling = true;
    fetch("/api/units", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (r.status === 401) { window.location.href = "/login?next=/map"; return null; }
        return r.ok ? r.json() : null;
      })
      .then(function (body) {
        if (!body || !body.units) return;
        var moved = false;
        body.units.forEach(function (u) { if (drawUnit(u, false)) moved = true; });
        if (moved) relabel();
        recount();
      })
      .catch(function () { /* offline a moment */ })
      .then(function () { polling = false; });
  }
  setInterval(pollUnits, UNITS_EVERY_MS);

  var fetchingOpen = null;
  /* An incident first heard of through an event: its position comes from the API. */
  function fetchOpen() {
    if (fetchingOpen) return;
    fetchingOpen = setTimeout(function () {
      var q = "state=NEW&state=ACKNOWLEDGED&state=CONFIRMED&state=DISPATCHED&limit=500";
      fetch("/api/incidents?" + q, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) {
          if (!body || !body.incidents) return;
          body.incidents.forEach(function (i) {
            if (incidents[i.id]) return;
            drawIncident(i, false);
          });
          relabel();
          recount();
        })
        .catch(function () {})
        .then(function () { fetchingOpen = null; });
    }, 300);
  }
  function onIncident(d) {
    if (incidents[d.id] || TERMINAL[d.state]) {
      drawIncident(d, false);
      relabel();
      recount();
    } else {
      fetchOpen();
    }
    pollUnits(); // a dispatch or a closed case changes a unit's status
  }
  R.on("incident.new", onIncident);
  R.on("incident.update", onIncident);
  recount();
})();
