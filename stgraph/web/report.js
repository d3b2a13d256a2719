/* stgraph HTML report: plain SVG + vanilla JS, reads the JSON embedded in #stgraph-data.
   A frame is flagged when score >= threshold (as stgraph.metrics counts). */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("stgraph-data").textContent);
  var SVG = "http://www.w3.org/2000/svg";
  var state = { video: 0, threshold: D.threshold, frame: null, object: null };

  function $(id) { return document.getElementById(id); }
  function svg(tag, attrs, parent) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function html(tag, attrs, text, parent) {
    var e = document.createElement(tag);
    for (var k in (attrs || {})) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }
  function fmt(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) return "n/a";
    return Number(x).toPrecision(digits || 4);
  }
  function pct(x) { return (x === null || x === undefined || !isFinite(x)) ? "n/a" : (100 * x).toFixed(2); }
  function paletteColor(palette, unit) {
    unit = Math.max(0, Math.min(1, isFinite(unit) ? unit : 0));
    var pos = unit * (palette.length - 1), i = Math.floor(pos), f = pos - i;
    var a = palette[i], b = palette[Math.min(i + 1, palette.length - 1)];
    return "rgb(" + [0, 1, 2].map(function (c) { return Math.round(a[c] + f * (b[c] - a[c])); }).join(",") + ")";
  }
  function scoreColor(score) {
    var lo = D.box_range[0], hi = D.box_range[1];
    return paletteColor(D.palette, hi > lo ? (score - lo) / (hi - lo) : 0);
  }
  function video() { return D.videos[state.video]; }

  // ------------------------------------------------------------------ counts and alarm segments
  function confusion(v, thr) {
    var c = { tp: 0, fp: 0, tn: 0, fn: 0 };
    for (var i = 0; i < v.scores.length; i++) {
      var hot = v.scores[i] >= thr, bad = v.labels[i] === 1;
      if (hot && bad) c.tp++; else if (hot) c.fp++; else if (bad) c.fn++; else c.tn++;
    }
    return c;
  }
  function runs(v, test) {  // [[first index, last index]] of consecutive frames where test(i)
    var out = [], start = -1;
    for (var i = 0; i <= v.frames.length; i++) {
      var on = i < v.frames.length && test(i);
      if (on && start < 0) start = i;
      if (!on && start >= 0) { out.push([start, i - 1]); start = -1; }
    }
    return out;
  }
  function renderCounts() {
    var all = { tp: 0, fp: 0, tn: 0, fn: 0 };
    D.videos.forEach(function (v) {
      var c = confusion(v, state.threshold);
      for (var k in c) all[k] += c[k];
    });
    var mine = confusion(video(), state.threshold);
    var t = $("counts");
    t.innerHTML = "";
    var head = html("tr", {}, null, t);
    ["", "TP", "FP", "TN", "FN", "accuracy", "precision", "recall"].forEach(function (h) { html("th", {}, h, head); });
    [["all videos", all], ["video " + video().name, mine]].forEach(function (pair) {
      var c = pair[1], n = c.tp + c.fp + c.tn + c.fn, tr = html("tr", {}, null, t);
      tr.setAttribute("data-scope", pair[0] === "all videos" ? "all" : "video");
      html("th", {}, pair[0], tr);
      [c.tp, c.fp, c.tn, c.fn].forEach(function (x, k) {
        html("td", { "data-count": ["tp", "fp", "tn", "fn"][k] }, String(x), tr);
      });
      html("td", {}, n ? ((c.tp + c.tn) / n).toFixed(4) : "n/a", tr);
      html("td", {}, c.tp + c.fp ? (c.tp / (c.tp + c.fp)).toFixed(4) : "n/a", tr);
      html("td", {}, c.tp + c.fn ? (c.tp / (c.tp + c.fn)).toFixed(4) : "n/a", tr);
    });
    $("threshold-value").textContent = fmt(state.threshold, 5);
  }

  // ------------------------------------------------------------------ the curve
  function renderCurve() {
    var v = video(), box = $("curve");
    box.innerHTML = "";
    var width = Math.max(320, box.clientWidth || 900), height = 230;
    var m = { l: 52, r: 12, t: 10, b: 40 };
    var s = svg("svg", { width: width, height: height, viewBox: "0 0 " + width + " " + height, id: "curve-svg" }, box);
    var f0 = v.frames[0], f1 = v.frames[v.frames.length - 1];
    var lo = Math.min(D.score_min, state.threshold), hi = Math.max(D.score_max, state.threshold);
    if (hi <= lo) hi = lo + 1;
    var pad = 0.04 * (hi - lo); lo -= pad; hi += pad;
    function X(frame) { return m.l + (f1 > f0 ? (frame - f0) / (f1 - f0) : 0.5) * (width - m.l - m.r); }
    function Y(score) { return m.t + (1 - (score - lo) / (hi - lo)) * (height - m.t - m.b); }
    var step = v.frames.length > 1 ? (X(v.frames[1]) - X(v.frames[0])) / 2 : 2;
    // ground truth shaded
    runs(v, function (i) { return v.labels[i] === 1; }).forEach(function (r) {
      svg("rect", { x: X(v.frames[r[0]]) - step, y: m.t, width: X(v.frames[r[1]]) - X(v.frames[r[0]]) + 2 * step,
                    height: height - m.t - m.b, fill: "rgba(220,40,40,0.13)", "class": "gt" }, s);
    });
    // axes and ticks
    svg("line", { x1: m.l, y1: height - m.b, x2: width - m.r, y2: height - m.b, stroke: "#98a2b3" }, s);
    svg("line", { x1: m.l, y1: m.t, x2: m.l, y2: height - m.b, stroke: "#98a2b3" }, s);
    for (var k = 0; k <= 4; k++) {
      var val = lo + pad + k * (hi - lo - 2 * pad) / 4;
      svg("text", { x: m.l - 4, y: Y(val) + 4, "text-anchor": "end", "font-size": 10, fill: "#667085" }, s).textContent = fmt(val, 3);
      var fr = Math.round(f0 + k * (f1 - f0) / 4);
      svg("text", { x: X(fr), y: height - m.b + 13, "text-anchor": "middle", "font-size": 10, fill: "#667085" }, s).textContent = String(fr);
    }
    svg("text", { x: (m.l + width - m.r) / 2, y: height - 4, "text-anchor": "middle", "font-size": 11, fill: "#667085" }, s).textContent =
      "frame (shaded: ground-truth anomalous; red bar: alarm segments at the threshold)";
    // the curve
    var d = v.frames.map(function (f, i) { return (i ? "L" : "M") + X(f).toFixed(1) + " " + Y(v.scores[i]).toFixed(1); }).join("");
    svg("path", { d: d, fill: "none", stroke: "#1f6feb", "stroke-width": 1.4, "class": "score" }, s);
    // threshold and alarm segments
    svg("line", { x1: m.l, x2: width - m.r, y1: Y(state.threshold), y2: Y(state.threshold), stroke: "#d92d20",
                  "stroke-dasharray": "5 4", "class": "threshold" }, s);
    var alarms = runs(v, function (i) { return v.scores[i] >= state.threshold; });
    alarms.forEach(function (r) {
      svg("rect", { x: X(v.frames[r[0]]) - step, y: height - m.b + 18, width: Math.max(2, X(v.frames[r[1]]) - X(v.frames[r[0]]) + 2 * step),
                    height: 5, fill: "#d92d20", "class": "alarm" }, s);
    });
    // cursor
    if (state.frame !== null) {
      svg("line", { x1: X(state.frame), x2: X(state.frame), y1: m.t, y2: height - m.b, stroke: "#101828", "stroke-width": 1, "class": "cursor" }, s);
    }
    s.addEventListener("click", function (ev) {
      var rect = s.getBoundingClientRect(), x = (ev.clientX - rect.left) * width / rect.width;
      var frame = f0 + (x - m.l) / (width - m.l - m.r) * (f1 - f0);
      selectFrame(nearest(v.frames, frame));
    });
    var gtRuns = runs(v, function (i) { return v.labels[i] === 1; }).length;
    $("segments").textContent = alarms.length + " alarm segment(s) in video " + v.name + ": " +
      alarms.slice(0, 12).map(function (r) { return v.frames[r[0]] + "-" + v.frames[r[1]]; }).join(", ") +
      (alarms.length > 12 ? ", ..." : "") + "; " + gtRuns + " ground-truth anomalous span(s)";
  }
  function nearest(sorted, value) {
    var best = sorted[0];
    for (var i = 0; i < sorted.length; i++) if (Math.abs(sorted[i] - value) < Math.abs(best - value)) best = sorted[i];
    return best;
  }

  // ------------------------------------------------------------------ the frame
  function rowsOf(v, frame) {
    var r = v.rows, out = [];
    for (var i = 0; i < r.frame.length; i++) {
      if (r.frame[i] === frame) out.push({ i: i, id: r.id[i], score: r.score[i], cls: r.cls[i],
                                            box: r.box.slice(4 * i, 4 * i + 4) });
    }
    return out;
  }
  function thumbFrame(v, frame) {
    var keys = Object.keys(v.thumbs).map(Number);
    if (!keys.length) return null;
    keys.sort(function (a, b) { return a - b; });
    return nearest(keys, frame);
  }
  function selectFrame(frame) {
    state.frame = frame;
    state.object = null;
    renderCurve();
    renderFrame();
    renderObject();
  }
  function renderFrame() {
    var v = video(), box = $("frame"), frame = state.frame;
    box.innerHTML = "";
    $("frame-rows").innerHTML = "";
    if (frame === null) { $("frame-title").textContent = "frame: click the curve"; return; }
    var i = v.frames.indexOf(frame);
    var shown = thumbFrame(v, frame);
    var title = "video " + v.name + ", frame " + frame + ": score " + fmt(v.scores[i]) +
      (v.labels[i] === 1 ? " (anomalous)" : " (normal)");
    if (shown !== null && shown !== frame) title += "; picture of the nearest frame with one, " + shown;
    $("frame-title").textContent = title;
    if (shown === null || !v.hw) {
      html("p", { "class": "muted" }, D.videos_without_frames.indexOf(v.name) >= 0 ?
        "no frames given for this video (stgraph eval --video-root)" : "no picture for this video", box);
      return;
    }
    var H = v.hw[0], W = v.hw[1], scale = v.thumb_scale || 1;
    var s = svg("svg", { width: Math.round(W * scale * 2), height: Math.round(H * scale * 2), viewBox: "0 0 " + W + " " + H, id: "frame-svg" }, box);
    svg("image", { href: "data:image/jpeg;base64," + v.thumbs[shown], x: 0, y: 0, width: W, height: H }, s);
    if ($("show-map").checked && v.maps[shown]) {
      svg("image", { href: "data:image/png;base64," + v.maps[shown], x: 0, y: 0, width: W, height: H,
                     opacity: 0.5, preserveAspectRatio: "none", "class": "heatmap" }, s);
    }
    if ($("show-gt").checked) {
      (v.gt[String(shown)] || []).forEach(function (b) {
        svg("rect", { x: b[0], y: b[1], width: b[2] - b[0], height: b[3] - b[1], fill: "none", stroke: "#ff00ff",
                      "stroke-width": 1.5, "stroke-dasharray": "4 2", "class": "gtbox" }, s);
      });
    }
    var rows = rowsOf(v, shown);
    var patches = D.box_kind === "patch";
    rows.sort(function (a, b) { return a.score - b.score; });  // strongest drawn last (on top)
    rows.forEach(function (r) {
      var colour = scoreColor(r.score), b = r.box;
      var rect = svg("rect", { x: b[0], y: b[1], width: b[2] - b[0], height: b[3] - b[1], stroke: colour,
                               "class": "box" + (state.object === r.id ? " selected" : ""), "data-object": r.id }, s);
      if (patches) { rect.style.fill = colour; rect.style.fillOpacity = "0.3"; rect.style.strokeWidth = "1"; }
      svg("title", {}, rect).textContent = r.cls + " #" + r.id + ": score " + fmt(r.score);
      rect.addEventListener("click", function (ev) { ev.stopPropagation(); state.object = r.id; renderFrame(); renderObject(); });
      if (!patches) {
        svg("text", { x: b[0] + 1, y: Math.max(8, b[1] - 2), "font-size": 9, fill: colour, "paint-order": "stroke",
                      stroke: "#000", "stroke-width": 2 }, s).textContent = fmt(r.score, 3);
      }
    });
    var legend = html("div", { "class": "small muted" }, null, $("frame-rows"));
    if (!D.box_kind) legend.textContent = "frame rows only: no boxes to draw (the frame score is the curve's)";
    else if (!rows.length) legend.textContent = "no " + D.box_kind + " rows in this frame" +
      (v.rows_all_frames ? "" : " (rows are embedded only for frames with a picture)");
    else legend.textContent = rows.length + " " + D.box_kind + " row(s); colour: score from " + fmt(D.box_range[0], 3) +
      " (green) to " + fmt(D.box_range[1], 3) + " (red)" + (v.maps[shown] ? "; heatmap: pixel scores " +
      fmt(v.map_range[0], 3) + " (dark) to " + fmt(v.map_range[1], 3) + " (yellow)" : "");
  }

  // ------------------------------------------------------------------ the selected object
  function iou(a, b) {
    var w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]), h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
    if (w <= 0 || h <= 0) return 0;
    var inter = w * h;
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter);
  }
  function findRow(v, frame, id) {
    var r = v.rows;
    for (var i = 0; i < r.frame.length; i++) {
      if (r.frame[i] === frame && r.id[i] === id) return { id: id, frame: frame, score: r.score[i], cls: r.cls[i], box: r.box.slice(4 * i, 4 * i + 4) };
    }
    return null;
  }
  function renderObject() {
    var v = video(), info = $("object"), graph = $("graph"), why = $("why");
    graph.innerHTML = ""; why.innerHTML = "";
    if (state.object === null || state.frame === null) {
      info.textContent = D.box_kind ? "click a box in the frame" : "the table has no object rows";
      return;
    }
    var frame = thumbFrame(v, state.frame);
    var me = findRow(v, frame, state.object);
    if (!me) { info.textContent = "object not found"; return; }
    info.className = "small";
    info.textContent = D.box_kind + " " + me.id + " of frame " + frame + " (" + me.cls + "), score " + fmt(me.score) +
      ", box [" + me.box.map(function (x) { return x.toFixed(0); }).join(", ") + "]";
    var key = v.name + "/" + frame + "/" + me.id, ex = D.explanations[key];
    var nodes = [{ frame: frame, id: me.id, box: me.box, score: me.score, self: true }], edges = [];
    if (ex) {
      var nodeIndex = function (frame, id) {
        var idx = nodes.findIndex(function (n) { return n.frame === frame && n.id === id; });
        if (idx >= 0) return idx;
        var other = findRow(v, frame, id);
        nodes.push({ frame: frame, id: id, box: other ? other.box : me.box, score: other ? other.score : NaN });
        return nodes.length - 1;
      };
      ex.edges.forEach(function (e) {  // [nf, no, type, weight, delta, into object, source frame, source object]
        var neighbour = nodeIndex(e[0], e[1]);
        var from = e[5] ? neighbour : nodeIndex(e[6], e[7]), to = e[5] ? 0 : neighbour;
        edges.push({ from: from, to: to, type: e[2], weight: e[3], delta: e[4], into: e[5] });
      });
    } else if (D.box_kind === "object") {
      // no explanation: the boxes around it (same frame: any overlap; next/previous frame: best IoU)
      rowsOf(v, frame).forEach(function (r) {
        if (r.id !== me.id && iou(r.box, me.box) > 0) { nodes.push({ frame: frame, id: r.id, box: r.box, score: r.score }); edges.push({ from: nodes.length - 1, to: 0, type: "spatial", weight: iou(r.box, me.box) }); }
      });
      [-1, 1].forEach(function (dt) {
        var j = v.frames.indexOf(frame) + dt;
        if (j < 0 || j >= v.frames.length) return;
        var best = null, bestIou = 0;
        rowsOf(v, v.frames[j]).forEach(function (r) { var q = iou(r.box, me.box); if (q > bestIou) { bestIou = q; best = r; } });
        if (best) { nodes.push({ frame: v.frames[j], id: best.id, box: best.box, score: best.score }); edges.push({ from: nodes.length - 1, to: 0, type: "temporal", weight: bestIou }); }
      });
    }
    drawNeighbourhood(graph, nodes, edges, !!ex);
    if (ex) {
      html("p", {}, "Why this object: score " + fmt(ex.score) + " on its graph window; each edge's delta = score - score without that edge " +
        "(> 0: the edge made the object look more abnormal). " + ex.edges.length + " of " + ex.n_edges + " edges shown.", why);
      var t = html("table", { "class": "why" }, null, why), head = html("tr", {}, null, t);
      ["edge (frame #object)", "type", "weight", "delta"].forEach(function (h) { html("th", {}, h, head); });
      ex.edges.forEach(function (e) {
        var tr = html("tr", {}, null, t);
        html("td", {}, e[5] ? "f" + e[0] + " #" + e[1] + " \u2192 this object" :
          (e[6] === e[0] && e[7] === e[1] ? "self loop of neighbour f" + e[0] + " #" + e[1] :
           "f" + e[6] + " #" + e[7] + " \u2192 neighbour f" + e[0] + " #" + e[1]), tr);
        html("td", {}, e[2], tr);
        html("td", {}, fmt(e[3], 3), tr);
        html("td", { "class": e[4] > 0 ? "pos" : "neg" }, (e[4] > 0 ? "+" : "") + fmt(e[4], 3), tr);
      });
    } else {
      html("p", { "class": "muted" }, (D.explain_note ? D.explain_note + ". " : "") +
        "No explanation for this frame" + (D.explain_note ? "" : " (pass --model to stgraph eval for a graph model's explanations)") +
        "; shown: overlapping boxes of the same frame and the best-overlapping box of the previous and next frames.", why);
    }
  }
  function drawNeighbourhood(box, nodes, edges, explained) {
    // radial layout: the object in the middle, its neighbours around it ordered by (frame, id);
    // several edges to one neighbour are drawn as separate arcs, each labelled
    if (nodes.length < 2) { html("p", { "class": "muted small" }, "no neighbours", box); return; }
    var W = 420, H = 300, cx = W / 2, cy = H / 2, R = 115;
    var order = nodes.slice(1).map(function (n, k) { return k + 1; });
    order.sort(function (a, b) { return (nodes[a].frame - nodes[b].frame) || (nodes[a].id - nodes[b].id); });
    var pts = {}; pts[0] = [cx, cy];
    order.forEach(function (k, j) {
      var angle = -Math.PI / 2 + 2 * Math.PI * j / order.length;
      pts[k] = [cx + R * Math.cos(angle), cy + 0.8 * R * Math.sin(angle)];
    });
    var s = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, id: "graph-svg" }, box);
    var maxDelta = Math.max.apply(null, edges.map(function (e) { return Math.abs(e.delta || 0); }).concat([1e-12]));
    var seen = {}, drawn = {};
    function pair(e) { return Math.min(e.from, e.to) + "-" + Math.max(e.from, e.to); }
    edges.forEach(function (e) { seen[pair(e)] = (seen[pair(e)] || 0) + 1; });
    svg("defs", {}, s).innerHTML = '<marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerUnits="userSpaceOnUse" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="#475467"/></marker>';
    edges.forEach(function (e) {
      var key = pair(e), a = pts[e.from], b = pts[e.to], count = seen[key], j = drawn[key] = (drawn[key] || 0) + 1;
      if (e.from === e.to) {  // a self loop (the builder adds them): a small loop above the node
        var loopColour = explained ? (e.delta > 0 ? "#b42318" : "#175cd3") : "#667085", up = 12 + 10 * (j - 1);
        var loop = svg("path", { d: "M" + (a[0] - 6) + " " + (a[1] - 7) + " C" + (a[0] - 22) + " " + (a[1] - 22 - up) + " " +
                                 (a[0] + 22) + " " + (a[1] - 22 - up) + " " + (a[0] + 6) + " " + (a[1] - 7), fill: "none",
                                 stroke: loopColour, "stroke-width": explained ? 1 + 5 * Math.abs(e.delta) / maxDelta : 1.5,
                                 "class": "edge" }, s);
        svg("title", {}, loop).textContent = "self loop, weight " + fmt(e.weight, 3) + (explained ? ", delta " + fmt(e.delta, 3) : "");
        svg("text", { x: a[0], y: a[1] - 20 - up, "font-size": 10, "text-anchor": "middle", fill: loopColour, "paint-order": "stroke",
                      stroke: "#fff", "stroke-width": 3 }, s).textContent = explained ? (e.delta > 0 ? "+" : "") + fmt(e.delta, 3) : "";
        return;
      }
      var bend = (j - 1 - (count - 1) / 2) * 36;
      var mx = (a[0] + b[0]) / 2, my = (a[1] + b[1]) / 2, dx = b[0] - a[0], dy = b[1] - a[1];
      var len = Math.sqrt(dx * dx + dy * dy) || 1, qx = mx - dy / len * bend, qy = my + dx / len * bend;
      var back = (e.to === 0 ? 13 : 9) + 2, tx = b[0] - qx, ty = b[1] - qy, tl = Math.sqrt(tx * tx + ty * ty) || 1;
      b = [b[0] - tx / tl * back, b[1] - ty / tl * back];  // the arrow tip stops at the node's rim
      var colour = explained ? (e.delta > 0 ? "#b42318" : "#175cd3") : (e.type === "temporal" ? "#f79009" : "#667085");
      var width = explained ? 1 + 5 * Math.abs(e.delta) / maxDelta : 1.5;
      var path = svg("path", { d: "M" + a[0] + " " + a[1] + " Q" + qx + " " + qy + " " + b[0] + " " + b[1], fill: "none",
                               stroke: colour, "stroke-width": width, "stroke-dasharray": e.type === "temporal" ? "6 3" : "",
                               "class": "edge", "marker-end": explained ? "url(#arrow)" : "" }, s);
      svg("title", {}, path).textContent = e.type + " edge, weight " + fmt(e.weight, 3) + (explained ? ", delta " + fmt(e.delta, 3) : "");
      var lx = 0.25 * a[0] + 0.5 * qx + 0.25 * b[0], ly = 0.25 * a[1] + 0.5 * qy + 0.25 * b[1];
      svg("text", { x: lx, y: ly - 3, "font-size": 10, "text-anchor": "middle", fill: colour, "paint-order": "stroke",
                    stroke: "#fff", "stroke-width": 3 }, s).textContent =
        explained ? (e.delta > 0 ? "+" : "") + fmt(e.delta, 3) : e.type[0] + " " + fmt(e.weight, 2);
    });
    nodes.forEach(function (n, k) {
      var p = pts[k];
      var c = svg("circle", { cx: p[0], cy: p[1], r: n.self ? 13 : 9, fill: scoreColor(n.score),
                              stroke: n.self ? "#101828" : "#667085", "stroke-width": n.self ? 3 : 1, "class": "node" }, s);
      svg("title", {}, c).textContent = "frame " + n.frame + " object " + n.id + ": score " + fmt(n.score);
      svg("text", { x: p[0], y: p[1] + (n.self ? 27 : 21), "font-size": 10, "text-anchor": "middle", fill: "#344054",
                    "paint-order": "stroke", stroke: "#fff", "stroke-width": 3 }, s).textContent =
        "f" + n.frame + " #" + n.id + " (" + fmt(n.score, 3) + ")";
    });
    html("div", { "class": "muted small" }, explained ?
      "object graph neighbourhood (f = frame, # = object, score): node colour = score; arrows = message direction (into the object, or into a neighbour: its degree); red = the edge raised the object's score, blue = lowered it, width = |delta|, dashed = temporal" :
      "boxes around the object (grey: overlapping in the same frame, orange dashed: best overlap in the previous / next frame; label: IoU)", box);
  }

  // ------------------------------------------------------------------ examples, header
  function renderExamples() {
    ["false_positive", "missed"].forEach(function (kind) {
      var box = $("ex-" + kind), list = D.examples.filter(function (e) { return e.kind === kind; });
      if (!list.length) { html("span", { "class": "muted" }, "none", box); return; }
      list.forEach(function (e) {
        var vi = D.videos.findIndex(function (v) { return v.name === e.video; });
        var card = html("div", { "class": "example", "data-video": e.video, "data-frame": e.frame }, null, box);
        var v = D.videos[vi];
        if (v && v.thumbs[String(e.frame)]) html("img", { src: "data:image/jpeg;base64," + v.thumbs[String(e.frame)], alt: "frame " + e.frame }, null, card);
        html("div", { "class": "small" }, "video " + e.video + " frame " + e.frame + ", score " + fmt(e.score), card);
        card.addEventListener("click", function () { setVideo(vi); selectFrame(e.frame); $("frame").scrollIntoView({ behavior: "smooth" }); });
      });
    });
  }
  function renderHeader() {
    var mt = D.metrics, box = $("metrics");
    $("title").textContent = D.title;
    function item(label, value) { var s = html("span", {}, label + " ", box); html("b", {}, value, s); }
    item("micro AUC", pct(mt.micro_auc)); item("macro AUC", pct(mt.macro_auc)); item("EER", pct(mt.eer));
    item("frames", String(mt.n_frames) + " (" + mt.n_anomalous + " anomalous)");
    if (mt.youden) item("Youden threshold", fmt(mt.youden.threshold, 5));
    if (mt.region) { item("RBDC", pct(mt.region.rbdc)); item("TBDC", pct(mt.region.tbdc)); item("pixel AUC", pct(mt.region.pixel_auc)); }
    item("rows", D.kinds.join(", ") || "none");
    $("footer").textContent = "stgraph report, generated " + D.generated + "; pictures " +
      (D.image_bytes / 1e6).toFixed(2) + " MB of a " + (D.image_budget / 1e6).toFixed(1) + " MB budget" +
      (D.explain_note ? "; " + D.explain_note : "");
  }
  function setVideo(index) {
    state.video = index;
    $("video").value = String(index);
    var v = video();
    $("video-info").textContent = v.frames.length + " frames, AUC " + pct(v.auc) + ", " +
      Object.keys(v.thumbs).length + " frame pictures";
    renderCounts();
  }
  function init() {
    renderHeader();
    var sel = $("video");
    D.videos.forEach(function (v, k) { html("option", { value: String(k) }, v.name, sel); });
    sel.addEventListener("change", function () { setVideo(Number(sel.value)); selectFrame(video().peak); });
    var slider = $("threshold");
    slider.min = String(Math.min(D.score_min, D.threshold)); slider.max = String(Math.max(D.score_max, D.threshold));
    slider.value = String(D.threshold);
    slider.addEventListener("input", function () { state.threshold = Number(slider.value); renderCounts(); renderCurve(); });
    $("youden").addEventListener("click", function () { slider.value = String(D.threshold); state.threshold = D.threshold; renderCounts(); renderCurve(); });
    $("show-map").addEventListener("change", renderFrame);
    $("show-gt").addEventListener("change", renderFrame);
    document.addEventListener("keydown", function (ev) {
      if (state.frame === null || (ev.key !== "ArrowLeft" && ev.key !== "ArrowRight")) return;
      if (ev.target && ev.target.tagName === "INPUT" && ev.target.type === "range") return;
      var v = video(), i = v.frames.indexOf(state.frame) + (ev.key === "ArrowRight" ? 1 : -1);
      if (i >= 0 && i < v.frames.length) { ev.preventDefault(); selectFrame(v.frames[i]); }
    });
    window.addEventListener("resize", renderCurve);
    renderExamples();
    if (!D.videos.length) return;
    setVideo(0);
    selectFrame(video().peak !== null && video().peak !== undefined ? video().peak : video().frames[0]);
    applyHash();
    document.body.setAttribute("data-ready", "1");
  }
  // #video=NAME&frame=N&object=ID&threshold=X opens that view (links, and headless browser tests:
  // the threshold goes through the slider's own input event)
  function applyHash() {
    var q = {};
    (window.location.hash || "").replace(/^#/, "").split("&").forEach(function (kv) {
      var p = kv.split("="); if (p[0]) q[p[0]] = decodeURIComponent(p[1] || "");
    });
    if (q.video !== undefined) {
      var vi = D.videos.findIndex(function (v) { return v.name === q.video; });
      if (vi >= 0) { setVideo(vi); selectFrame(video().peak); }
    }
    if (q.frame !== undefined) selectFrame(nearest(video().frames, Number(q.frame)));
    if (q.object !== undefined) { state.object = Number(q.object); renderFrame(); renderObject(); }
    if (q.threshold !== undefined) {
      var slider = $("threshold");
      slider.value = q.threshold;
      slider.dispatchEvent(new Event("input"));
    }
  }
  init();
})();
