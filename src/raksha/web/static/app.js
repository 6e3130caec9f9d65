/* Raksha dashboard: local times, live clocks (age and deadline of each open incident), the
   live events, the officer's alerts (sound, vibration, system notification), the live
   incident list (with its filters' time zone and keyboard shortcuts) and the incident page. The map (map.js) and the patrol unit's phone page
   (unit.js) build on window.Raksha.
   No inline scripts (the pages' Content-Security-Policy allows scripts from this site only). */
(function () {
  "use strict";

  var R = window.Raksha = window.Raksha || {};

  /* ---- language ------------------------------------------------------------------------ */
  /* The page's messages in its language, from the JSON block the server writes into every
     page (`<script type="application/json" id="i18n">`): {messages: {English: translation or
     [plural forms]}, plural: the form for 0, 1 and 2 or more}. A message it lacks stays in
     English. "%(name)s" in a message is replaced by args.name. */
  var I18N = (function () {
    var el = document.getElementById("i18n");
    try { return (el && JSON.parse(el.textContent)) || {}; } catch (e) { return {}; }
  })();
  var MESSAGES = I18N.messages || {};
  var PLURAL = I18N.plural || [1, 0, 1];
  function fill(text, args) {
    if (!args) return text;
    return text.replace(/%\((\w+)\)s/g, function (all, key) {
      return Object.prototype.hasOwnProperty.call(args, key) ? String(args[key]) : all;
    });
  }
  function _(message, args) {
    var t = MESSAGES[message];
    return fill(typeof t === "string" && t ? t : message, args);
  }
  function ngettext(singular, plural, n, args) {
    var forms = MESSAGES[singular];
    var form = PLURAL[Math.min(2, Math.max(0, Math.floor(Math.abs(n))))] || 0;
    var text = Array.isArray(forms) && forms[form] ? forms[form] : (n === 1 ? singular : plural);
    return fill(text, args);
  }

  /* ---- time ------------------------------------------------------------------------- */
  // The server's clock when it is clearly apart from this device's (a phone set wrong).
  var skew = 0;
  (function () {
    var m = document.querySelector('meta[name="server-time"]');
    var t = m ? Date.parse(m.getAttribute("content")) : NaN;
    if (!isNaN(t) && Math.abs(t - Date.now()) > 5000) skew = t - Date.now();
  })();
  function now() { return Date.now() + skew; }

  /* '0:42', '12:05', '1:02:03', as the server writes it. */
  function clock(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
    var mm = h ? (m < 10 ? "0" : "") + m : String(m);
    return (h ? h + ":" : "") + mm + ":" + (sec < 10 ? "0" : "") + sec;
  }

  /* An ISO time from the server (UTC; one written without a zone is UTC too). */
  function parseTime(s) {
    if (!s) return NaN;
    return Date.parse(/T[\d:.]+$/.test(s) ? s + "Z" : s);
  }

  var DEADLINES = { acknowledge: _("acknowledge"), dispatch: _("dispatch"), unit_ack: _("unit to acknowledge") };
  var STATES = { NEW: _("New"), ACKNOWLEDGED: _("Acknowledged"), CONFIRMED: _("Confirmed"),
    DISPATCHED: _("Dispatched"), RESOLVED: _("Resolved"), DISMISSED: _("Dismissed") };

  /* {text, overdue} of a running deadline, or null when none runs. */
  function countdown(deadlineAt, kind) {
    var at = parseTime(deadlineAt);
    if (isNaN(at)) return null;
    var label = DEADLINES[kind] || kind || _("deadline");
    var left = (at - now()) / 1000;
    return left >= 0 ? { text: _("%(what)s within %(time)s", { what: label, time: clock(left) }), overdue: false }
      : { text: _("%(what)s overdue %(time)s", { what: label, time: clock(-left) }), overdue: true };
  }

  function metres(m) {
    if (m === null || m === undefined || isNaN(m)) return "—";
    return m >= 1000 ? (m / 1000).toFixed(1) + " km" : Math.round(m) + " m";
  }

  /* Times are shown in the deployment's time zone (`<html data-tz>`, the config's
     `timezone:`), with the date and the zone's name, in the page's language; the server's
     text (UTC) stays as the title. Without a zone on the page: the browser's. */
  var ZONE = document.documentElement.getAttribute("data-tz") || "";
  var FORMATS = {};
  function formatter(withDate) {
    var key = withDate ? "date" : "time";
    if (FORMATS[key]) return FORMATS[key];
    var lang = document.documentElement.lang === "hi" ? "hi-IN" : "en-IN";
    var opts = { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
                 timeZoneName: "short" };
    if (withDate) { opts.year = "numeric"; opts.month = "short"; opts.day = "numeric"; }
    try {
      if (ZONE) opts.timeZone = ZONE;
      FORMATS[key] = new Intl.DateTimeFormat(lang, opts);
    } catch (e) {
      delete opts.timeZone;
      FORMATS[key] = new Intl.DateTimeFormat(lang, opts);
    }
    return FORMATS[key];
  }
  /* "6 Dec 2026, 13:18:31 IST" (withDate) or "13:18:31 IST"; "" for a time it cannot read. */
  function showTime(value, withDate) {
    var d = value instanceof Date ? value : new Date(value);
    if (isNaN(d.getTime())) return "";
    return formatter(withDate !== false).format(d);
  }

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      if (el.dataset.local) return;
      var text = showTime(el.getAttribute("datetime"), true);
      if (!text) return;
      el.title = el.textContent;
      el.textContent = text;
      el.dataset.local = "1";
    });
  }

  /* Every second: each countdown and each age on the page. */
  function tick() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var c = countdown(el.dataset.deadline, el.dataset.kind);
      el.hidden = c === null;
      if (c === null) return;
      if (el.textContent !== c.text) el.textContent = c.text;
      el.classList.toggle("overdue", c.overdue);
    });
    document.querySelectorAll(".age[data-since]").forEach(function (el) {
      var t = parseTime(el.dataset.since);
      if (!isNaN(t)) el.textContent = clock((now() - t) / 1000);
    });
  }

  function textNode(lines) {
    var div = document.createElement("div");
    lines.forEach(function (line, i) {
      if (i > 0) div.appendChild(document.createElement("br"));
      div.appendChild(document.createTextNode(line));
    });
    return div;
  }

  function store(kind) {
    try { return window[kind]; } catch (e) { return null; } // private mode may refuse
  }
  function readJSON(kind, key, fallback) {
    var s = store(kind);
    try { var v = s ? JSON.parse(s.getItem(key) || "null") : null; return v === null ? fallback : v; }
    catch (e) { return fallback; }
  }
  function writeJSON(kind, key, value) {
    var s = store(kind);
    try { if (s) s.setItem(key, JSON.stringify(value)); } catch (e) { /* full or refused */ }
  }

  /* ---- the live events (one stream per page) ---------------------------------------- */
  var handlers = {};
  var stateListeners = [];
  var liveState = "connecting";
  function on(kind, fn) { (handlers[kind] = handlers[kind] || []).push(fn); }
  function onState(fn) { stateListeners.push(fn); fn(liveState); }
  function setState(s) {
    liveState = s;
    document.body.dataset.live = s;
    stateListeners.forEach(function (fn) { fn(s); });
  }
  function openEvents() {
    if (document.body.dataset.events !== "live" || !window.EventSource) return null;
    var es = new EventSource("/api/events");
    es.addEventListener("open", function () { setState("live"); });
    es.addEventListener("error", function () { setState("reconnecting"); });
    es.addEventListener("session.ended", function () { window.location.href = "/login"; });
    ["incident.new", "incident.update"].forEach(function (kind) {
      es.addEventListener(kind, function (e) {
        var data = null;
        try { data = JSON.parse(e.data); } catch (err) { return; }
        (handlers[kind] || []).forEach(function (fn) {
          try { fn(data); } catch (err) { if (window.console) console.warn(err); }
        });
      });
    });
    return es;
  }
  function showState(el) {
    if (!el) return;
    onState(function (s) {
      el.dataset.state = s;
      el.textContent = s === "live" ? _("live") : s === "reconnecting" ? _("reconnecting…") : _("connecting…");
    });
  }

  /* ---- alerts: sound, vibration, system notification --------------------------------- */
  var PREFS_KEY = "raksha.alerts";
  var prefs = readJSON("localStorage", PREFS_KEY, {});
  ["sound", "vibrate"].forEach(function (k) { if (typeof prefs[k] !== "boolean") prefs[k] = true; });
  if (typeof prefs.notify !== "boolean") prefs.notify = false;
  function savePrefs() { writeJSON("localStorage", PREFS_KEY, prefs); }

  var audio = null;
  /* Browsers let a page make sound only after the person has touched it: the first tap or
     key press anywhere opens the audio. */
  function unlockAudio() {
    if (!audio) {
      var AC = window.AudioContext || window.webkitAudioContext;
      if (!AC) return;
      try { audio = new AC(); } catch (e) { audio = null; return; }
    }
    if (audio.state === "suspended" && audio.resume) audio.resume().catch(function () {});
  }
  document.addEventListener("pointerdown", unlockAudio, true);
  document.addEventListener("keydown", unlockAudio, true);
  function soundReady() { return !!audio && audio.state === "running"; }

  /* `times` short tones, high-low, no audio file. */
  function beep(times) {
    if (!soundReady()) return false;
    var t0 = audio.currentTime + 0.02;
    for (var i = 0; i < (times || 2); i++) {
      var osc = audio.createOscillator(), gain = audio.createGain();
      var at = t0 + i * 0.22;
      osc.type = "square";
      osc.frequency.value = i % 2 ? 660 : 880;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.25, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.16);
      osc.connect(gain).connect(audio.destination);
      osc.start(at);
      osc.stop(at + 0.18);
    }
    return true;
  }

  function buzz(pattern) {
    if (!navigator.vibrate) return false;
    // Chrome refuses (with a console complaint) before the person has touched the page.
    if (navigator.userActivation && !navigator.userActivation.hasBeenActive) return false;
    try { return navigator.vibrate(pattern); } catch (e) { return false; }
  }

  var worker = null;
  /* A notification through a service worker where the browser has one (Android shows only
     those), else from the page. */
  function registerWorker() {
    if (worker || !("serviceWorker" in navigator) || !window.isSecureContext) return;
    worker = navigator.serviceWorker.register("/static/notify-sw.js", { scope: "/static/" })
      .catch(function () { return null; });
  }
  /* Web Push, when the server offers it (alerts.push): the browser is told of a new or
     escalated incident even with no Raksha tab open. R.push says how it stands. */
  R.push = "off";
  function keyBytes(b64) {
    var s = (b64 + "===".slice((b64.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(s), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }
  function subscribePush() {
    var meta = document.querySelector('meta[name="raksha-push-key"]');
    if (!meta) { R.push = "not offered"; return; }  // alerts.push is not configured
    if (!worker || !("PushManager" in window)) { R.push = "unsupported"; return; }
    Promise.resolve({ public_key: meta.content })
      .then(function (k) {
        return worker.then(function (reg) {
          if (!reg || !reg.pushManager) { R.push = "unsupported"; return null; }
          return reg.pushManager.getSubscription().then(function (sub) {
            return sub || reg.pushManager.subscribe({
              userVisibleOnly: true, applicationServerKey: keyBytes(k.public_key) });
          }).then(function (sub) {
            return fetch("/api/push/subscriptions", {
              method: "POST", credentials: "same-origin",
              headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
              body: JSON.stringify(sub.toJSON()) });
          }).then(function (r) { R.push = r.ok ? "on" : "refused"; });
        });
      })
      .catch(function () { R.push = "unavailable"; });
  }
  function unsubscribePush() {
    if (!worker) return;
    worker.then(function (reg) {
      return reg && reg.pushManager ? reg.pushManager.getSubscription() : null;
    }).then(function (sub) {
      if (!sub) return;
      fetch("/api/push/subscriptions/delete", {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
        body: JSON.stringify({ endpoint: sub.endpoint }) });
      return sub.unsubscribe();
    }).then(function () { R.push = "off"; }).catch(function () {});
  }

  function notify(title, body, tag, url) {
    if (!("Notification" in window) || Notification.permission !== "granted") return false;
    var options = { body: body, tag: tag || undefined, renotify: !!tag, requireInteraction: true,
      icon: "/static/favicon.svg", data: { url: url || window.location.pathname } };
    function fromPage() {
      try {
        var n = new Notification(title, options);
        n.onclick = function () { window.focus(); if (url) window.location.href = url; n.close(); };
      } catch (e) { /* a phone browser without a worker */ }
    }
    if (worker) {
      worker.then(function (reg) {
        if (reg && reg.showNotification) return reg.showNotification(title, options);
        fromPage();
      }).catch(fromPage);
    } else {
      fromPage();
    }
    return true;
  }

  /* Sound, vibration and a notification, each as the person chose; the newest few are kept
     in Raksha.alerted (to see what alerted, and for the tests). */
  var alerted = [];
  function raise(title, body, opts) {
    opts = opts || {};
    alerted.push(title);
    if (alerted.length > 20) alerted.shift();
    if (prefs.sound) beep(opts.beeps || 2);
    if (prefs.vibrate) buzz(opts.vibrate || [250, 120, 250]);
    if (prefs.notify) notify(title, body, opts.tag, opts.url);
  }

  function describe(d) {
    var parts = [];
    if (d.origin === "sos") parts.push("SOS");
    if (d.priority === "high") parts.push(_("high priority"));
    parts.push(d.place || d.hotspot_id || d.camera_id || "");
    parts.push(_("station %(station)s", { station: d.station_id }));
    var c = countdown(d.deadline_at, d.deadline_kind);
    if (c) parts.push(c.text);
    return parts.filter(Boolean).join(" · ");
  }

  /* Escalation levels known on this page, to tell an escalation from another change. */
  var levels = {};
  function seedLevels(root) {
    root.querySelectorAll("[data-escalation]").forEach(function (el) {
      var id = el.dataset.id || el.dataset.incidentId;
      var n = parseInt(el.dataset.escalation, 10) || 0;
      if (id && !(levels[id] > n)) levels[id] = n;
    });
  }

  function alerts() {
    if (document.body.dataset.events !== "live") return;
    seedLevels(document);
    on("incident.new", function (d) {
      levels[d.id] = d.escalation_level || 0;
      raise(_("New incident %(id)s", { id: d.id.slice(0, 8) }), describe(d),
        { tag: "incident-" + d.id, url: "/incidents/" + d.id, beeps: d.priority === "high" ? 3 : 2 });
    });
    on("incident.update", function (d) {
      var before = levels[d.id] || 0, n = d.escalation_level || 0;
      levels[d.id] = n;
      if (n > before) {
        raise(_("Incident %(id)s escalated ×%(n)s", { id: d.id.slice(0, 8), n: n }), describe(d),
          { tag: "incident-" + d.id, url: "/incidents/" + d.id, beeps: 3, vibrate: [400, 150, 400, 150, 400] });
      }
    });
    prefsPanel();
  }

  /* ---- face watchlist matches waiting ---------------------------------------------- */
  /* For the officers who decide watchlist matches (their menu has the page): how many
     matches of their stations wait, on the menu link, asked every 15 s. One more than before
     alerts like an incident, saying only that a match waits (no name, no face). */
  var WATCHLIST_EVERY_MS = 15000;
  function watchlistBadge() {
    var link = document.querySelector('.main-nav a[href="/watchlist"]');
    if (!link || !window.fetch) return;
    var badge = document.createElement("span");
    badge.className = "badge state-new";
    badge.id = "watchlist-pending";
    badge.hidden = true;
    link.appendChild(document.createTextNode(" "));
    link.appendChild(badge);
    var known = null;
    function load() {
      fetch("/api/watchlist/pending", { credentials: "same-origin",
        headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (d) {
          if (!d || typeof d.pending !== "number") return;
          var n = d.pending;
          var text = ngettext("%(n)s watchlist match waits for a decision",
            "%(n)s watchlist matches wait for a decision", n, { n: n });
          badge.textContent = String(n);
          badge.hidden = n === 0;
          badge.title = text;
          if (known !== null && n > known) {
            raise(_("Watchlist match to decide"), text,
              { tag: "watchlist", url: "/watchlist", beeps: 2 });
          }
          known = n;
        })
        .catch(function () { /* offline: the next round tries again */ });
    }
    load();
    setInterval(load, WATCHLIST_EVERY_MS);
  }

  function prefsPanel() {
    var sound = document.getElementById("pref-sound");
    if (!sound) return;
    var vibrate = document.getElementById("pref-vibrate");
    var notifyBox = document.getElementById("pref-notify");
    var state = document.getElementById("notify-state");
    var supported = "Notification" in window;
    function show() {
      sound.checked = prefs.sound;
      vibrate.checked = prefs.vibrate;
      vibrate.disabled = !navigator.vibrate;
      notifyBox.checked = prefs.notify && supported && Notification.permission === "granted";
      notifyBox.disabled = !supported;
      state.textContent = !supported ? _("This browser shows no system notifications.")
        : Notification.permission === "denied" ? _("Notifications are blocked: allow them for this site in the browser's settings.")
        : notifyBox.checked ? _("Shown also while this tab is in the background (keep it open).")
        : "";
    }
    sound.addEventListener("change", function () { prefs.sound = sound.checked; savePrefs(); unlockAudio(); });
    vibrate.addEventListener("change", function () { prefs.vibrate = vibrate.checked; savePrefs(); });
    notifyBox.addEventListener("change", function () {
      if (!notifyBox.checked) {
        prefs.notify = false; savePrefs(); unsubscribePush(); show(); return;
      }
      if (!supported) { show(); return; }
      var asked = Notification.permission === "granted" ? Promise.resolve("granted")
        : Promise.resolve(Notification.requestPermission());
      asked.then(function (p) {
        prefs.notify = p === "granted";
        if (prefs.notify) { registerWorker(); subscribePush(); }
        savePrefs();
        show();
      });
    });
    document.getElementById("alert-test").addEventListener("click", function () {
      unlockAudio();
      setTimeout(function () {
        raise(_("Raksha test alert"), _("This is how a new incident will alert you."), { tag: "raksha-test" });
      }, 50);
    });
    if (prefs.notify && supported && Notification.permission === "granted") {
      registerWorker();
      subscribePush();
    }
    show();
  }

  /* ---- the live incident list ---------------------------------------------------- */
  function liveList() {
    if (!document.querySelector("[data-live-list]")) return;
    var KEY = "raksha.unseen";
    var baseTitle = document.title;
    var unseen = readJSON("sessionStorage", KEY, {}) || {};
    var banner = document.getElementById("new-banner");
    var count = document.getElementById("new-count");

    function save() { writeJSON("sessionStorage", KEY, unseen); }
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
    showState(document.getElementById("live"));
    on("incident.new", function (d) { unseen[d.id] = 1; save(); refresh(); });
    on("incident.update", function () { refresh(); });
    document.body.addEventListener("htmx:afterSwap", function () {
      mark();
      localTimes(document);
      seedLevels(document);
      tick();
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

  /* ---- the list's filters and keyboard ------------------------------------------------ */
  /* The filter form sends the time zone the page shows times in (the deployment's, else the
     browser's), so "from" and "to" are days as the list shows them. */
  function localZone() {
    var zone = ZONE;
    if (!zone) {
      try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
    }
    document.querySelectorAll("input[data-local-zone]").forEach(function (el) {
      if (!el.value && zone) el.value = zone;
    });
  }

  /* j / k choose the next / previous incident, Enter opens it, / goes to the search box,
     ? shows the shortcuts; none of them while the person types in a field. */
  function listKeys() {
    if (!document.querySelector("[data-keys=list]")) return;
    var help = document.getElementById("shortcuts");
    var search = document.getElementById("incident-search");
    var selected = null;

    function rows() {
      return Array.prototype.slice.call(document.querySelectorAll("#incident-rows tr[data-id]"));
    }
    function indexOf(list, id) {
      for (var i = 0; i < list.length; i++) if (list[i].dataset.id === id) return i;
      return -1;
    }
    function show() {
      rows().forEach(function (tr) {
        var on = tr.dataset.id === selected;
        tr.classList.toggle("selected", on);
        if (on) tr.setAttribute("aria-selected", "true");
        else tr.removeAttribute("aria-selected");
      });
    }
    function move(step) {
      var list = rows();
      if (!list.length) return;
      var i = indexOf(list, selected);
      i = i < 0 ? (step > 0 ? 0 : list.length - 1) : Math.min(list.length - 1, Math.max(0, i + step));
      selected = list[i].dataset.id;
      show();
      if (list[i].scrollIntoView) list[i].scrollIntoView({ block: "nearest" });
    }
    function open() {
      var list = rows(), i = indexOf(list, selected);
      var a = i < 0 ? null : list[i].querySelector("a.open-incident");
      if (!a) return false;
      a.click();  // as a click: the row's "new" mark goes too
      return true;
    }
    function typing(el) {
      if (!el || !el.tagName) return false;
      var tag = el.tagName.toLowerCase();
      return tag === "input" || tag === "textarea" || tag === "select" || el.isContentEditable;
    }
    function toggleHelp(on) {
      if (!help) return;
      help.hidden = on === undefined ? !help.hidden : !on;
      if (!help.hidden) {
        var close = document.getElementById("shortcuts-close");
        if (close) close.focus();
      }
    }
    document.addEventListener("keydown", function (e) {
      if (e.defaultPrevented || e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
      if (e.key === "Escape") {
        if (help && !help.hidden) { toggleHelp(false); e.preventDefault(); }
        else if (search && document.activeElement === search) search.blur();
        return;
      }
      if (typing(e.target)) return;
      switch (e.key) {
        case "j": move(1); break;
        case "k": move(-1); break;
        case "Enter":
          // A focused link or button keeps its own Enter.
          if (e.target.closest && e.target.closest("a, button, summary")) return;
          if (!open()) return;
          break;
        case "/":
          if (!search) return;
          search.focus();
          search.select();
          break;
        case "?": toggleHelp(); break;
        default: return;
      }
      e.preventDefault();
    });
    document.body.addEventListener("htmx:afterSwap", show);
    var opener = document.getElementById("shortcuts-open");
    if (opener) opener.addEventListener("click", function () { toggleHelp(); });
    var closer = document.getElementById("shortcuts-close");
    if (closer) closer.addEventListener("click", function () { toggleHelp(false); });
    R.selectedIncident = function () { return selected; };
  }

  /* Show what an event says about an incident in `box` (its clock and marks). */
  function applySummary(box, d) {
    var cd = box.querySelector("[data-countdown]");
    if (cd) {
      cd.dataset.deadline = d.deadline_at || "";
      cd.dataset.kind = d.deadline_kind || "";
    }
    var esc = box.querySelector("[data-escalated]");
    if (esc) {
      var n = d.escalation_level || 0;
      esc.dataset.escalated = String(n);
      esc.textContent = _("escalated ×%(n)s", { n: n });
      esc.hidden = n <= 0;
    }
    var sos = box.querySelector('[data-mark="sos"]');
    if (sos) sos.hidden = d.origin !== "sos";
    var high = box.querySelector('[data-mark="high"]');
    if (high) high.hidden = d.priority !== "high";
    tick();
  }

  /* ---- the incident page: live clock and marks, changes by others, nearest units ------- */
  function incidentPage() {
    var head = document.getElementById("incident");
    if (!head) return;
    var id = head.dataset.incidentId;
    var version = parseInt(head.dataset.version, 10);
    var banner = document.getElementById("changed-banner");
    var select = document.querySelector("select#unit[data-suggest]");
    on("incident.update", function (d) {
      if (d.id !== id) return;
      applySummary(head, d);
      if (d.version > version) banner.hidden = false;
      if (select) loadUnits();
    });

    function loadUnits() {
      if (!select || !window.fetch) return;
      fetch(select.dataset.suggest, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (data) {
          if (!data || !data.units || !data.units.length) return;
          var chosen = select.value;
          var keep = [];
          var seen = {};
          data.units.forEach(function (s) {
            var u = s.unit;
            seen[u.id] = true;
            keep.push([u.id, u.id + (u.kind ? " (" + u.kind + ")" : "") + " · " + metres(s.distance_m) +
              " · " + (s.live ? _("live") : _("base"))]);
          });
          Array.prototype.forEach.call(select.options, function (o) {
            if (!seen[o.value]) keep.push([o.value, o.textContent]);
          });
          while (select.firstChild) select.removeChild(select.firstChild);
          keep.forEach(function (k) {
            var o = document.createElement("option");
            o.value = k[0];
            o.textContent = k[1];
            select.appendChild(o);
          });
          select.value = seen[chosen] || keep.some(function (k) { return k[0] === chosen; }) ? chosen : keep[0][0];
        })
        .catch(function () { /* offline a moment: the next round tries again */ });
    }
    if (select) {
      loadUnits();
      setInterval(loadUnits, 15000);
    }
  }

  R._ = _;
  R.ngettext = ngettext;
  R.now = now;
  R.parseTime = parseTime;
  R.showTime = showTime;
  R.clock = clock;
  R.countdown = countdown;
  R.metres = metres;
  R.textNode = textNode;
  R.on = on;
  R.onState = onState;
  R.showState = showState;
  R.beep = beep;
  R.buzz = buzz;
  R.notify = notify;
  R.unlockAudio = unlockAudio;
  R.soundReady = soundReady;
  R.registerWorker = registerWorker;
  R.STATES = STATES;
  R.alerted = alerted;
  R.readJSON = readJSON;
  R.writeJSON = writeJSON;

  localTimes(document);
  tick();
  setInterval(tick, 1000);
  alerts();
  watchlistBadge();
  liveList();
  localZone();
  listKeys();
  incidentPage();
  // The map's script (after this one) adds its handlers before the stream's first event.
  setTimeout(openEvents, 0);
})();
