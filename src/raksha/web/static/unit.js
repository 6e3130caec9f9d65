/* Raksha: the patrol unit's phone page (/unit). The unit id and device token are typed once
   and kept in this phone's localStorage; the page then asks for the unit's job every 3 s,
   shows the job card (English and Hindi, the pixelated picture, directions, distance), sends
   Acknowledge / On scene / duty, and reports the phone's position at most every 10 s while
   on duty. A new job beeps, vibrates and, when allowed, shows a system notification.
   Every call goes to this site with `Authorization: Bearer <token>` and no cookies. Needs
   app.js (window.Raksha). */
(function () {
  "use strict";

  var R = window.Raksha;
  var app = document.getElementById("unit-app");
  if (!app || !R) return;
  var _ = R._;

  var KEY = "raksha.unit";
  var SEEN_KEY = "raksha.unit.job";
  var ACKED_KEY = "raksha.unit.acked";
  var POLL_MS = 3000;
  var POSITION_MS = 10000;
  var STATUS = { available: _("available"), dispatched: _("dispatched"), on_scene: _("on scene"), off_duty: _("off duty") };

  function $(id) { return document.getElementById(id); }
  var setup = $("unit-setup"), main = $("unit-main"), msg = $("unit-msg");
  var cfg = R.readJSON("localStorage", KEY, null);
  var pollTimer = null, tickTimer = null, watchId = null, sendTimer = null;
  var status = null, job = null, jobKey = null;
  var fix = null, lastSent = 0, sending = false, sendTime = true;
  var wakeLock = null;

  function say(text, kind) {
    msg.textContent = text || "";
    msg.className = "flash" + (kind ? " " + kind : "");
    msg.hidden = !text;
  }

  function api(method, path, body) {
    var init = { method: method, credentials: "omit", cache: "no-store",
      headers: { Authorization: "Bearer " + cfg.token, Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch("/api/units/" + encodeURIComponent(cfg.id) + path, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        return { status: r.status, ok: r.ok, body: j || {} };
      });
    });
  }
  function detail(res) {
    var d = res.body && res.body.detail;
    return typeof d === "string" ? d : _("the server answered %(status)s", { status: res.status });
  }

  /* ---- setup ------------------------------------------------------------------------ */
  function showSetup(error) {
    stop();
    main.hidden = true;
    setup.hidden = false;
    $("unit-id").value = cfg ? cfg.id : "";
    $("unit-token").value = "";
    var e = $("setup-error");
    e.textContent = error || "";
    e.hidden = !error;
  }
  setup.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var id = $("unit-id").value.trim(), token = $("unit-token").value.trim();
    if (!id || token.length < 16) {
      showSetup(_("Enter the unit id and its device token (16 characters or more)."));
      return;
    }
    cfg = { id: id, token: token };
    R.writeJSON("localStorage", KEY, cfg);
    enableAlerts();
    start();
  });
  $("unit-forget").addEventListener("click", function () {
    try { localStorage.removeItem(KEY); localStorage.removeItem(SEEN_KEY); localStorage.removeItem(ACKED_KEY); }
    catch (e) { /* refused */ }
    cfg = null;
    showSetup("");
  });

  /* ---- sound, vibration, notifications, screen ----------------------------------------- */
  function enableAlerts() {
    R.unlockAudio();
    if ("Notification" in window && Notification.permission === "default") {
      Promise.resolve(Notification.requestPermission()).then(function (p) { if (p === "granted") R.registerWorker(); });
    } else if ("Notification" in window && Notification.permission === "granted") {
      R.registerWorker();
    }
    keepAwake();
    setTimeout(soundBanner, 300);
  }
  function soundBanner() { $("unit-sound").hidden = R.soundReady(); }
  $("unit-enable").addEventListener("click", enableAlerts);
  function keepAwake() {
    if (!navigator.wakeLock || wakeLock) return;
    navigator.wakeLock.request("screen").then(function (l) {
      wakeLock = l;
      l.addEventListener("release", function () { wakeLock = null; });
    }).catch(function () { /* not allowed now */ });
  }
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && cfg && !main.hidden) { keepAwake(); poll(); }
  });

  /* ---- status and duty ---------------------------------------------------------------- */
  function showStatus(s) {
    if (!s) return;
    status = s;
    var b = $("unit-status");
    b.textContent = STATUS[s] || s;
    b.dataset.status = s;
    b.className = "badge unit-" + s.replace("_", "-");
    $("duty-on").setAttribute("aria-pressed", String(s !== "off_duty"));
    $("duty-off").setAttribute("aria-pressed", String(s === "off_duty"));
    if (s === "off_duty") stopGeo(); else startGeo();
  }
  function duty(on) {
    api("POST", "/duty", { on_duty: on }).then(function (res) {
      if (res.ok) { showStatus(res.body.status); say(on ? _("You are on duty.") : _("You are off duty."), "ok"); }
      else say(_("Duty not changed: %(why)s", { why: detail(res) }), "error");
    }).catch(function () { say(_("No connection: duty not changed. Try again."), "error"); });
  }
  $("duty-on").addEventListener("click", function () { enableAlerts(); duty(true); });
  $("duty-off").addEventListener("click", function () { duty(false); });

  /* ---- the job ------------------------------------------------------------------------ */
  function setConn(s, text) {
    var c = $("unit-conn");
    c.dataset.state = s;
    c.textContent = text;
  }
  function poll() {
    if (!cfg) return;
    api("GET", "/job").then(function (res) {
      if (res.status === 401 || res.status === 403 || res.status === 404) {
        showSetup(res.status === 401 ? _("This device token was not accepted. Check it with your station.")
          : res.status === 403 ? _("This token belongs to another unit.") : _("No such patrol unit: %(unit)s.", { unit: cfg.id }));
        return;
      }
      if (!res.ok) { setConn("reconnecting", _("server busy…")); return; }
      setConn("live", _("live"));
      show(res.body.job || null);
    }).catch(function () { setConn("reconnecting", _("no connection…")); });
  }

  function haversine(a, b, c, d) {
    var rad = Math.PI / 180, dLat = (c - a) * rad, dLon = (d - b) * rad;
    var h = Math.sin(dLat / 2) * Math.sin(dLat / 2) +
      Math.cos(a * rad) * Math.cos(c * rad) * Math.sin(dLon / 2) * Math.sin(dLon / 2);
    return 2 * 6371000 * Math.asin(Math.min(1, Math.sqrt(h)));
  }
  function distanceText() {
    if (!job) return "";
    if (fix && typeof job.lat === "number" && typeof job.lon === "number") {
      return _("%(distance)s from you", { distance: R.metres(haversine(fix.lat, fix.lon, job.lat, job.lon)) });
    }
    var d = job.unit && job.unit.distance_m;
    return typeof d === "number" ? _("%(distance)s away when sent", { distance: R.metres(d) }) : "";
  }

  function acked() { return R.readJSON("localStorage", ACKED_KEY, null) === jobKey; }
  function buttons() {
    var onScene = status === "on_scene" || (job && job.unit_status === "on_scene");
    var ack = $("job-ack"), scene = $("job-on-scene");
    ack.disabled = acked() || onScene;
    ack.textContent = acked() || onScene ? _("Acknowledged") + " ✓" : _("Acknowledge");
    scene.disabled = onScene;
    scene.textContent = onScene ? _("On scene") + " ✓" : _("On scene");
  }
  function ackClock() {
    var el = $("job-ack-within");
    if (!job || acked() || (job.unit_status === "on_scene")) { el.textContent = ""; return; }
    var sent = R.parseTime(job.at);
    if (isNaN(sent) || typeof job.ack_within_s !== "number") { el.textContent = ""; return; }
    var left = (sent + job.ack_within_s * 1000 - R.now()) / 1000;
    el.textContent = left >= 0 ? _("Acknowledge within %(time)s", { time: R.clock(left) })
      : _("Acknowledge now: %(time)s late", { time: R.clock(-left) });
    el.classList.toggle("overdue", left < 0);
  }

  function show(j) {
    job = j;
    $("no-job").hidden = !!j;
    $("job").hidden = !j;
    if (!j) {
      jobKey = null;
      document.title = _("Patrol unit") + " · Raksha";
      return;
    }
    if (j.unit_status) showStatus(j.unit_status);
    var key = j.incident_id + ":" + (j.seq || "");
    var isNew = key !== jobKey;
    jobKey = key;
    if (isNew) {
      $("job-id").textContent = j.incident_short_id || (j.incident_id || "").slice(0, 8);
      $("job-sos").hidden = j.origin !== "sos";
      $("job-high").hidden = j.priority !== "high";
      $("job-place").textContent = j.place || "";
      var text = j.text || {};
      $("job-text-en").textContent = text.en || "";
      $("job-text-hi").textContent = text.hi || "";
      var dir = $("job-directions");
      var url = typeof j.directions === "string" && /^geo:-?[0-9.]+,-?[0-9.]+/.test(j.directions) ? j.directions
        : typeof j.lat === "number" && typeof j.lon === "number" ? "geo:" + j.lat + "," + j.lon : null;
      dir.hidden = !url;
      if (url) dir.setAttribute("href", url);
      var pic = j.picture_jpeg_b64;
      var ok = typeof pic === "string" && /^[A-Za-z0-9+/=\s]+$/.test(pic);
      $("job-figure").hidden = !ok;
      if (ok) $("job-picture").src = "data:image/jpeg;base64," + pic.replace(/\s/g, "");
      else $("job-picture").removeAttribute("src");
      var seen = R.readJSON("localStorage", SEEN_KEY, null);
      if (seen !== key) {
        R.writeJSON("localStorage", SEEN_KEY, key);
        newJob(j);
      }
    }
    document.title = (acked() ? "" : _("NEW JOB") + " · ") + (j.place || _("Job")) + " · Raksha";
    $("job-distance").textContent = distanceText();
    buttons();
    ackClock();
  }

  function newJob(j) {
    R.beep(4);
    R.buzz([500, 200, 500, 200, 500]);
    var place = j.place || _("see the phone");
    R.notify(_("New job: %(place)s", { place: place }), (j.text && j.text.en) || "", "raksha-job", "/unit");
    say(_("New job. Acknowledge it now."), "attention");
  }

  function act(path, done) {
    api("POST", path, {}).then(function (res) {
      if (res.ok) { done(); say(path === "/job/ack" ? _("Acknowledged. Go now.") : _("Arrival recorded."), "ok"); poll(); }
      else say(_("Not sent: %(why)s", { why: detail(res) }), "error");
    }).catch(function () { say(_("No connection: not sent. Try again."), "error"); });
  }
  $("job-ack").addEventListener("click", function () {
    enableAlerts();
    var key = jobKey;
    act("/job/ack", function () { R.writeJSON("localStorage", ACKED_KEY, key); buttons(); ackClock(); });
  });
  $("job-on-scene").addEventListener("click", function () {
    act("/job/on-scene", function () { showStatus("on_scene"); buttons(); });
  });

  /* ---- position ----------------------------------------------------------------------- */
  function posState(text) { $("pos-state").textContent = text; }
  function startGeo() {
    if (watchId !== null || !cfg) return;
    if (!navigator.geolocation) { posState(_("this phone gives no position")); return; }
    watchId = navigator.geolocation.watchPosition(function (p) {
      fix = { lat: p.coords.latitude, lon: p.coords.longitude, acc: p.coords.accuracy, at: p.timestamp || Date.now() };
      $("job-distance").textContent = distanceText();
      send();
    }, function (e) {
      var why = e.message || _("unavailable");
      posState(e.code === 1 ? _("not allowed: allow this site to use the location in the phone's settings")
        : _("no fix yet (%(why)s)", { why: why }));
    }, { enableHighAccuracy: true, maximumAge: 5000, timeout: 30000 });
  }
  function stopGeo() {
    if (watchId !== null && navigator.geolocation) navigator.geolocation.clearWatch(watchId);
    watchId = null;
    if (sendTimer) { clearTimeout(sendTimer); sendTimer = null; }
    if (status === "off_duty") posState(_("not shared while off duty"));
  }
  /* The newest fix, at most once every 10 s. */
  function send() {
    if (!fix || sending || !cfg) return;
    var wait = lastSent + POSITION_MS - Date.now();
    if (wait > 0) {
      if (!sendTimer) sendTimer = setTimeout(function () { sendTimer = null; send(); }, wait);
      return;
    }
    var f = fix, body = { lat: f.lat, lon: f.lon };
    if (typeof f.acc === "number" && f.acc >= 0 && f.acc <= 100000) body.accuracy_m = Math.round(f.acc * 10) / 10;
    if (sendTime) body.at = new Date(f.at).toISOString();
    sending = true;
    lastSent = Date.now();
    api("POST", "/position", body).then(function (res) {
      if (res.ok) {
        showStatus(res.body.status);
        posState(_("sent %(time)s", { time: new Date().toLocaleTimeString() }) + (body.accuracy_m ? " (±" + Math.round(body.accuracy_m) + " m)" : ""));
      } else {
        if (res.status === 409 && /future|old/i.test(detail(res))) sendTime = false; // the phone's clock
        posState(_("not taken: %(why)s", { why: detail(res) }));
      }
    }).catch(function () { posState(_("not sent (no connection); trying again")); })
      .then(function () { sending = false; });
  }

  /* ---- start and stop ------------------------------------------------------------------ */
  function stop() {
    if (pollTimer) clearInterval(pollTimer);
    if (tickTimer) clearInterval(tickTimer);
    pollTimer = tickTimer = null;
    stopGeo();
  }
  function start() {
    stop();
    setup.hidden = true;
    main.hidden = false;
    $("unit-name").textContent = _("Unit %(unit)s", { unit: cfg.id });
    say("", null);
    setConn("connecting", _("connecting…"));
    soundBanner();
    poll();
    pollTimer = setInterval(poll, POLL_MS);
    tickTimer = setInterval(function () { ackClock(); soundBanner(); }, 1000);
    startGeo();
  }

  if (cfg && cfg.id && cfg.token) start();
  else showSetup("");
})();
