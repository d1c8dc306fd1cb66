// The timeline's zoom (wheel, buttons), scroll (drag, slider) and tooltips (hover). #tl-view
// holds everything in time units (data-unit-ms milliseconds each), scaled to the drawing's width.
(function () {
  "use strict";
  var root = document.documentElement;
  window.addEventListener("error", function (e) {
    root.setAttribute("data-js-error", String(e.message));
  });
  var svg = document.getElementById("tl-svg");
  if (!svg) {
    root.setAttribute("data-ready", "0");
    return;
  }
  var NS = "http://www.w3.org/2000/svg";
  var data = JSON.parse(document.getElementById("tl-data").textContent);
  var view = document.getElementById("tl-view");
  var axis = document.getElementById("tl-axis");
  var pan = document.getElementById("tl-pan");
  var range = document.getElementById("tl-range");
  var tip = document.getElementById("tl-tip");
  var W = +svg.getAttribute("width");
  var H = +svg.getAttribute("height");
  var end = +svg.getAttribute("data-end");
  var unitMs = +svg.getAttribute("data-unit-ms");
  var minSpan = Math.min(end, 0.001 / unitMs);
  var thin = view.querySelectorAll("rect[data-w]");
  var t0 = 0, span = end, lastScale = W / end;

  function num(x) { return String(Math.round(x * 1000) / 1000); }
  function niceStep(s, n) {
    var raw = Math.max(s / n, 1e-9), mag = Math.pow(10, Math.floor(Math.log10(raw)));
    var m = [1, 2, 5, 10];
    for (var i = 0; i < m.length; i++) if (m[i] * mag >= raw) return m[i] * mag;
    return 10 * mag;
  }
  var S = data.strs, OUTCOMES = ["ok", "fail", "info"];
  // RedirectKind::ALL's order.
  var HOPS = ["moved", "ask", "tryagain", "clusterdown",
    "mgrt-one", "wrapper-moved", "wrapper-retry", "wrapper-error"];
  function str(i) { return i >= 0 ? S[i] : null; }
  function secs(ns) { return (ns / 1e9).toFixed(3) + " s"; }
  // An op's tooltip from its row (see op_row in timeline.rs): what it did, when, where, and
  // its invocation and completion events as the history holds them.
  function opText(r) {
    var f = S[r[2]], key = str(r[3]), outcome = OUTCOMES[r[5]], node = str(r[9]);
    var phase = str(r[11]), error = str(r[13]);
    var hops = r[12].map(function (h) {
      return { kind: HOPS[h[0]], slot: h[1], from: S[h[2]], to: S[h[3]] };
    });
    var what = "process " + r[1] + " " + f;
    if (key !== null) what += " " + JSON.stringify(key);
    if (r[4] !== null) what += " " + JSON.stringify(r[4]);
    what += " -> " + outcome;
    if (outcome === "ok" && JSON.stringify(r[6]) !== JSON.stringify(r[4])) what += " " + JSON.stringify(r[6]);
    var lines = [what, "line " + r[0] + ", " + secs(r[7]) + " .. " +
      (r[8] === null ? "never completed" : secs(r[8]) + " (" + num((r[8] - r[7]) / 1e6) + " ms)")];
    if (node !== null) lines.push("node " + node);
    if (phase !== null) lines.push(phase);
    hops.forEach(function (h) {
      lines.push("hop " + h.kind + " slot " + h.slot + ": " + h.from + " -> " + h.to);
    });
    if (error !== null) lines.push("error: " + error);
    var invoke = { type: "invoke", process: r[1], f: f };
    if (key !== null) invoke.key = key;
    invoke.value = r[4];
    invoke.time = r[7];
    lines.push("invoke: " + JSON.stringify(invoke));
    if (r[8] !== null) {
      var done = { type: outcome, process: r[1], f: f };
      if (key !== null) done.key = key;
      done.value = r[6];
      done.time = r[8];
      if (node !== null) done.node = node;
      if (r[10] >= 0) done.slot = r[10];
      if (hops.length) done.redirects = hops;
      if (error !== null) done.error = error;
      lines.push("complete: " + JSON.stringify(done));
    }
    return lines.join("\n");
  }
  function el(name, attrs, text) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (text) e.textContent = text;
    return e;
  }
  function drawAxis(s) {
    while (axis.firstChild) axis.removeChild(axis.firstChild);
    var stepMs = niceStep(span * unitMs, W / 110), step = stepMs / unitMs;
    for (var t = Math.ceil(t0 / step) * step; t <= t0 + span + 1e-9; t += step) {
      var x = num((t - t0) * s);
      axis.appendChild(el("line", { x1: x, x2: x, y1: 22, y2: H, "class": "grid" }));
      var label = stepMs >= 1000 ? num(t * unitMs / 1000) + " s" : num(t * unitMs) + " ms";
      if (+x >= 12) axis.appendChild(el("text", { x: x, y: 14 }, label));
    }
  }
  function apply() {
    span = Math.max(Math.min(span, end), minSpan);
    t0 = Math.min(Math.max(t0, 0), end - span);
    var s = W / span;
    view.setAttribute("transform", "translate(" + (-t0 * s) + ",0) scale(" + s + ",1)");
    if (s !== lastScale) {
      var minW = 1 / s;
      for (var i = 0; i < thin.length; i++) {
        thin[i].setAttribute("width", Math.max(+thin[i].getAttribute("data-w"), minW));
      }
      lastScale = s;
    }
    drawAxis(s);
    pan.value = end > span ? Math.round(1000 * t0 / (end - span)) : 0;
    range.textContent = num(t0 * unitMs / 1000) + " .. " + num((t0 + span) * unitMs / 1000) + " s";
  }
  function zoomAt(x, factor) {
    var t = t0 + x / W * span;
    span = Math.max(Math.min(span * factor, end), minSpan);
    t0 = t - x / W * span;
    apply();
  }
  svg.addEventListener("wheel", function (e) {
    e.preventDefault();
    zoomAt(e.clientX - svg.getBoundingClientRect().left, e.deltaY > 0 ? 1.25 : 0.8);
  }, { passive: false });
  var drag = null;
  svg.addEventListener("mousedown", function (e) {
    drag = { x: e.clientX, t0: t0 };
    e.preventDefault();
  });
  window.addEventListener("mousemove", function (e) {
    if (!drag) return;
    t0 = drag.t0 - (e.clientX - drag.x) / W * span;
    apply();
  });
  window.addEventListener("mouseup", function () { drag = null; });
  pan.addEventListener("input", function () {
    t0 = (end - span) * pan.value / 1000;
    apply();
  });
  document.getElementById("tl-in").addEventListener("click", function () { zoomAt(W / 2, 0.5); });
  document.getElementById("tl-out").addEventListener("click", function () { zoomAt(W / 2, 2); });
  document.getElementById("tl-fit").addEventListener("click", function () {
    t0 = 0;
    span = end;
    apply();
  });
  svg.addEventListener("mousemove", function (e) {
    var target = e.target, text;
    if (target.hasAttribute && target.hasAttribute("data-i")) {
      text = opText(data.ops[+target.getAttribute("data-i")]);
    } else if (target.hasAttribute && target.hasAttribute("data-n")) {
      text = data.nem[+target.getAttribute("data-n")];
    }
    if (text === undefined || drag) {
      tip.hidden = true;
      return;
    }
    tip.textContent = text;
    tip.hidden = false;
    var left = Math.min(e.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    var top = e.clientY + 14;
    if (top + tip.offsetHeight > window.innerHeight) top = Math.max(0, e.clientY - tip.offsetHeight - 8);
    tip.style.left = Math.max(0, left) + "px";
    tip.style.top = top + "px";
  });
  svg.addEventListener("mouseleave", function () { tip.hidden = true; });
  root.setAttribute("data-ready", String(Math.round(performance.now())));
})();
