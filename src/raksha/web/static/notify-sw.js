/* Raksha: a service worker for system notifications (no caching): the page's own (a phone
   browser shows notifications only through one) and Web Push notices from the server
   (alerts.push), which arrive with no Raksha tab open. A notice carries no evidence; its tag
   is the alert id, so a repeat replaces it. A click opens or focuses the page it names. */
"use strict";
self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (e) { e.waitUntil(self.clients.claim()); });
self.addEventListener("push", function (e) {
  var d = {};
  try { d = e.data ? e.data.json() : {}; } catch (err) { d = {}; }
  var url = typeof d.url === "string" ? d.url : "/incidents";
  e.waitUntil(self.registration.showNotification(d.title || "Raksha", {
    body: d.body || "", tag: d.tag || "raksha", renotify: true, requireInteraction: true,
    icon: "/static/favicon.svg", data: { url: url, incident_id: d.incident_id || null }
  }));
});
self.addEventListener("notificationclick", function (e) {
  e.notification.close();
  var url = (e.notification.data && e.notification.data.url) || "/incidents";
  if (url.charAt(0) !== "/" || url.charAt(1) === "/") url = "/incidents";
  e.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (list) {
    for (var i = 0; i < list.length; i++) {
      var c = list[i];
      if (new URL(c.url).pathname === url && "focus" in c) return c.focus();
    }
    return self.clients.openWindow ? self.clients.openWindow(url) : null;
  }));
});
