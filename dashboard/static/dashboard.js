// Keeps the page live without reloading: server-sent events from the worker's Redis
// channels trigger a fetch of the view's fragment, which replaces the view. Sorting,
// the level filter and the window links fetch the fragment the same way.
"use strict";
(function () {
  var view = document.getElementById("view");
  var busy = false, again = false, timer = null;
  var state = document.body;

  function fragmentUrl() {
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    return url.toString();
  }
  function setLive(ok) {
    var mark = document.getElementById("live-state");
    if (mark) mark.classList.toggle("off", !ok);
  }
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(fragmentUrl(), { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.text();
    }).then(function (html) {
      view.innerHTML = html;
      window.drawCharts(view);
      state.setAttribute("data-refreshed", String(Date.now()));
      setLive(true);
    }).catch(function () { setLive(false); }).finally(function () {
      busy = false;
      if (again) { again = false; schedule(); }
    });
  }
  function schedule() {
    if (timer) return;
    timer = setTimeout(function () { timer = null; refresh(); }, 300);
  }
  function go(href) {
    history.replaceState(null, "", href);
    refresh();
  }
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a[data-nav]");
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    go(a.getAttribute("href"));
  });
  document.addEventListener("change", function (e) {
    if (e.target.id !== "level-filter") return;
    var url = new URL(window.location.href);
    if (e.target.value === "all") url.searchParams.delete("level");
    else url.searchParams.set("level", e.target.value);
    go(url.pathname + url.search);
  });
  window.drawCharts(view);
  if (document.querySelector('[data-view="error"]')) setTimeout(function () { location.reload(); }, 5000);
  if (window.EventSource) {
    var source = new EventSource("/api/v1/events");
    source.addEventListener("hello", function () { setLive(true); state.setAttribute("data-live", "1"); });
    source.addEventListener("update", schedule);
    source.addEventListener("alert", schedule);
    source.onerror = function () { setLive(false); };
  }
})();
