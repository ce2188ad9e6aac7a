// metric-gate cardinality explorer. Plain script, no dependencies: reads the JSON embedded in
// the page, draws the metrics, and runs what-ifs (server mode: asks /analyze?...&format=json;
// offline: combines the precomputed single-label runs where that is exact).
'use strict';
(function () {
  const D = JSON.parse(document.getElementById('explorer-data').textContent);
  const P = D.profile || { totals: { series: 0, metrics: 0, bytes: 0, series_not_listed: 0 }, metrics: [] };
  const OFF = D.offline;
  const SERVER = D.mode === 'server';
  const PAGE = 200;

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  };
  const int = (n) => Math.round(n).toLocaleString('en-US');
  const bytes = (n) => {
    if (n < 1024) return n + ' B';
    const units = ['KiB', 'MiB', 'GiB', 'TiB'];
    let v = n, u = -1;
    do { v /= 1024; u++; } while (v >= 1024 && u < units.length - 1);
    return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + ' ' + units[u];
  };
  const pct = (before, after) => {
    if (!before) return '';
    const d = (after - before) / before * 100;
    if (Math.abs(d) < 0.05) return '±0%';
    return (d > 0 ? '+' : '−') + Math.abs(d).toFixed(Math.abs(d) < 10 ? 1 : 0) + '%';
  };
  const setNum = (id, value, text) => {
    const e = $(id);
    if (value === null || value === undefined) { e.textContent = '—'; e.dataset.value = ''; return; }
    e.textContent = text === undefined ? int(value) : text;
    e.dataset.value = String(value);
  };
  const typeClass = (t) => ['counter', 'gauge', 'histogram', 'summary'].includes(t) ? 't-' + t : 't-other';
  // What metric-gate serves when several inputs fall into one series of a metric, by its
  // family's TYPE (docs/aggregation.md): shown on the TYPE badge.
  const summedAs = (m) => {
    const suffix = m.name.startsWith(m.family) ? m.name.slice(m.family.length) : '';
    if (suffix === '_created') return 'the earliest creation time (never a sum)';
    switch (m.type) {
      case 'counter':
        return 'the sum, kept monotonic across restarts, departures and timeouts';
      case 'histogram':
        return suffix === '_bucket'
          ? 'the sum of the bounds common to all inputs, kept monotonic'
          : 'the sum, kept monotonic (the histogram resets as a whole)';
      case 'summary':
        return suffix === '_sum' || suffix === '_count'
          ? 'the sum, kept monotonic'
          : 'quantiles: not served (a quantile cannot be summed)';
      case 'gauge':
      case 'gaugehistogram':
        return 'the sum, unless an aggregation rule or a built-in rule (per-process gauges) says otherwise';
      case 'info':
      case 'stateset':
        return 'the max (1 when some input is 1)';
      default:
        return 'the plain sum (untyped: not kept monotonic)';
    }
  };

  // ---- Label index: every label name with the metrics and series that carry it.
  const labels = new Map();
  for (const m of P.metrics) {
    for (const l of m.labels) {
      let e = labels.get(l.name);
      if (!e) labels.set(l.name, e = { name: l.name, metrics: 0, series: 0 });
      e.metrics++;
      e.series += l.series;
    }
  }
  // Labels whose drop sums what must not be summed.
  const BOUNDS = {
    le: 'le is a histogram bucket bound: dropping it adds the buckets together, which no query can use',
    quantile: 'quantile is a summary quantile: dropping it adds quantiles together, which no query can use',
  };
  const labelNames = [...labels.values()].sort((a, b) => b.series - a.series || (a.name < b.name ? -1 : 1));

  // ---- The same text as drop_config_yaml in src/explorer/whatif.rs.
  const reEscape = (s) => s.replace(/[\\.+*?()|[\]{}^$#&\-~]/g, '\\$&');
  const RESERVED = ['null', 'true', 'false', 'yes', 'no', 'on', 'off', 'y', 'n'];
  function dropYaml(names) {
    const re = names.map(reEscape).join('|');
    const bare = /^[A-Za-z_][A-Za-z0-9_|]*$/.test(re) && !RESERVED.includes(re.toLowerCase());
    return 'metric_relabel_configs:\n  - action: labeldrop\n    regex: ' + (bare ? re : JSON.stringify(re)) + '\n';
  }

  // ---- State, kept in the URL (?drop=… on a server, #drop=… in a file).
  const state = {
    tab: 'drop', drop: [], relabel: '', search: '', sort: 'series', shown: PAGE, result: null, seq: 0,
    open: new Set(P.metrics.length ? [P.metrics[0].name] : []),
  };

  function readUrl() {
    const q = new URLSearchParams(location.search);
    const h = new URLSearchParams(location.hash.replace(/^#/, ''));
    const get = (k) => (h.has(k) ? h.get(k) : q.get(k));
    const drop = [];
    for (const s of (get('drop') || '').split(',')) {
      const t = s.trim();
      if (t && !drop.includes(t)) drop.push(t);
    }
    state.drop = drop;
    const relabel = get('relabel');
    state.relabel = relabel || '';
    state.tab = relabel && relabel.trim() ? 'yaml' : 'drop';
  }

  function queryString() {
    const q = new URLSearchParams();
    if (state.tab === 'yaml' && state.relabel.trim()) q.set('relabel', state.relabel);
    else if (state.drop.length) q.set('drop', state.drop.join(','));
    return q.toString().replace(/%2C/gi, ',');
  }

  function writeUrl() {
    const s = queryString();
    const url = SERVER
      ? location.pathname + (s ? '?' + s : '')
      : location.pathname + location.search + (s ? '#' + s : '');
    try { history.replaceState(null, '', url); } catch (e) { if (!SERVER) location.hash = s; }
  }

  // ---- What-if: offline combination of precomputed single-label runs.
  function offlineWhatIf(drop) {
    const base = OFF.baseline;
    const skipped = new Set(OFF.skipped);
    const names = new Set(Object.keys(base.metrics));
    for (const m of P.metrics) names.add(m.name);
    const byName = new Map(P.metrics.map((m) => [m.name, m]));
    const unsure = [];
    const after = new Map();
    for (const name of names) {
      const m = byName.get(name);
      const hits = drop.filter((l) => OFF.singles[l] && name in OFF.singles[l].metrics);
      const blind = drop.filter((l) => skipped.has(l) && m && m.labels.some((x) => x.name === l));
      if (hits.length + blind.length > 1 || blind.length) { unsure.push(name); continue; }
      after.set(name, hits.length ? OFF.singles[hits[0]].metrics[name] : (base.metrics[name] || [0, 0]));
    }
    let seriesAfter = null, bytesAfter = null, summed = null;
    if (!unsure.length) {
      const known = drop.filter((l) => OFF.singles[l]);
      if (known.length === 1 && drop.every((l) => OFF.singles[l] || !labels.has(l))) {
        const s = OFF.singles[known[0]];
        seriesAfter = s.series; bytesAfter = s.bytes; summed = s.summed;
      } else {
        seriesAfter = base.series; bytesAfter = base.bytes; summed = base.summed;
        for (const [name, [s, b]] of after) {
          const [bs, bb] = base.metrics[name] || [0, 0];
          seriesAfter += s - bs; bytesAfter += b - bb; summed += bs - s;
        }
      }
    }
    const metrics = P.metrics.map((m) => {
      const a = after.get(m.name);
      return { name: m.name, series_before: m.series, bytes_before: m.bytes,
        series_after: a ? a[0] : null, bytes_after: a ? a[1] : null };
    });
    return {
      config: dropYaml(drop),
      totals: { series_before: P.totals.series, bytes_before: P.totals.bytes,
        series_after: seriesAfter, bytes_after: bytesAfter, summed: summed },
      metrics: metrics,
      unsure: unsure,
    };
  }

  // ---- What-if: ask the server.
  function serverWhatIf() {
    const q = queryString();
    const seq = ++state.seq;
    setStatus('Running the pipeline…', '');
    fetch(location.pathname + '?' + q + (q ? '&' : '') + 'format=json', { headers: { Accept: 'application/json' } })
      .then((r) => r.json())
      .then((data) => {
        if (seq !== state.seq) return;
        if (data.error) { state.result = null; showError(data.error); renderAll(); return; }
        state.result = data.whatif;
        renderAll();
      })
      .catch((e) => { if (seq === state.seq) setStatus('The server did not answer: ' + e, 'error'); });
  }

  function run(initial) {
    writeUrl();
    const wanted = state.tab === 'yaml' ? state.relabel.trim() : state.drop.length;
    if (!wanted) { state.result = null; setStatus(state.tab === 'yaml' ? 'Paste a config and press Run.' : 'Pick labels to drop.', ''); renderAll(); return; }
    if (!SERVER) {
      if (state.tab === 'yaml') {
        state.result = null;
        setStatus('A pasted config needs the server: open /analyze on a running metric-gate, or run\nmetric-gate --file FILE --apply --relabel-file config.yaml', 'warn');
        renderAll();
        return;
      }
      state.result = offlineWhatIf(state.drop);
      if (state.result.unsure.length) {
        setStatus('These labels are dropped together from ' + state.result.unsure.length +
          ' metric(s); the file has each label\'s numbers alone. Run with the server for combinations (/analyze?drop=' +
          state.drop.join(',') + '), or metric-gate --file FILE --apply with the config below.', 'warn');
      } else {
        setStatus('Computed by the relabel pipeline when this file was written.', '');
      }
      renderAll();
      return;
    }
    if (initial && (D.whatif || D.error)) {
      state.result = D.whatif;
      if (D.error) showError(D.error); else setStatus('Computed by the relabel pipeline on the upstream response.', '');
      renderAll();
      return;
    }
    serverWhatIf();
  }

  function setStatus(text, kind) {
    const s = $('whatif-status');
    s.textContent = text;
    s.className = 'status' + (kind ? ' ' + kind : '');
    s.onclick = null;
  }

  function showError(err) {
    const where = err.line ? 'line ' + err.line + (err.column ? ', column ' + err.column : '') + ': ' : '';
    setStatus(where + err.message, 'error');
    if (err.kind === 'config' && err.line) {
      $('whatif-status').onclick = () => selectLine($('yaml-input'), err.line);
    }
  }

  function selectLine(area, line) {
    const lines = area.value.split('\n');
    let start = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) start += lines[i].length + 1;
    const end = start + (lines[line - 1] || '').length;
    area.focus();
    area.setSelectionRange(start, end);
  }

  // ---- Drawing.
  function renderTotals() {
    const t = P.totals;
    setNum('total-series', t.series);
    setNum('total-metrics', t.metrics);
    setNum('total-bytes', t.bytes, bytes(t.bytes));
    $('total-bytes').title = int(t.bytes) + ' bytes';
    setNum('total-labels', labels.size);
    $('source').textContent = (SERVER ? 'upstream ' : 'file ') + D.source;
    const notes = $('notes');
    notes.textContent = '';
    for (const n of D.notes || []) notes.appendChild(el('div', 'note', n));
    if (t.series_not_listed) notes.appendChild(el('div', 'note', int(t.series_not_listed) + ' series of further metric names are counted in the totals only (memory budget).'));
    if (!D.profile && D.error && !D.whatif) notes.appendChild(el('div', 'note', D.error.message));
  }

  function renderResult() {
    const r = state.result;
    const t = r ? r.totals : { series_before: P.totals.series, bytes_before: P.totals.bytes };
    setNum('whatif-series-before', t.series_before);
    setNum('whatif-bytes-before', t.bytes_before, bytes(t.bytes_before));
    setNum('whatif-series-after', r ? t.series_after : null);
    setNum('whatif-bytes-after', r ? t.bytes_after : null, r && t.bytes_after !== null ? bytes(t.bytes_after) : undefined);
    setNum('whatif-summed', r ? t.summed : null);
    $('whatif-series-delta').textContent = r && t.series_after !== null ? pct(t.series_before, t.series_after) : '';
    $('whatif-bytes-delta').textContent = r && t.bytes_after !== null ? pct(t.bytes_before, t.bytes_after) : '';
    const card = $('card-after');
    card.hidden = !(r && t.series_after !== null);
    if (!card.hidden) {
      const v = $('card-series-after');
      v.textContent = int(t.series_after);
      v.appendChild(el('small', null, pct(t.series_before, t.series_after)));
    }
    let config = '';
    if (r && r.config) config = r.config;
    else if (state.tab === 'yaml') config = state.relabel;
    else if (state.drop.length) config = dropYaml(state.drop);
    $('whatif-config').textContent = config || '# nothing to drop yet';
  }

  function renderLabelList() {
    const list = $('label-list');
    const scroll = list.scrollTop;
    list.textContent = '';
    const base = OFF ? OFF.baseline.series : 0;
    const all = labelNames.slice();
    if (OFF) {
      const saved = (l) => (OFF.singles[l.name] ? base - OFF.singles[l.name].series : -1);
      all.sort((a, b) => saved(b) - saved(a) || b.series - a.series || (a.name < b.name ? -1 : 1));
    }
    for (const name of state.drop) if (!labels.has(name)) all.push({ name: name, metrics: 0, series: 0 });
    for (const l of all) {
      const row = el('label', 'lrow');
      const box = el('input');
      box.type = 'checkbox';
      box.checked = state.drop.includes(l.name);
      box.addEventListener('change', () => toggleDrop(l.name, box.checked));
      const info = el('span', 'li');
      const single = OFF && OFF.singles[l.name];
      if (single && single.series < base) {
        info.appendChild(el('b', null, '−' + int(base - single.series)));
        info.appendChild(document.createTextNode(' · '));
      }
      info.appendChild(document.createTextNode(l.metrics ? l.metrics + ' metric' + (l.metrics > 1 ? 's' : '') : 'not in body'));
      row.title = int(l.series) + ' series carry ' + l.name;
      const ln = el('span', 'ln', l.name);
      if (BOUNDS[l.name]) {
        ln.appendChild(el('span', 'risky', ' ⚠'));
        row.title = BOUNDS[l.name];
      }
      row.append(box, ln, info);
      list.appendChild(row);
    }
    if (!all.length) list.appendChild(el('div', 'empty', 'No labels in this body.'));
    list.scrollTop = scroll;
  }

  function toggleDrop(name, on) {
    state.tab = 'drop';
    const i = state.drop.indexOf(name);
    if (on && i < 0) state.drop.push(name);
    if (!on && i >= 0) state.drop.splice(i, 1);
    renderTabs();
    renderLabelList();
    run(false);
  }

  function renderTabs() {
    $('tab-drop').hidden = state.tab !== 'drop';
    $('tab-yaml').hidden = state.tab !== 'yaml';
    $('tab-drop-btn').classList.toggle('active', state.tab === 'drop');
    $('tab-yaml-btn').classList.toggle('active', state.tab === 'yaml');
  }

  function matches(m, q) {
    if (!q) return true;
    if (m.name.toLowerCase().includes(q)) return true;
    return m.labels.some((l) => l.name.toLowerCase().includes(q));
  }

  function renderMetrics() {
    const list = $('metric-list');
    list.textContent = '';
    const q = state.search.trim().toLowerCase();
    const r = state.result;
    const after = new Map();
    if (r) for (const c of r.metrics) after.set(c.name, c);
    let rows = P.metrics.filter((m) => matches(m, q));
    const saved = (m) => { const c = after.get(m.name); return c && c.series_after !== null ? m.series - c.series_after : -1; };
    if (state.sort === 'bytes') rows.sort((a, b) => b.bytes - a.bytes);
    else if (state.sort === 'name') rows.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    else if (state.sort === 'saved') rows.sort((a, b) => saved(b) - saved(a) || b.series - a.series);
    $('match-count').textContent = q ? rows.length + ' of ' + P.metrics.length + ' metrics' : P.metrics.length + ' metrics';
    const max = P.metrics.reduce((x, m) => Math.max(x, m.series), 1);
    const digits = int(max).length;
    $('metrics').style.setProperty('--sw', (r ? 2 * digits + 3 : digits + 1) + 'ch');
    const shown = rows.slice(0, state.shown);
    for (const m of shown) list.appendChild(metricRow(m, after.get(m.name), max, state.open.has(m.name)));
    if (!rows.length) list.appendChild(el('div', 'empty', P.metrics.length ? 'No metric matches.' : 'No series in this body.'));
    const more = $('show-more');
    more.hidden = rows.length <= state.shown;
    more.textContent = 'Show all ' + int(rows.length) + ' metrics';
  }

  // A long name is cut in its head, never in its tail, where the names of one family differ:
  // `nginx_ingress_contr…request_duration_seconds_bucket`.
  function nameParts(name, keep) {
    if (name.length <= keep) return ['', name];
    let cut = name.length - keep;
    const us = name.indexOf('_', cut);
    if (us > 0 && us < name.length - 12) cut = us;
    return [name.slice(0, cut), name.slice(cut)];
  }

  function metricRow(m, change, max, open) {
    const d = el('details', 'metric');
    d.dataset.metric = m.name;
    const s = el('summary');
    const series = el('span', 'num series');
    const before = el('span', 'before', int(m.series));
    before.dataset.value = String(m.series);
    series.appendChild(before);
    const bar = el('span', 'bar' + (change ? ' whatif' : ''));
    const b = el('span', 'b');
    b.style.width = Math.max(0.6, m.series / max * 100) + '%';
    bar.appendChild(b);
    if (change) {
      series.appendChild(el('span', 'sep', '→'));
      const a = el('span', 'after', change.series_after === null ? '?' : int(change.series_after));
      if (change.series_after === null) a.className = 'after unsure';
      else if (change.series_after === m.series) a.className = 'after same';
      a.dataset.value = change.series_after === null ? '' : String(change.series_after);
      series.appendChild(a);
      if (change.series_after !== null) {
        const af = el('span', 'a');
        af.style.width = Math.max(change.series_after ? 0.6 : 0, change.series_after / max * 100) + '%';
        bar.appendChild(af);
      }
    }
    const name = el('span', 'name');
    name.title = m.name + (m.family !== m.name ? ' (family ' + m.family + ')' : '');
    const [head, tail] = nameParts(m.name, 32);
    const suffix = m.family !== m.name && m.name.startsWith(m.family) ? m.name.slice(m.family.length) : '';
    const t = el('span', 'tail');
    if (suffix && tail.length > suffix.length) {
      t.append(tail.slice(0, tail.length - suffix.length), el('span', 'fam', suffix));
    } else {
      t.textContent = tail;
    }
    name.append(el('span', 'head', head), t);
    const type = el('span', 'type ' + typeClass(m.type), m.type);
    type.title = 'TYPE ' + m.type + '. Several inputs summed into one series: ' + summedAs(m);
    const by = el('span', 'num bytes', change && change.bytes_after !== null ? bytes(change.bytes_after) : bytes(m.bytes));
    by.title = change && change.bytes_after !== null
      ? int(m.bytes) + ' → ' + int(change.bytes_after) + ' bytes of sample lines'
      : int(m.bytes) + ' bytes of sample lines';
    s.append(series, bar, name, type, by);
    d.appendChild(s);
    let filled = false;
    const fill = () => { if (!filled) { filled = true; d.appendChild(metricDetail(m)); } };
    d.addEventListener('toggle', () => {
      if (d.open) { fill(); state.open.add(m.name); } else state.open.delete(m.name);
    });
    if (open) { fill(); d.open = true; }
    return d;
  }

  function metricDetail(m) {
    const box = el('div', 'detail');
    const head = el('p', 'help');
    head.appendChild(el('span', 'full', m.name));
    if (m.help) head.appendChild(document.createTextNode(' — ' + m.help));
    box.appendChild(head);
    if (!m.labels.length) { box.appendChild(el('div', 'muted', 'No labels.')); return box; }
    const t = el('table', 'ltable');
    const hr = el('tr');
    for (const h of ['label', 'distinct', '', 'in series', 'values', '']) hr.appendChild(el('th', null, h));
    t.appendChild(hr);
    const maxDistinct = m.labels.reduce((x, l) => Math.max(x, l.distinct), 1);
    for (const l of m.labels) {
      const tr = el('tr');
      tr.appendChild(el('td', null)).appendChild(el('span', 'lname' + (state.drop.includes(l.name) && state.tab === 'drop' ? ' dropped' : ''), l.name));
      tr.appendChild(el('td', 'n', (l.exact ? '' : '≥') + int(l.distinct)));
      const bt = el('td', 'lb');
      const bar = el('span', 'bar');
      bar.style.display = 'block';
      const b = el('span', 'b');
      b.style.width = Math.max(1, l.distinct / maxDistinct * 100) + '%';
      bar.appendChild(b);
      bt.appendChild(bar);
      tr.appendChild(bt);
      tr.appendChild(el('td', 'n', l.series === m.series ? 'all' : int(l.series)));
      const vals = el('td');
      if (l.values) {
        const chips = el('div', 'chips');
        for (const v of l.values) chips.appendChild(el('span', 'chip', v)).title = v;
        vals.appendChild(chips);
      } else {
        vals.appendChild(el('span', 'muted', 'too many to list'));
      }
      tr.appendChild(vals);
      const td = el('td');
      const on = state.drop.includes(l.name);
      const tg = el('button', 'toggle' + (on ? ' on' : ''), on ? 'dropped' : 'drop');
      tg.type = 'button';
      tg.addEventListener('click', (e) => { e.preventDefault(); toggleDrop(l.name, !state.drop.includes(l.name)); });
      td.appendChild(tg);
      tr.appendChild(td);
      t.appendChild(tr);
    }
    box.appendChild(t);
    if (m.labels_not_listed) box.appendChild(el('div', 'muted', m.labels_not_listed + ' more label names not profiled (memory budget).'));
    return box;
  }

  function renderAll() {
    renderResult();
    renderMetrics();
  }

  // ---- Wiring.
  $('search').addEventListener('input', (e) => { state.search = e.target.value; state.shown = PAGE; renderMetrics(); });
  $('sort').addEventListener('change', (e) => { state.sort = e.target.value; renderMetrics(); });
  $('show-more').addEventListener('click', () => { state.shown = Infinity; renderMetrics(); });
  $('clear-drop').addEventListener('click', () => { state.drop = []; renderLabelList(); run(false); });
  $('tab-drop-btn').addEventListener('click', () => { state.tab = 'drop'; renderTabs(); run(false); });
  $('tab-yaml-btn').addEventListener('click', () => {
    state.tab = 'yaml';
    const area = $('yaml-input');
    if (!area.value.trim() && state.drop.length) area.value = dropYaml(state.drop);
    renderTabs();
    area.focus();
  });
  $('yaml-run').addEventListener('click', () => { state.relabel = $('yaml-input').value; run(false); });
  $('yaml-input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { state.relabel = e.target.value; run(false); }
  });
  $('copy-config').addEventListener('click', () => {
    const text = $('whatif-config').textContent;
    const done = () => { $('copy-config').textContent = 'Copied'; setTimeout(() => { $('copy-config').textContent = 'Copy'; }, 1200); };
    const fallback = () => {
      const r = document.createRange();
      r.selectNodeContents($('whatif-config'));
      const sel = getSelection();
      sel.removeAllRanges();
      sel.addRange(r);
      try { document.execCommand('copy'); done(); } catch (e) { /* selected for the user to copy */ }
    };
    if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(done, fallback);
    else fallback();
  });
  window.addEventListener('hashchange', () => { if (!SERVER) { readUrl(); renderTabs(); renderLabelList(); run(false); } });

  readUrl();
  $('yaml-input').value = state.relabel;
  renderTotals();
  renderTabs();
  renderLabelList();
  run(true);
})();
