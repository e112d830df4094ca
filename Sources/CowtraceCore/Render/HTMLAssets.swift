/// The style and script inlined into every `--html` page (nothing is loaded from elsewhere).
/// Plain ES5-level JavaScript and CSS, so Chromium and Firefox show the same page.
enum HTMLAssets {
    static let style = #"""
    body { font: 14px/1.4 system-ui, sans-serif; margin: 1em 2em; color: #222; background: #fff; }
    h1 { font-size: 1.4em; margin: 0.2em 0; } h2 { font-size: 1.15em; margin: 1.2em 0 0.4em; border-bottom: 1px solid #ccc; }
    h3 { font-size: 1em; margin: 0.8em 0 0.2em; font-weight: 600; }
    pre { font: 12px/1.35 ui-monospace, monospace; background: #f6f6f6; padding: 0.6em; overflow-x: auto; white-space: pre; }
    .headline { font-size: 1.1em; }
    .controls { margin: 0.4em 0; } .controls label { margin-right: 1em; }
    .hint { color: #666; font-size: 0.9em; margin: 0.3em 0; }
    .flame { position: relative; width: 100%; overflow: hidden; border: 1px solid #ddd; background: #fafafa; }
    .flame .fn { position: absolute; height: 17px; box-sizing: border-box; border: 1px solid rgba(255,255,255,0.8);
      font: 11px/15px ui-monospace, monospace; padding: 0 3px; overflow: hidden; white-space: nowrap; text-overflow: ellipsis; cursor: pointer; }
    .flame .fn:hover { border-color: #000; }
    #flame-path { font-size: 0.9em; color: #444; }
    .legend .sw { display: inline-block; width: 0.9em; height: 0.9em; vertical-align: middle; margin: 0 0.2em 0 0.8em; border: 1px solid #999; }
    .s0 { background: #c8d6e5; } .s1 { background: #e67e22; } .s2 { background: #c0392b; } .s3 { background: #27ae60; } .s4 { background: #7f8c8d; }
    .map canvas { border: 1px solid #ccc; image-rendering: pixelated; max-width: 100%; }
    .map .axis { font-size: 0.8em; color: #666; display: flex; justify-content: space-between; max-width: 800px; }
    table { border-collapse: collapse; width: 100%; font-size: 12px; }
    th, td { border-bottom: 1px solid #e3e3e3; padding: 2px 6px; text-align: left; vertical-align: top; }
    th { cursor: pointer; background: #f0f0f0; user-select: none; } th.asc::after { content: " \25B2"; } th.desc::after { content: " \25BC"; }
    td.mono { font-family: ui-monospace, monospace; }
    tr.split-row:hover { background: #fff6d5; }
    .pager { margin: 0.5em 0; }
    @media print {
      body { margin: 0; font-size: 10pt; }
      .controls, .pager, .hint, button, select, input { display: none !important; }
      .flame, .flame .fn, .legend .sw, canvas { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
      section { break-inside: avoid-page; }
      pre { white-space: pre-wrap; background: none; border: 1px solid #ccc; }
      tr { break-inside: avoid; }
    }
    """#

    static let script = #"""
    (function () {
      "use strict";
      var D = JSON.parse(document.getElementById("cowtrace-data").textContent);
      var C = {};
      D.columns.forEach(function (c, i) { C[c] = i; });
      var PAGE = 4096, ROWS_PER_PAGE = 100, MAX_NODES = 4000;

      function $(id) { return document.getElementById(id); }
      function bytes(pages) {
        var b = pages * PAGE, units = ["KiB", "MiB", "GiB", "TiB"], u = -1;
        if (b < 1024) return b + " B";
        do { b /= 1024; u++; } while (b >= 1024 && u < units.length - 1);
        return (b >= 10 || b === Math.round(b) ? Math.round(b) : b.toFixed(1)) + " " + units[u];
      }
      function procKey(r) { return r[C.set] + ":" + r[C.writer]; }
      function procName(key) { var p = D.processes[key]; return p ? p.name : key; }
      function frameName(i) { return D.frames[i][0]; }
      function frameText(i) {
        var f = D.frames[i];
        return f[0] + (f[1] ? "  " + f[1] + (f[2] !== null ? ":" + f[2] : "") : "") + (f[3] && f[3] !== f[1] ? "  (" + f[3] + ")" : "");
      }
      function stackOf(r) { return D.stacks[r[C.stack]]; }
      function leaf(r) { var s = stackOf(r); return frameName(s[s.length - 1]); }
      function backtrace(r) {
        var s = stackOf(r), out = [];
        for (var k = s.length - 1, n = 0; k >= 0; k--, n++) out.push("#" + n + " " + frameText(s[k]));
        return out.join("\n");
      }
      function hoverText(r) {
        var head = r[C.instruction] ? r[C.ip] + "  " + r[C.instruction]
          : r[C.cause] + (r[C.detail] ? " (" + r[C.detail] + ")" : "");
        return head + "\npage " + r[C.page] + " " + r[C.region] + " (" + r[C.kind] + ")\n" + backtrace(r);
      }
      function hash(s) { var h = 0; for (var i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0; return Math.abs(h); }

      // ---- flame graph (icicle: outermost frame on top) ----
      var flame = $("flame"), flameSelect = $("flame-process"), zoomRoot = null, treeRoot = null;
      function newNode(name, frame, parent) { return { name: name, frame: frame, kids: {}, order: [], a: 0, b: 0, instr: {}, places: {}, parent: parent }; }
      function count(n, r) { if (r[C.set] === 1) n.b++; else n.a++; }
      function buildTree(filter) {
        var root = newNode(D.diff ? "both runs" : (filter ? procName(filter) : "all processes"), -1, null);
        D.rows.forEach(function (r) {
          var key = procKey(r);
          if (filter && key !== filter) return;
          var node = root, path = stackOf(r);
          count(node, r);
          if (!filter && !D.diff) path = ["p" + key].concat(path);
          for (var d = 0; d < path.length; d++) {
            // Frames merge by function name (as in folded stacks); their source lines are listed on hover.
            var f = path[d], id = typeof f === "string" ? f : "f" + frameName(f), child = node.kids[id];
            if (!child) {
              child = typeof f === "string" ? newNode(procName(f.slice(1)), -1, node) : newNode(frameName(f), f, node);
              node.kids[id] = child;
              node.order.push(child);
            }
            node = child;
            count(node, r);
            if (typeof f !== "string") node.places[f] = (node.places[f] || 0) + 1;
          }
          if (r[C.instruction]) { var ins = r[C.ip] + "  " + r[C.instruction]; node.instr[ins] = (node.instr[ins] || 0) + 1; }
        });
        return root;
      }
      function weight(n) { return n.a + n.b; }
      function color(n) {
        if (D.diff) {
          var m = Math.max(n.a, n.b), delta = m ? (n.b - n.a) / m : 0, light = Math.round(95 - 45 * Math.abs(delta));
          return delta > 0 ? "hsl(0,85%," + light + "%)" : delta < 0 ? "hsl(215,85%," + light + "%)" : "hsl(0,0%,88%)";
        }
        if (n.frame < 0) return "hsl(265,45%,80%)";
        if (n.name.charAt(0) === "[") return "hsl(200,35%,75%)";
        var h = hash(n.name);
        return "hsl(" + (h % 55) + "," + (65 + h % 20) + "%," + (58 + h % 17) + "%)";
      }
      function nodeTitle(n, total) {
        var lines = [n.name];
        var places = Object.keys(n.places).sort(function (x, y) { return n.places[y] - n.places[x]; });
        places.slice(0, 6).forEach(function (i) {
          var f = D.frames[i];
          if (f[1]) lines.push("  " + f[1] + (f[2] !== null ? ":" + f[2] : "") + (places.length > 1 ? "  (" + n.places[i] + ")" : ""));
        });
        if (places.length > 6) lines.push("  \u2026 " + (places.length - 6) + " more lines");
        if (n.frame >= 0 && D.frames[n.frame][3]) lines.push(D.frames[n.frame][3]);
        if (D.diff) lines.push("A: " + n.a + " pages (" + bytes(n.a) + "), B: " + n.b + " pages (" + bytes(n.b) + "), change " + (n.b - n.a >= 0 ? "+" : "") + (n.b - n.a));
        else lines.push(n.a + " page" + (n.a === 1 ? "" : "s") + " copied (" + bytes(n.a) + "), " + (100 * n.a / total).toFixed(1) + "%");
        var ins = Object.keys(n.instr).sort(function (x, y) { return n.instr[y] - n.instr[x]; });
        if (ins.length) lines.push("instructions:");
        ins.slice(0, 5).forEach(function (i) { lines.push("  " + n.instr[i] + "x  " + i); });
        return lines.join("\n");
      }
      function drawFlame() {
        if (!flame) return;
        flame.textContent = "";
        var root = zoomRoot || treeRoot, total = weight(root) || 1, drawn = 0, maxDepth = 0;
        var frag = document.createDocumentFragment();
        function place(n, x, depth) {
          var w = weight(n) / total;
          if (w < 0.002 || drawn >= MAX_NODES) return;
          drawn++;
          maxDepth = Math.max(maxDepth, depth);
          var el = document.createElement("div");
          el.className = "fn";
          el.style.left = (100 * x) + "%";
          el.style.width = (100 * w) + "%";
          el.style.top = (depth * 18) + "px";
          el.style.background = color(n);
          el.textContent = n.name;
          el.title = nodeTitle(n, weight(treeRoot) || 1);
          el.addEventListener("click", function () { zoomRoot = n; drawFlame(); });
          frag.appendChild(el);
          var kids = n.order.slice().sort(function (p, q) { return weight(q) - weight(p); }), cx = x;
          kids.forEach(function (k) { place(k, cx, depth + 1); cx += weight(k) / total; });
        }
        place(root, 0, 0);
        flame.appendChild(frag);
        flame.style.height = ((maxDepth + 1) * 18 + 4) + "px";
        var path = [], p = root;
        while (p) { path.unshift(p.name); p = p.parent; }
        $("flame-path").textContent = path.join(" \u2192 ");
      }
      if (flameSelect) {
        var opt = document.createElement("option");
        opt.value = ""; opt.textContent = D.diff ? "both runs" : "all processes";
        flameSelect.appendChild(opt);
        if (!D.diff) Object.keys(D.processes).forEach(function (k) {
          var o = document.createElement("option");
          o.value = k; o.textContent = procName(k) + " (" + D.processes[k].role + ")";
          flameSelect.appendChild(o);
        });
        flameSelect.addEventListener("change", function () { treeRoot = buildTree(flameSelect.value); zoomRoot = null; drawFlame(); });
        $("flame-reset").addEventListener("click", function () { zoomRoot = null; drawFlame(); });
      }
      treeRoot = buildTree("");
      drawFlame();

      // ---- page map per mapping over time ----
      var COLORS = ["#c8d6e5", "#e67e22", "#c0392b", "#27ae60", "#7f8c8d"];
      var STATES = ["shared", "copied by the parent", "copied by a child", "reused", "dropped"];
      function drawMaps() {
        var holder = $("maps");
        if (!holder || !D.maps || !D.maps.list) return;
        // Time runs from a little before the first event (pages start shared) to the last.
        var first = D.maps.start, span = Math.max(1, D.maps.end - first), start = first - span / 50, end = D.maps.end - start, unit = D.maps.unit;
        function when(t) { return unit === "us" ? (t / 1000).toFixed(1) + " ms" : "event " + Math.round(t); }
        function xOf(t) { return Math.floor((t - start) / end * (W - 2)); }
        var W = 800;
        D.maps.list.forEach(function (m) {
          // At most 300 pixel rows: a row stands for several pages when the mapping is large.
          var n = m.pages.length, per = Math.max(1, Math.ceil(n / 300)), rows = Math.ceil(n / per);
          var rowH = rows <= 40 ? 8 : rows <= 100 ? 3 : 1, H = Math.max(rowH, rows * rowH);
          var copied = 0;
          m.events.forEach(function (e) { if (e[2] === 1 || e[2] === 2) copied++; });
          var div = document.createElement("div");
          div.className = "map";
          var h = document.createElement("h3");
          h.textContent = m.region + " \u2014 " + n + " page" + (n === 1 ? "" : "s") + " seen, " + copied + " copied (" + bytes(copied) + ")";
          div.appendChild(h);
          var canvas = document.createElement("canvas");
          canvas.width = W; canvas.height = H;
          var g = canvas.getContext("2d");
          g.fillStyle = COLORS[0];
          g.fillRect(0, 0, W, H);
          var timeline = [];
          m.events.forEach(function (e) { (timeline[e[0]] = timeline[e[0]] || []).push(e); });
          timeline.forEach(function (list, page) {
            if (!list) return;
            var y = Math.floor(page / per) * rowH;
            for (var i = 0; i < list.length; i++) {
              var x0 = xOf(list[i][1]), x1 = i + 1 < list.length ? xOf(list[i + 1][1]) : W;
              g.fillStyle = COLORS[list[i][2]];
              g.fillRect(x0, y, Math.max(2, x1 - x0), rowH);
            }
          });
          canvas.addEventListener("mousemove", function (ev) {
            var r = canvas.getBoundingClientRect(), x = (ev.clientX - r.left) * W / r.width, y = (ev.clientY - r.top) * H / r.height;
            var page = Math.min(n - 1, Math.floor(y / rowH) * per), t = start + x / (W - 2) * end, state = 0, list = timeline[page] || [];
            for (var i = 0; i < list.length && list[i][1] <= t; i++) state = list[i][2];
            $("map-hover").textContent = m.region + " page " + m.pages[page] + (per > 1 ? " (row of " + per + " pages)" : "") +
              " at " + when(t) + ": " + STATES[state];
          });
          div.appendChild(canvas);
          var axis = document.createElement("div");
          axis.className = "axis";
          axis.innerHTML = "<span>" + when(first) + "</span><span>" + when(D.maps.end) + "</span>";
          div.appendChild(axis);
          holder.appendChild(div);
        });
        if (D.maps.more) {
          var p = document.createElement("p");
          p.className = "hint";
          p.textContent = D.maps.more + " more mapping(s) not drawn.";
          holder.appendChild(p);
        }
      }
      drawMaps();

      // ---- splits table: filter, sort, page through (rows drawn only for the page shown) ----
      var body = $("split-rows"), causeSel = $("f-cause"), writerSel = $("f-writer"), fnIn = $("f-function"), srcIn = $("f-source");
      var shown = D.rows, sortKey = "seq", sortDir = 1, pageNo = 0;
      function distinct(f) { var s = {}; D.rows.forEach(function (r) { s[f(r)] = 1; }); return Object.keys(s).sort(); }
      distinct(function (r) { return r[C.cause]; }).forEach(function (c) {
        var o = document.createElement("option"); o.value = c; o.textContent = c; causeSel.appendChild(o);
      });
      distinct(procKey).forEach(function (k) {
        var o = document.createElement("option"); o.value = k; o.textContent = (D.diff ? (k.charAt(0) === "0" ? "A: " : "B: ") : "") + procName(k); writerSel.appendChild(o);
      });
      function sortValue(r, key) {
        switch (key) {
          case "function": return leaf(r);
          case "page": return r[C.page].length + r[C.page];
          default: return r[C[key]];
        }
      }
      function refilter() {
        var cause = causeSel.value, writer = writerSel.value, fn = fnIn.value.toLowerCase(), src = srcIn.value.toLowerCase();
        shown = D.rows.filter(function (r) {
          if (cause && r[C.cause] !== cause) return false;
          if (writer && procKey(r) !== writer) return false;
          if (fn && !stackOf(r).some(function (f) { return frameName(f).toLowerCase().indexOf(fn) >= 0; })) return false;
          if (src && r[C.source].toLowerCase().indexOf(src) < 0 &&
              !stackOf(r).some(function (f) { var x = D.frames[f]; return x[1] && (x[1] + ":" + x[2]).toLowerCase().indexOf(src) >= 0; })) return false;
          return true;
        });
        shown.sort(function (p, q) {
          var a = sortValue(p, sortKey), b = sortValue(q, sortKey);
          return (a < b ? -1 : a > b ? 1 : p[C.seq] - q[C.seq]) * sortDir;
        });
        pageNo = 0;
        drawRows();
      }
      function cell(tr, text, mono) { var td = document.createElement("td"); td.textContent = text; if (mono) td.className = "mono"; tr.appendChild(td); }
      function drawRows() {
        body.textContent = "";
        var pages = Math.max(1, Math.ceil(shown.length / ROWS_PER_PAGE));
        pageNo = Math.min(pageNo, pages - 1);
        var start = pageNo * ROWS_PER_PAGE, slice = shown.slice(start, start + ROWS_PER_PAGE), frag = document.createDocumentFragment();
        slice.forEach(function (r) {
          var tr = document.createElement("tr");
          tr.className = "split-row";
          tr.title = hoverText(r);
          cell(tr, r[C.seq]);
          if (D.diff) cell(tr, r[C.set] === 1 ? "B" : "A");
          cell(tr, r[C.time]);
          cell(tr, procName(procKey(r)));
          cell(tr, r[C.cause] + (r[C.detail] ? " (" + r[C.detail] + ")" : ""));
          cell(tr, leaf(r), true);
          cell(tr, r[C.source], true);
          cell(tr, r[C.page], true);
          cell(tr, r[C.region], true);
          cell(tr, r[C.instruction], true);
          frag.appendChild(tr);
        });
        body.appendChild(frag);
        $("page-info").textContent = (shown.length ? (start + 1) + "\u2013" + (start + slice.length) : "0") + " of " + shown.length +
          " split" + (shown.length === 1 ? "" : "s") + (shown.length !== D.rows.length ? " (filtered from " + D.rows.length + ")" : "") +
          ", page " + (pageNo + 1) + " of " + pages;
        $("prev").disabled = pageNo === 0;
        $("next").disabled = pageNo >= pages - 1;
      }
      [causeSel, writerSel].forEach(function (el) { el.addEventListener("change", refilter); });
      [fnIn, srcIn].forEach(function (el) { el.addEventListener("input", refilter); });
      $("prev").addEventListener("click", function () { pageNo--; drawRows(); });
      $("next").addEventListener("click", function () { pageNo++; drawRows(); });
      Array.prototype.forEach.call(document.querySelectorAll("#splits th"), function (th) {
        th.addEventListener("click", function () {
          var key = th.getAttribute("data-key");
          sortDir = key === sortKey ? -sortDir : 1;
          sortKey = key;
          Array.prototype.forEach.call(document.querySelectorAll("#splits th"), function (o) { o.className = ""; });
          th.className = sortDir > 0 ? "asc" : "desc";
          refilter();
        });
      });
      // A link can carry filters and the sort: report.html#function=dictAddRaw&cause=instruction&sort=time&desc
      (location.hash || "").replace(/^#/, "").split("&").forEach(function (part) {
        function decode(t) { try { return decodeURIComponent(t); } catch (e) { return t; } }
        var eq = part.indexOf("="), key = decode(eq < 0 ? part : part.slice(0, eq)), value = eq < 0 ? "" : decode(part.slice(eq + 1));
        if (key === "cause") causeSel.value = value;
        else if (key === "writer") writerSel.value = value;
        else if (key === "function") fnIn.value = value;
        else if (key === "source") srcIn.value = value;
        else if (key === "sort" && (C.hasOwnProperty(value) || value === "function")) sortKey = value;
        else if (key === "desc") sortDir = -1;
      });
      refilter();
    })();
    """#
}
