/* page.js -- governord's live page: memory against the limit, and every
 * decision, at a glance.
 *
 * Every second it fetches governor/history from the server that sent the
 * page (relative URL, so an ingress path prefix works; the page's
 * Content-Security-Policy forbids every other host).  The first request gets
 * the whole ring (up to 15 minutes of one-second samples, each the peak of
 * its second, and the decision log); later ones pass since= and after_seq=
 * and get only what is new (and the newest sample again: it grows until its
 * second is over).  The
 * page keeps what it has seen, so a restarted daemon or a broken
 * port-forward shows up as a gap instead of wiping the chart:
 *
 *   - no samples for more than 2.5 sample periods (daemon stopped or
 *     restarted), or samples the governor could not take: a grey band;
 *   - polls that failed (daemon not reachable from this browser): a red
 *     band, and the connection state in the header.
 *
 * The chart is hand-drawn SVG: limit, working set and memory.current as
 * lines, the policy's target/soft/high/critical as dashed lines at their
 * fraction of the limit at each moment (so they follow an in-place resize),
 * the collector's buffer as an area, and one marker per decision.  The
 * y axis spans the current limit and every figure in view, so an in-place
 * resize, up or down, rescales it at once.
 * Everything is built with DOM calls and textContent: strings from the
 * server (reasons, errors, paths) are never parsed as markup. */
'use strict';

(function () {
  const POLL_MS = 1000;
  const TIMEOUT_MS = 3000;
  const MIN_SPAN_MS = 30 * 1000;    // the chart spans at least 30 s
  const KEEP_MS = 15 * 60 * 1000;   // samples kept: the largest window
  const MAX_DECISIONS = 200;
  const TABLE_ROWS = 50;
  const GAP_PERIODS = 2.5;          // a hole longer than this is a gap
  const SVGNS = 'http://www.w3.org/2000/svg';
  const THRESHOLDS = ['target', 'soft', 'high', 'critical'];

  const st = {
    samples: [],          // {t, ok, level, limit, usage, ws, current, buffer}, oldest first
    decisions: new Map(), // "started:seq" -> decision record from the server
    decisionsVersion: 0,  // bumped when decisions change, to redraw the table
    tableVersion: -1,
    started: null,        // started_at_ms of the daemon answering
    afterSeq: 0,
    since: 0,
    period: 1000,
    status: null,         // the latest response
    polls: 0,             // successful polls
    failures: 0,          // failed polls, in total
    failing: 0,           // failed polls in a row
    lastError: '',
    serverNow: 0,         // the server's clock at the latest response ...
    clientAt: 0,          // ... and ours at the same moment
    outages: [],          // {from, to}: server times between which polls failed
    selected: null,       // key of the selected decision
    chartBase: null,      // <g> redrawn on every render
    markerLayer: null,    // <g> of decision markers, updated in place
    markerEls: new Map(), // decision key -> its marker <g>
  };

  const $ = (id) => document.getElementById(id);

  /* ---- formatting --------------------------------------------------------- */

  function fmtBytes(b) {
    if (b === null || b === undefined || !isFinite(b)) return '–';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let v = b;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) {
      v /= 1024;
      i++;
    }
    const digits = i === 0 || v >= 100 ? 0 : v >= 10 ? 1 : 2;
    return String(parseFloat(v.toFixed(digits))) + ' ' + units[i];
  }

  function pad(n) {
    return n < 10 ? '0' + n : String(n);
  }

  function fmtTime(ms, seconds) {
    const d = new Date(ms);
    const hm = pad(d.getHours()) + ':' + pad(d.getMinutes());
    return seconds === false ? hm : hm + ':' + pad(d.getSeconds());
  }

  function pct(part, whole) {
    if (!whole) return '';
    return Math.floor((part / whole) * 100) + '%';
  }

  function levelName(l) {
    return ['normal', 'soft', 'high', 'critical'].indexOf(l) >= 0 ? l : 'unknown';
  }

  function serverNow() {
    return st.clientAt ? st.serverNow + (Date.now() - st.clientAt) : Date.now();
  }

  /* ---- data ----------------------------------------------------------------- */

  function merge(j) {
    if (st.started !== j.started_at_ms) {
      st.started = j.started_at_ms; // a new daemon: its sequence numbers start over
      st.afterSeq = 0;
    }
    st.period = Math.max(1000, j.period_ms || 1000);
    st.socket = j.socket;
    st.clients = j.clients;
    for (const s of j.samples) {
      const x = {
        t: s.time_ms, ok: s.ok, level: s.level, limit: s.limit_bytes, usage: s.usage_bytes,
        ws: s.working_set_bytes, current: s.current_bytes, buffer: s.buffer_bytes,
      };
      const last = st.samples[st.samples.length - 1];
      if (!last || x.t > last.t) st.samples.push(x);
      else if (x.t === last.t) st.samples[st.samples.length - 1] = x;
      // an older one means the server's clock went back: keep what we have
    }
    if (st.samples.length) st.since = st.samples[st.samples.length - 1].t;
    for (const d of j.decisions) {
      const key = j.started_at_ms + ':' + d.seq;
      d.key = key;
      st.decisions.set(key, d);
      if (d.seq > st.afterSeq) st.afterSeq = d.seq;
    }
    if (j.decisions.length) st.decisionsVersion++;
    st.serverNow = j.now_ms;
    st.clientAt = Date.now();
    st.status = j;

    const keepFrom = st.serverNow - KEEP_MS;
    let drop = 0;
    while (drop < st.samples.length && st.samples[drop].t < keepFrom) drop++;
    if (drop) st.samples.splice(0, drop);
    st.outages = st.outages.filter((o) => o.to === null || o.to >= keepFrom);
    while (st.decisions.size > MAX_DECISIONS) {
      let oldest = null;
      for (const d of st.decisions.values())
        if (!oldest || d.time_ms < oldest.time_ms) oldest = d;
      st.decisions.delete(oldest.key);
    }
  }

  function onSuccess(j) {
    const open = st.outages[st.outages.length - 1];
    if (st.failing && open && open.to === null) open.to = j.now_ms;
    st.failing = 0;
    st.lastError = '';
    st.polls++;
  }

  function onFailure(err) {
    if (!st.failing && st.clientAt) st.outages.push({ from: st.serverNow, to: null });
    st.failing++;
    st.failures++;
    st.lastError = err && err.name === 'AbortError' ? 'no answer in ' + TIMEOUT_MS / 1000 + ' s'
      : String(err && err.message ? err.message : err);
  }

  async function poll() {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    // since = just before our newest sample: it may have grown since
    const since = st.since > 0 ? st.since - 1 : 0;
    const url = 'governor/history?since=' + since + '&after_seq=' + st.afterSeq;
    try {
      const r = await fetch(url, { cache: 'no-store', signal: ctl.signal });
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const j = await r.json();
      merge(j);
      onSuccess(j);
    } catch (e) {
      onFailure(e);
    } finally {
      clearTimeout(timer);
    }
    render();
    setTimeout(poll, POLL_MS);
  }

  /* ---- header and facts ------------------------------------------------------ */

  function setText(id, text, title) {
    const el = $(id);
    el.textContent = text;
    if (title !== undefined) el.title = title;
  }

  function renderStatus() {
    const j = st.status;
    const conn = $('conn');
    if (st.failing) {
      conn.dataset.state = 'unreachable';
      conn.textContent = (st.clientAt ? 'not reachable since ' + fmtTime(st.clientAt)
        : 'not reachable') + ' (' + st.failing + ' failed ' +
        (st.failing === 1 ? 'poll' : 'polls') + ': ' + st.lastError + ')';
    } else if (j) {
      conn.dataset.state = 'live';
      conn.textContent = 'live · updated ' + fmtTime(st.clientAt);
    }
    if (!j) return;

    const badge = $('level');
    badge.textContent = levelName(j.level);
    badge.dataset.level = levelName(j.level);
    badge.dataset.stale = st.failing ? 'true' : 'false';
    document.title = 'governord · ' + levelName(j.level);

    const m = j.memory;
    const signal = m.signal === 'current' ? 'memory.current' : 'working set';
    setText('f-usage', m.readable ? fmtBytes(m.usage_bytes) + ' (' + pct(m.usage_bytes, m.limit_bytes) + ')' : '–',
      signal + '; memory.current ' + fmtBytes(m.current_bytes));
    setText('f-limit', fmtBytes(m.limit_bytes), String(m.limit_bytes) + ' bytes');
    setText('f-source', m.limit_source);
    setText('f-buffer', fmtBytes(j.buffer_bytes));
    setText('f-cgroup', j.cgroup.version, j.cgroup.how);
    setText('f-policy', 'generation ' + j.policy.generation + ' · ' + j.mode,
      j.policy.source + (j.policy.loaded_at ? ', loaded ' + j.policy.loaded_at : ''));
    setText('f-pod', j.pod.name ? (j.pod.namespace ? j.pod.namespace + '/' : '') + j.pod.name : '–');
    setText('version', 'governord ' + j.version);

    const rel = $('reload-error');
    rel.hidden = !j.policy.last_error;
    rel.textContent = j.policy.last_error
      ? 'Policy reload rejected, the previous policy stays in force: ' + j.policy.last_error : '';
    const se = $('sample-error');
    se.hidden = m.readable;
    se.textContent = m.readable ? '' : 'Memory source not readable, governor paused: ' + m.error;
  }

  /* ---- chart ------------------------------------------------------------------ */

  function el(name, attrs, parent, text) {
    const e = document.createElementNS(SVGNS, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (text !== undefined) e.textContent = text;
    if (parent) parent.appendChild(e);
    return e;
  }

  function niceStep(span, n) {
    const raw = span / n;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
  }

  function byteTicks(ymax) {
    const unit = ymax >= 2 * 1024 ** 3 ? 1024 ** 3 : ymax >= 2 * 1024 ** 2 ? 1024 ** 2 : 1024;
    const name = unit === 1024 ** 3 ? 'GiB' : unit === 1024 ** 2 ? 'MiB' : 'KiB';
    const step = niceStep(ymax / unit, 5);
    const top = Math.ceil(ymax / unit / step) * step;
    const ticks = [];
    for (let v = 0; v <= top + step / 2; v += step)
      ticks.push({ v: v * unit, label: String(parseFloat(v.toFixed(3))) + ' ' + name });
    return { top: top * unit, ticks };
  }

  function timeStep(span, width) {
    const steps = [5, 10, 15, 30, 60, 120, 300, 600, 900].map((s) => s * 1000);
    const most = Math.max(2, Math.floor(width / 85));
    for (const s of steps) if (span / s <= most) return s;
    return steps[steps.length - 1];
  }

  /* Splits samples into runs without holes, and reports the holes: time
   * without samples, and samples the governor could not take (from the last
   * good sample to the next one). */
  function segments(samples, period) {
    const runs = [];
    const holes = [];
    let run = [];
    let prev = null;
    let unreadable = null;
    for (const s of samples) {
      if (prev && s.t - prev.t > GAP_PERIODS * period) {
        holes.push({ from: prev.t, to: s.t, why: 'no samples' });
        if (run.length) runs.push(run);
        run = [];
      }
      if (s.ok) {
        if (unreadable) unreadable.to = s.t;
        unreadable = null;
        run.push(s);
      } else {
        if (run.length) runs.push(run);
        run = [];
        if (!unreadable) {
          unreadable = { from: prev && prev.ok ? prev.t : s.t, to: s.t, why: 'memory unreadable' };
          holes.push(unreadable);
        }
        unreadable.to = s.t;
      }
      prev = s;
    }
    if (run.length) runs.push(run);
    return { runs, holes };
  }

  function renderChart() {
    const svg = $('chart');
    const width = Math.max(280, Math.floor($('chart-wrap').clientWidth || 800));
    const narrow = width < 600;
    const height = narrow ? 250 : 360;
    const m = { l: narrow ? 52 : 64, r: 10, t: 22, b: 24 };
    const pw = width - m.l - m.r;
    const ph = height - m.t - m.b;
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.setAttribute('width', width);
    svg.setAttribute('height', height);
    const base = st.chartBase;
    while (base.firstChild) base.removeChild(base.firstChild);

    const now = serverNow();
    const windowMs = Number($('window').value) * 1000;
    const first = st.samples.length ? st.samples[0].t : now;
    const x0 = Math.max(now - windowMs, Math.min(first, now - MIN_SPAN_MS));
    const x1 = now;
    const visible = st.samples.filter((s) => s.t >= x0 - st.period);
    const th = st.status ? st.status.thresholds : null;

    /* the scale: the current limit and every figure in view, so a resize
     * rescales at once (a higher limit from before a resize down runs off
     * the top, while usage peaks always stay in view) */
    let ymax = st.status ? st.status.memory.limit_bytes : 0;
    for (const s of visible)
      if (s.ok) ymax = Math.max(ymax, s.current, s.ws, s.usage, s.buffer);
    if (!ymax) ymax = 1024 ** 3;
    const yt = byteTicks(ymax * 1.04);
    const X = (t) => m.l + ((t - x0) / (x1 - x0)) * pw;
    const Y = (b) => m.t + ph - (b / yt.top) * ph;
    const cx = (t) => Math.min(m.l + pw, Math.max(m.l, X(t)));
    const r1 = (v) => Math.round(v * 10) / 10;

    const defs = el('defs', {}, base);
    const clip = el('clipPath', { id: 'plot-clip' }, defs);
    el('rect', { x: m.l, y: m.t, width: pw, height: ph }, clip);

    /* grid and axes */
    const axis = el('g', { class: 'axis' }, base);
    for (const tk of yt.ticks) {
      const y = r1(Y(tk.v));
      el('line', { class: 'grid', x1: m.l, x2: m.l + pw, y1: y, y2: y }, axis);
      el('text', { x: m.l - 6, y: y + 4, 'text-anchor': 'end' }, axis, tk.label);
    }
    const tstep = timeStep(x1 - x0, pw);
    for (let t = Math.ceil(x0 / tstep) * tstep; t <= x1; t += tstep) {
      const x = r1(X(t));
      el('line', { class: 'grid', x1: x, x2: x, y1: m.t, y2: m.t + ph }, axis);
      if (x < width - 26) // a label cut off by the edge helps nobody
        el('text', { x: x, y: m.t + ph + 16, 'text-anchor': 'middle' }, axis, fmtTime(t, tstep < 60000));
    }

    const plot = el('g', { 'clip-path': 'url(#plot-clip)' }, base);

    /* bands: holes in the data, polls that failed */
    const seg = segments(visible, st.period);
    const labels = []; // drawn after all bands, so no band hides another's label
    let nGaps = 0;
    for (const h of seg.holes) {
      if (h.to < x0) continue;
      const xa = cx(h.from);
      const w = Math.max(2, cx(h.to) - xa);
      el('rect', { class: 'gap', x: r1(xa), y: m.t, width: r1(w), height: ph }, plot,
        undefined).appendChild(el('title', {}, null, h.why));
      if (w > 40) labels.push(['gap-label', xa + 4, m.t + ph - 6, h.why]);
      nGaps++;
    }
    let nOut = 0;
    for (const o of st.outages) {
      const to = o.to === null ? now : o.to;
      if (to < x0) continue;
      const xa = cx(o.from);
      const w = Math.max(2, cx(to) - xa);
      el('rect', { class: 'unreachable', x: r1(xa), y: m.t, width: r1(w), height: ph }, plot)
        .appendChild(el('title', {}, null, 'not reachable from this browser'));
      if (w > 40) labels.push(['unreachable-label', xa + 4, m.t + 12, 'not reachable']);
      nOut++;
    }
    for (const [cls, x, y, text] of labels) el('text', { class: cls, x: r1(x), y: y }, plot, text);

    /* data: buffer area, threshold and limit steps, usage lines */
    let nPoints = 0;
    for (const run of seg.runs) {
      nPoints += run.length;
      const last = run[run.length - 1];
      const end = run.length > 1 ? last.t : last.t + st.period / 2;
      const area = [];
      for (const s of run) area.push(r1(X(s.t)) + ',' + r1(Y(s.buffer)));
      area.push(r1(X(end)) + ',' + r1(Y(last.buffer)));
      area.push(r1(X(end)) + ',' + r1(Y(0)));
      area.push(r1(X(run[0].t)) + ',' + r1(Y(0)));
      el('polygon', { class: 'area-buffer', points: area.join(' ') }, plot);

      const steps = (f) => {
        const pts = [];
        run.forEach((s, i) => {
          if (i) pts.push(r1(X(s.t)) + ',' + r1(Y(run[i - 1].limit * f)));
          pts.push(r1(X(s.t)) + ',' + r1(Y(s.limit * f)));
        });
        pts.push(r1(X(end)) + ',' + r1(Y(last.limit * f)));
        return pts.join(' ');
      };
      if (th)
        for (const name of THRESHOLDS)
          el('polyline', { class: 'line line-th th-' + name, points: steps(th[name]) }, plot);
      el('polyline', { class: 'line line-limit', points: steps(1) }, plot);
      const line = (key) => run.map((s) => r1(X(s.t)) + ',' + r1(Y(s[key]))).join(' ') +
        (run.length > 1 ? '' : ' ' + r1(X(end)) + ',' + r1(Y(last[key])));
      el('polyline', { class: 'line line-current', points: line('current') }, plot);
      el('polyline', { class: 'line line-ws', points: line('ws') }, plot);
    }

    /* labels of the newest limit and thresholds, at the right edge */
    const newest = [...visible].reverse().find((s) => s.ok);
    if (newest && X(newest.t) > m.l) {
      const xr = m.l + pw - 4;
      const lab = [{ cls: 'axis-limit', f: 1, text: 'limit ' + fmtBytes(newest.limit) }];
      if (th) for (const name of [...THRESHOLDS].reverse())
        lab.push({ cls: 'th-label th-' + name, f: th[name], text: name + ' ' + Math.round(th[name] * 100) + '%' });
      const used = [];
      for (const l of lab) {
        const y = r1(Y(newest.limit * l.f) - 3);
        if (used.some((u) => Math.abs(u - y) < 11)) continue; // would overlap: the line says it
        used.push(y);
        el('text', { class: l.cls, x: xr, y: y, 'text-anchor': 'end' }, plot, l.text);
      }
    }

    el('rect', { class: 'frame', x: m.l, y: m.t, width: pw, height: ph }, base);
    if (!nPoints)
      el('text', { class: 'empty', x: m.l + pw / 2, y: m.t + ph / 2, 'text-anchor': 'middle' }, base,
        st.status ? 'waiting for samples…' : 'connecting…');

    /* decision markers: kept from one drawing to the next (so a click or
     * keyboard focus survives the redraw every second), oldest first so the
     * newest is on top, and stacked in up to three rows where they crowd */
    let nMarkers = 0;
    const rowsEnd = [-Infinity, -Infinity, -Infinity];
    const seen = new Set();
    for (const d of sortedDecisions().reverse()) {
      if (d.time_ms < x0 || d.time_ms > x1 + 1000) continue;
      const x = r1(cx(d.time_ms));
      let row = rowsEnd.findIndex((end) => x - end >= 13);
      if (row < 0) row = rowsEnd.indexOf(Math.min(...rowsEnd));
      rowsEnd[row] = x;
      const y = m.t - 12 + row * 12;
      let g = st.markerEls.get(d.key);
      if (!g) {
        g = el('g', { tabindex: '0', role: 'button', 'data-key': d.key }, null);
        el('title', {}, g);
        el('line', {}, g);
        el('path', {}, g);
        st.markerEls.set(d.key, g);
      }
      st.markerLayer.appendChild(g); // (re)inserted in time order
      g.setAttribute('class', 'marker' + (d.key === st.selected ? ' selected' : ''));
      g.dataset.action = d.action;
      g.dataset.level = d.level;
      g.childNodes[0].textContent = fmtTime(d.time_ms) + ' ' + describeLevel(d) + ', ' +
        d.action + ': ' + d.reason;
      const cls = 'lv-' + levelName(d.level);
      const line = g.childNodes[1];
      line.setAttribute('class', cls);
      line.setAttribute('x1', x);
      line.setAttribute('x2', x);
      line.setAttribute('y1', y + 10);
      line.setAttribute('y2', m.t + ph);
      const path = g.childNodes[2];
      path.setAttribute('class', cls);
      path.setAttribute('d', 'M' + (x - 6) + ',' + y + 'h12l-6,10z');
      seen.add(d.key);
      nMarkers++;
    }
    for (const [key, g] of st.markerEls)
      if (!seen.has(key)) {
        g.remove();
        st.markerEls.delete(key);
      }

    svg.dataset.points = nPoints;
    svg.dataset.markers = nMarkers;
    svg.dataset.gaps = nGaps;
    svg.dataset.unreachable = nOut;
    svg.dataset.ymax = Math.round(yt.top);
    svg.dataset.from = Math.round(x0);
    svg.dataset.to = Math.round(x1);
  }

  function renderLegend() {
    const items = [
      ['c-limit', 'limit'], ['c-ws', 'working set'], ['c-current', 'memory.current'],
      ['area', 'collector buffer'], ['dash c-target', 'target'], ['dash c-soft', 'soft'],
      ['dash c-high', 'high'], ['dash c-critical', 'critical'], ['mark', 'decision'],
      ['c-gap', 'no samples'], ['c-unreachable', 'not reachable'],
    ];
    const ul = $('legend');
    for (const [cls, text] of items) {
      const li = document.createElement('li');
      const sw = document.createElement('span');
      sw.className = 'sw ' + cls;
      li.appendChild(sw);
      li.appendChild(document.createTextNode(text));
      ul.appendChild(li);
    }
  }

  /* ---- decisions ----------------------------------------------------------------- */

  function sortedDecisions() {
    return [...st.decisions.values()].sort((a, b) => b.time_ms - a.time_ms || b.seq - a.seq);
  }

  function describeLevel(d) {
    return d.from === d.level ? d.level : d.from + ' → ' + d.level;
  }

  function describe(d) {
    let s = fmtTime(d.time_ms) + ' · ' + describeLevel(d) + ' · ' + d.action;
    if (d.dry_run) s += ' (dry run, would release ' + fmtBytes(d.would_release_bytes) + ')';
    else if (d.released_bytes) s += ', released ' + fmtBytes(d.released_bytes);
    if (d.repeat > 1) s += ' · ' + d.repeat + ' times';
    return s + ' — ' + d.reason;
  }

  function select(key) {
    st.selected = key;
    const d = st.decisions.get(key);
    $('detail').textContent = d ? describe(d) : '';
    for (const g of document.querySelectorAll('#chart .marker'))
      g.classList.toggle('selected', g.dataset.key === key);
    for (const tr of document.querySelectorAll('#decisions tbody tr'))
      tr.classList.toggle('selected', tr.dataset.key === key);
  }

  function cell(tr, text, cls, title) {
    const td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    if (title) td.title = title;
    tr.appendChild(td);
    return td;
  }

  function renderTable() {
    if (st.tableVersion === st.decisionsVersion) return;
    st.tableVersion = st.decisionsVersion;
    const tbody = $('decisions').tBodies[0];
    const rows = sortedDecisions().slice(0, TABLE_ROWS);
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    for (const d of rows) {
      const tr = document.createElement('tr');
      tr.dataset.key = d.key;
      tr.dataset.action = d.action;
      if (d.key === st.selected) tr.className = 'selected';
      cell(tr, fmtTime(d.time_ms), 'time', d.time);
      const lv = cell(tr, '', 'lv');
      if (d.from !== d.level) {
        const from = document.createElement('span');
        from.className = 'lv-' + levelName(d.from);
        from.textContent = d.from;
        lv.appendChild(from);
        lv.appendChild(document.createTextNode(' → '));
      }
      const to = document.createElement('span');
      to.className = 'lv-' + levelName(d.level);
      to.textContent = d.level;
      lv.appendChild(to);
      cell(tr, d.action + (d.dry_run ? ' (dry run)' : '') + (d.repeat > 1 ? ' ×' + d.repeat : ''), 'action');
      cell(tr, fmtBytes(d.usage_bytes) + ' / ' + fmtBytes(d.limit_bytes) +
        (d.limit_bytes ? ' (' + pct(d.usage_bytes, d.limit_bytes) + ')' : ''), 'num');
      cell(tr, d.dry_run ? '(' + fmtBytes(d.would_release_bytes) + ')' : fmtBytes(d.released_bytes), 'num');
      cell(tr, fmtBytes(d.buffer_after_bytes), 'num');
      cell(tr, d.reason, 'reason');
      tr.addEventListener('click', () => select(d.key));
      tbody.appendChild(tr);
    }
    $('no-decisions').hidden = rows.length > 0;
  }

  /* ---- the trim protocol's clients ---------------------------------------------- */

  function renderClients() {
    const so = st.socket;
    if (!so) return;
    $('socket').textContent = so.listening
      ? 'socket ' + so.path + ' (mode ' + so.mode + '), ' + so.connections + ' of ' +
        so.max_clients + ' connections'
      : 'no socket: ' + so.reason;
    const tbody = $('clients').tBodies[0];
    const clients = st.clients || [];
    while (tbody.firstChild) tbody.removeChild(tbody.firstChild);
    for (const c of clients) {
      const tr = document.createElement('tr');
      tr.dataset.id = c.id;
      cell(tr, String(c.id), 'num');
      cell(tr, c.name);
      cell(tr, String(c.pid), 'num');
      cell(tr, String(c.uid), 'num');
      cell(tr, fmtBytes(c.bytes) + ' in ' + c.objects, 'num');
      cell(tr, String(c.shrinks), 'num');
      cell(tr, fmtBytes(c.released_bytes), 'num');
      cell(tr, c.last_answer_at ? c.last_answer_at.replace('T', ' ').replace(/\.\d+Z$|Z$/, '') : '–',
        'time');
      cell(tr, c.unresponsive ? 'unresponsive' : c.pending_seq ? 'shrinking' : 'ok',
        c.unresponsive ? 'lv-critical' : '');
      tbody.appendChild(tr);
    }
    $('no-clients').hidden = clients.length > 0;
  }

  /* ---- main --------------------------------------------------------------------- */

  function render() {
    renderStatus();
    renderChart();
    renderTable();
    renderClients();
    document.body.dataset.polls = st.polls;
    document.body.dataset.failures = st.failures;
  }

  function markerKey(ev) {
    const g = ev.target.closest ? ev.target.closest('.marker') : null;
    return g ? g.dataset.key : null;
  }

  function start() {
    const svg = $('chart');
    st.chartBase = el('g', { class: 'base' }, svg);
    st.markerLayer = el('g', { class: 'markers' }, svg);
    st.markerLayer.addEventListener('click', (ev) => {
      const key = markerKey(ev);
      if (key) select(key);
    });
    st.markerLayer.addEventListener('keydown', (ev) => {
      const key = markerKey(ev);
      if (key && (ev.key === 'Enter' || ev.key === ' ')) {
        ev.preventDefault();
        select(key);
      }
    });
    renderLegend();
    $('window').addEventListener('change', renderChart);
    let pending = false;
    window.addEventListener('resize', () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => {
        pending = false;
        renderChart();
      });
    });
    render();
    poll();
  }

  start();
})();
