// convergent inspector: a static page over the JSON API.
//
// Everything shown comes from a spec, which is untrusted: data is only ever
// inserted as text (el() builds nodes, strings become text nodes); this file
// never assigns HTML to an element, never builds markup from strings, never evals.
"use strict";

(function () {
  const main = document.getElementById("main");
  const tabsNav = document.getElementById("tabs");
  const specsNav = document.getElementById("specs");
  const cache = new Map();
  let specs = [];
  let player = null; // {spec, index, frames, pos}
  let replicasEnabled = false;
  let poll = null; // the Replicas tab's refresh timer

  // ------------------------------------------------------------ helpers

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function fmt(value) {
    if (value === true) return "true";
    if (value === false) return "false";
    if (value === null || value === undefined) return "—";
    return String(value);
  }

  function link(hash, text, attrs) {
    return el("a", Object.assign({ href: hash }, attrs || {}), text);
  }

  async function api(path) {
    if (cache.has(path)) return cache.get(path);
    const response = await fetch(path, { headers: { Accept: "application/json" } });
    let body;
    try {
      body = await response.json();
    } catch (err) {
      throw new Error(`${path}: ${response.status} ${response.statusText}`);
    }
    if (!response.ok) throw new Error(body && body.error ? body.error : `${path}: ${response.status}`);
    if (!path.includes("/states")) cache.set(path, body);
    return body;
  }

  function show(...nodes) {
    main.replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
  }

  function badge(kind, text, id) {
    return el("span", { class: `badge ${kind}`, id: id || null }, text);
  }

  function verdictBadge(ok, id) {
    if (ok === null || ok === undefined) return badge("skip", "skipped", id);
    return ok ? badge("pass", "pass", id) : badge("fail", "fail", id);
  }

  function table(head, rows, attrs) {
    return el("table", attrs || {},
      el("thead", {}, el("tr", {}, head.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows));
  }

  // ------------------------------------------------------------ routing

  function route() {
    const hash = location.hash.replace(/^#\/?/, "");
    const [path, queryString] = hash.split("?");
    const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
    const params = new URLSearchParams(queryString || "");
    if (parts[0] !== "m" || parts.length < 2) {
      return { spec: specs.length ? specs[0].id : 0, view: "report", parts: [], params };
    }
    return { spec: Number(parts[1]), view: parts[2] || "report", parts: parts.slice(3), params };
  }

  function renderNav(r) {
    specsNav.replaceChildren(...specs.map((s) =>
      link(`#/m/${s.id}/report`, `${s.machine} (${s.source})`,
        { class: s.id === r.spec ? "active" : null, "data-verdict": s.verdict })));
    const tabs = [["report", "Report"], ["player", "Counterexample"],
      ["explorer", "Explorer"], ["diagram", "Diagram"]];
    if (replicasEnabled) tabs.push(["replicas", "Replicas"]);
    tabsNav.replaceChildren(...tabs.map(([view, label]) =>
      link(`#/m/${r.spec}/${view}`, label, {
        class: r.view === view || (view === "explorer" && r.view === "state") ? "active" : null,
        id: `tab-${view}`,
      })));
  }

  async function render() {
    const r = route();
    renderNav(r);
    if (poll !== null && r.view !== "replicas") {
      clearInterval(poll);
      poll = null;
    }
    try {
      if (r.view === "report") await renderReport(r.spec);
      else if (r.view === "player") await renderPlayer(r.spec, Number(r.parts[0] || 0), Number(r.parts[1] || 0));
      else if (r.view === "explorer") await renderExplorer(r.spec, r.params);
      else if (r.view === "state") await renderState(r.spec, Number(r.parts[0]));
      else if (r.view === "diagram") await renderDiagram(r.spec);
      else if (r.view === "replicas") await renderReplicas();
      else show(el("p", { class: "error" }, `unknown view ${r.view}`));
    } catch (err) {
      show(el("p", { class: "error", id: "error" }, err.message));
    }
  }

  // ------------------------------------------------------------ report

  async function renderReport(spec) {
    const rep = await api(`/api/specs/${spec}/report`);
    const cexs = await api(`/api/specs/${spec}/counterexamples`);
    const checks = [];
    checks.push(el("tr", {}, el("td", {}, "WFC"), el("td", {}, verdictBadge(rep.wfc.ok)),
      el("td", {}, rep.wfc.ok ? `repairs end within ${rep.wfc.max_depth} step(s)` :
        "repairs loop: normalization does not terminate")));
    const cc1 = rep.cc1;
    checks.push(el("tr", {}, el("td", {}, "CC1"), el("td", {}, verdictBadge(cc1.ok)),
      el("td", {}, cc1.ok === null || cc1.ok === undefined ? cc1.skipped :
        [`${cc1.pairs} pair(s) checked, scope ${cc1.scope}`,
          cc1.failing_pairs && cc1.failing_pairs.length ?
            el("div", {}, "failing: ", cc1.failing_pairs.map((p) => el("code", {}, `[${p[0]}, ${p[1]}] `))) : null,
          cc1.ok_all_valid === false && cc1.ok ? el("div", { class: "muted" }, "fails at some unreachable valid state") : null])));
    const cc2 = rep.cc2;
    checks.push(el("tr", {}, el("td", {}, "CC2"),
      el("td", {}, cc2.ok === false && !rep.strict ? badge("info", "fails · not required") : verdictBadge(cc2.ok)),
      el("td", {}, cc2.ok === null || cc2.ok === undefined ? cc2.skipped :
        (rep.strict ? "required (--strict)" : "required only with --strict"))));
    const parts = [
      el("h2", {}, el("span", { id: "machine-name" }, rep.machine),
        verdictBadge(rep.verdict === "pass", "verdict")),
      el("p", { id: "summary" }, rep.summary),
      el("p", { class: "muted" }, `source: `, el("code", {}, rep.source),
        ` · scope ${rep.scope}${rep.strict ? " · strict" : ""} · policy ${rep.policy_digest.slice(0, 12)}…`),
    ];
    if (cexs.length && cexs[0].blocking) {
      parts.push(el("p", {}, el("button", {
        class: "primary", id: "play",
        onclick: () => { location.hash = `#/m/${spec}/player/0/0`; },
      }, `▶ Play the counterexample (${cexs[0].title})`)));
    }
    const info = cexs.map((c, i) => [c, i]).filter(([c]) => !c.blocking);
    if (info.length) {
      parts.push(el("p", { class: "muted", id: "informational" }, "Not required by this check, shown for information: ",
        info.map(([c, i]) => [link(`#/m/${spec}/player/${i}/0`, `${c.kind}: ${c.title}`), " "])));
    }
    const s = rep.states;
    parts.push(el("div", { class: "grid" },
      el("div", { class: "panel" }, el("h3", {}, "Checks"), table(["check", "verdict", "detail"], checks, { id: "checks" })),
      el("div", { class: "panel" }, el("h3", {}, "States"), table(["", "count"], [
        el("tr", {}, el("td", {}, "total"), el("td", { class: "num" }, s.total)),
        el("tr", {}, el("td", {}, "valid"), el("td", { class: "num" }, s.valid)),
        el("tr", {}, el("td", {}, "reachable"), el("td", { class: "num", id: "reachable-count" }, fmt(s.reachable))),
      ]), el("h3", {}, "Vars"), table(["var", "kind", "domain"], rep.vars.map((v) =>
        el("tr", {}, el("td", {}, el("code", {}, v.name)), el("td", {}, v.kind),
          el("td", {}, v.kind === "int" ? `[${v.range[0]}, ${v.range[1]}]` : v.kind === "bool" ? "true, false" : v.values.join(", "))))))));
    parts.push(el("h3", {}, "Event footprints"), table(["event", "reads", "writes"],
      Object.entries(rep.footprints).map(([name, fp]) => el("tr", {},
        el("td", {}, el("code", {}, name)), el("td", {}, fp.reads.join(", ")),
        el("td", {}, fp.writes.join(", ")))), { id: "footprints" }));
    const invs = Object.entries(rep.invariant_footprints);
    if (invs.length) {
      parts.push(el("h3", {}, "Invariants"), table(["invariant", "watches", "repair writes"],
        invs.map(([name, fp]) => el("tr", {}, el("td", {}, el("code", {}, name)),
          el("td", {}, fp.watches.join(", ")), el("td", {}, fp.repair_writes.join(", "))))));
    }
    if (rep.findings) {
      const f = rep.findings;
      const items = [];
      if (f.never_fire.length) items.push(el("li", {}, "events that never fire: ", f.never_fire.join(", ")));
      if (f.never_fail.length) items.push(el("li", {}, "invariants never repaired from a reachable state: ", f.never_fail.join(", ")));
      for (const sat of f.saturating) {
        items.push(el("li", {}, `${sat.event ? "event " + sat.event : "repair " + sat.repair} saturates `,
          sat.vars.join(", ")));
      }
      if (f.unreachable_valid) items.push(el("li", {}, `${f.unreachable_valid} valid state(s) are unreachable`));
      if (items.length) parts.push(el("h3", {}, "Findings"), el("ul", {}, items));
    }
    if (rep.warnings.length) {
      parts.push(el("h3", {}, "Warnings"), el("ul", {}, rep.warnings.map((w) => el("li", {}, w))));
    }
    parts.push(el("h3", {}, "Timing"), table(["phase", "seconds"],
      Object.entries(rep.seconds).map(([phase, secs]) => el("tr", {},
        el("td", {}, phase), el("td", { class: "num" }, Number(secs).toFixed(4)))), { id: "timing" }));
    show(...parts);
  }

  // ------------------------------------------------------------ state cards

  function card(state, caption, opts) {
    const o = opts || {};
    const prev = o.prev ? o.prev.values : null;
    const rows = Object.entries(state.values).map(([name, value]) => {
      let cls = null;
      if (o.differs && o.differs.includes(name)) cls = "differs";
      else if (prev && prev[name] !== value) cls = "changed";
      return el("tr", { class: cls, "data-var": name }, el("td", {}, name), el("td", { class: "mono" }, fmt(value)));
    });
    return el("div", { class: `card${state.valid ? "" : " invalid"}`, "data-state": state.id },
      el("div", { class: "cap" }, caption, state.valid ? "" : " · invalid", ` · #${state.id}`),
      el("table", {}, el("tbody", {}, rows)), o.extra || null);
  }

  function arrow(label, kind, vertical) {
    if (vertical) {
      return el("div", { class: `varrow ${kind || ""}` }, el("span", { class: "line" }), el("span", {}, `▼ ${label}`));
    }
    return el("div", { class: `arrow ${kind || ""}` }, el("span", {}, label), el("div", { class: "line" }), el("span", {}, "▶"));
  }

  // one transition: before -> raw -> repair ... -> after
  function chain(t, opts) {
    const o = opts || {};
    const nodes = [];
    if (!o.skipBefore) nodes.push(card(t.before, o.beforeCaption || "before"));
    let prev = t.before;
    if (t.event !== null) {
      if (!t.fired) {
        nodes.push(arrow(`${t.event} (guard false: no change)`, "noop", o.vertical));
        nodes.push(card(t.after, o.afterCaption || "after", { prev, differs: o.differs }));
        return el("div", { class: o.vertical ? "vchain" : "chain" }, nodes);
      }
      nodes.push(arrow(t.event, "event", o.vertical));
      const last = t.repairs.length === 0;
      nodes.push(card(t.raw, last ? (o.afterCaption || "after") : "after the event", { prev, differs: last ? o.differs : null }));
      prev = t.raw;
    }
    t.repairs.forEach((r, i) => {
      nodes.push(arrow(`repair ${r.invariant}`, "repair", o.vertical));
      const last = i === t.repairs.length - 1;
      nodes.push(card(r.state, last ? (o.afterCaption || "after repairs") : "repaired", { prev, differs: last ? o.differs : null }));
      prev = r.state;
    });
    if (t.loops) nodes.push(el("span", { class: "problem" }, "⟲ back to a state already seen: the repairs loop"));
    return el("div", { class: o.vertical ? "vchain" : "chain" }, nodes);
  }

  // ------------------------------------------------------------ player

  function framesOf(cex) {
    const frames = [{ label: "Initial state", kind: "start" }];
    cex.trace.forEach((t, i) => frames.push({ label: `${i + 1}. ${t.event === null ? "normalize" : t.event}`, kind: "step", t }));
    if (cex.kind === "WFC") {
      frames.push({ label: "The repair cycle", kind: "cycle" });
    } else {
      frames.push({ label: cex.kind === "CC2" ? "The invalid state" : "Where the orders split", kind: "at" });
      frames.push({ label: "Both orders side by side", kind: "orders" });
    }
    return frames;
  }

  async function renderPlayer(spec, index, pos) {
    const cexs = await api(`/api/specs/${spec}/counterexamples`);
    if (!cexs.length) {
      show(el("h2", {}, "No counterexample"), el("p", { id: "no-cex" }, "Every check passed: there is nothing to replay."));
      return;
    }
    const clamp = (n, hi) => (Number.isInteger(n) ? Math.min(Math.max(n, 0), hi) : 0);
    const i = clamp(index, cexs.length - 1);
    const cex = cexs[i];
    const frames = framesOf(cex);
    player = { spec, index: i, frames, pos: clamp(pos, frames.length - 1), cex, cexs };
    drawPlayer();
  }

  function go(pos) {
    if (!player) return;
    const p = Math.min(Math.max(pos, 0), player.frames.length - 1);
    history.replaceState(null, "", `#/m/${player.spec}/player/${player.index}/${p}`);
    player.pos = p;
    drawPlayer();
  }

  function drawPlayer() {
    const { cex, cexs, frames, pos } = player;
    const picker = cexs && cexs.length > 1 ? el("p", { id: "cex-picker" }, "Counterexamples: ",
      cexs.map((c, i) => [i ? " · " : "", link(`#/m/${player.spec}/player/${i}/0`, `${c.kind}${c.blocking ? "" : " (not required)"}: ${c.title}`,
        { class: i === player.index ? "current" : null })])) : null;
    const frame = frames[pos];
    const controls = el("div", { class: "controls" },
      el("button", { id: "first", onclick: () => go(0), disabled: pos === 0 }, "« First"),
      el("button", { id: "prev", onclick: () => go(pos - 1), disabled: pos === 0 }, "◀ Prev"),
      el("span", { class: "step-label", id: "step-label" }, `Step ${pos} of ${frames.length - 1}`),
      el("button", { id: "next", class: "primary", onclick: () => go(pos + 1), disabled: pos === frames.length - 1 }, "Next ▶"),
      el("button", { id: "last", onclick: () => go(frames.length - 1), disabled: pos === frames.length - 1 }, "Last »"));
    const timeline = el("ol", { class: "timeline", id: "timeline" }, frames.map((f, i) =>
      el("li", {
        class: i === pos ? "current" : null, onclick: () => go(i), "data-frame": i, tabindex: 0, role: "button",
        onkeydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); go(i); } },
      }, f.label)));
    const body = el("div", { id: "frame", "data-kind": frame.kind }, el("h3", { id: "frame-title" }, frame.label), frameBody(cex, frame));
    const problems = cex.problems.length ? el("p", { class: "problem" }, cex.problems.join("; ")) : null;
    show(el("h2", {}, el("span", { id: "cex-title" }, cex.title),
      cex.blocking ? badge("fail", cex.kind) : badge("info", `${cex.kind} · not required`)),
      el("p", { class: "muted", id: "cex-explanation" }, cex.explanation),
      picker, problems, controls,
      el("div", { class: "player" }, timeline, body),
      el("p", { class: "muted" }, "Keys: ← and → step through the trace."));
  }

  function frameBody(cex, frame) {
    if (frame.kind === "start") {
      const note = cex.reachable ? "The run starts here, at the (normalized) initial state."
        : "This state is not reached from the initial state; the check found it among all valid states.";
      return el("div", {}, el("p", {}, note), card(cex.start, cex.reachable ? "initial state" : "state"));
    }
    if (frame.kind === "step") {
      return el("div", {}, chain(frame.t));
    }
    if (frame.kind === "at") {
      const what = cex.kind === "CC2"
        ? `An invalid state where ${cex.orders[0].events[0]} and a repair do not commute.`
        : `Here both ${cex.events[0]} and ${cex.events[1]} can be delivered; replicas may receive them in either order.`;
      return el("div", {}, el("p", {}, what), card(cex.at, "the state"));
    }
    if (frame.kind === "orders") {
      const cols = cex.orders.map((order, k) => {
        const steps = order.steps.map((t, i) => chain(t, {
          skipBefore: i > 0, beforeCaption: "start", vertical: true,
          afterCaption: i === order.steps.length - 1 ? "final" : "after",
          differs: i === order.steps.length - 1 ? cex.differs : null,
        }));
        return el("div", { class: "order", id: `order-${k + 1}` }, el("h4", {}, `Order ${k + 1}: ${order.label}`), steps);
      });
      const diff = cex.differs.length
        ? `The two orders end in different states: they differ in ${cex.differs.join(", ")}.`
        : "The two orders end in the same state.";
      return el("div", {}, el("div", { class: "orders" }, cols), el("p", { class: "verdict-line", id: "differs" }, diff));
    }
    if (frame.kind === "cycle") {
      const nodes = [];
      cex.cycle.forEach((c, i) => {
        nodes.push(card(c.state, i === 0 ? "loops from here" : "repaired", { prev: i ? cex.cycle[i - 1].state : null }));
        nodes.push(arrow(`repair ${c.invariant}`, "repair"));
      });
      nodes.push(el("span", { class: "problem" }, "⟲ back to the first state"));
      return el("div", {}, el("p", {}, "Each repair breaks another invariant; after these repairs the state repeats."),
        el("div", { class: "chain", id: "cycle" }, nodes));
    }
    return el("p", {}, "");
  }

  document.addEventListener("keydown", (ev) => {
    if (!player || route().view !== "player") return;
    if (ev.target instanceof HTMLInputElement) return;
    if (ev.key === "ArrowRight") go(player.pos + 1);
    else if (ev.key === "ArrowLeft") go(player.pos - 1);
  });

  // ------------------------------------------------------------ explorer

  async function renderExplorer(spec, params) {
    const rep = await api(`/api/specs/${spec}/report`);
    const q = params.get("q") || "";
    const page = Number(params.get("page") || 0);
    const input = el("input", { type: "search", id: "query", value: q, placeholder: "e.g. status=paid inventory=0   or   #12", "aria-label": "search states" });
    const form = el("form", {
      id: "search", onsubmit: (ev) => {
        ev.preventDefault();
        location.hash = `#/m/${spec}/explorer?q=${encodeURIComponent(input.value)}&page=0`;
      },
    }, input, " ", el("button", { type: "submit", class: "primary" }, "Search"));
    const head = [el("h2", {}, `Reachable states of `, rep.machine), form];
    if (!rep.explorable) {
      show(...head, el("p", { class: "error" }, "There is no reachable graph: normalization does not terminate (WFC fails)."));
      return;
    }
    let data;
    try {
      data = await api(`/api/specs/${spec}/states?q=${encodeURIComponent(q)}&page=${page}&size=50`);
    } catch (err) {
      show(...head, el("p", { class: "error", id: "error" }, err.message));
      return;
    }
    const names = rep.vars.map((v) => v.name);
    const rows = data.states.map((s) => el("tr", { class: s.id === data.initial ? "initial" : null },
      el("td", { class: "num" }, link(`#/m/${spec}/state/${s.id}`, `#${s.id}`)),
      names.map((n) => el("td", { class: "mono" }, fmt(s.values[n])))));
    const target = (p) => `#/m/${spec}/explorer?q=${encodeURIComponent(q)}&page=${p}`;
    const pager = el("div", { class: "pager" },
      el("button", { id: "page-prev", disabled: page <= 0, onclick: () => { location.hash = target(page - 1); } }, "◀"),
      el("span", { id: "page-label" }, `page ${data.page + 1} of ${data.pages} · ${data.total} matching of ${data.reachable} reachable`),
      el("button", { id: "page-next", disabled: page >= data.pages - 1, onclick: () => { location.hash = target(page + 1); } }, "▶"));
    show(...head, pager, table(["id", ...names], rows, { class: "states", id: "states" }),
      el("p", { class: "muted" }, "States are listed in breadth-first order from the initial state (highlighted)."));
  }

  async function renderState(spec, id) {
    const rep = await api(`/api/specs/${spec}/report`);
    const s = await api(`/api/specs/${spec}/states/${id}`);
    const succ = s.transitions.map((t) => el("tr", { class: t.fired ? null : "muted" },
      el("td", {}, el("code", {}, t.event)),
      el("td", {}, t.fired ? "fires" : "guard false"),
      el("td", {}, t.repairs.length ? t.repairs.map((r) => el("div", {}, `repair ${r.invariant}`)) : "—"),
      el("td", {}, t.fired ? link(`#/m/${spec}/state/${t.after.id}`, `#${t.after.id}`) : "—"),
      el("td", {}, t.changed.length ? t.changed.map((n) => el("div", {}, `${n}: ${fmt(t.before.values[n])} → ${fmt(t.after.values[n])}`)) : "no change")));
    const path = s.path === null ? el("p", { class: "muted" }, "not reachable from the initial state")
      : el("ol", { class: "links", id: "path" }, el("li", {}, link(`#/m/${spec}/state/${s.initial_id}`, "initial")),
        s.path.map((p) => el("li", {}, "→ ", el("code", {}, p.event), " ", link(`#/m/${spec}/state/${p.id}`, `#${p.id}`))));
    show(el("h2", {}, "State #", el("span", { id: "state-id" }, s.id), s.initial ? badge("info", "initial") : null,
      s.reachable ? badge("info", "reachable") : badge("skip", "unreachable"),
      s.valid ? badge("pass", "valid") : badge("fail", "invalid")),
    el("p", {}, link(`#/m/${spec}/explorer`, "← all states")),
    el("div", { class: "grid" },
      el("div", { class: "panel" }, el("h3", {}, "Values"), card(s, "this state")),
      el("div", { class: "panel" }, el("h3", {}, "Enabled events"),
        s.enabled.length ? el("ul", { id: "enabled" }, s.enabled.map((e) => el("li", {}, el("code", {}, e))))
          : el("p", { class: "muted", id: "enabled" }, "none: every guard is false here"),
        el("h3", {}, "Shortest path from the initial state"), path,
        el("h3", {}, "Predecessors"), s.predecessors.length
          ? el("ul", { class: "links" }, s.predecessors.map((p) => el("li", {}, link(`#/m/${spec}/state/${p.id}`, `#${p.id}`), " via ", el("code", {}, p.event))))
          : el("p", { class: "muted" }, "none"))),
    el("h3", {}, "Successors"), table(["event", "guard", "repairs", "result", "changes"], succ, { id: "successors" }),
    rep.graphviz ? [el("h3", {}, "Neighbourhood"), el("div", { class: "diagram-box" },
      el("img", { src: `/api/specs/${spec}/states/${s.id}/diagram.svg`, alt: `state #${s.id} and its neighbours`, id: "neighbourhood" }))] : null);
  }

  // ------------------------------------------------------------ diagram

  async function renderDiagram(spec) {
    const rep = await api(`/api/specs/${spec}/report`);
    const parts = [el("h2", {}, `Diagram of `, rep.machine)];
    let width = 100;
    if (rep.graphviz) {
      const img = el("img", { src: `/api/specs/${spec}/diagram.svg`, alt: `diagram of ${rep.machine}`, id: "diagram" });
      const zoom = (f) => { width = Math.max(20, Math.min(800, width * f)); img.style.width = `${width}%`; };
      parts.push(el("div", { class: "controls" },
        el("button", { onclick: () => zoom(1.25), id: "zoom-in" }, "+ Zoom in"),
        el("button", { onclick: () => zoom(0.8), id: "zoom-out" }, "− Zoom out")),
      el("div", { class: "diagram-box" }, img));
    } else {
      parts.push(el("p", { class: "muted" }, "graphviz's dot is not installed here: the mermaid text below can be pasted into any mermaid viewer."));
    }
    const mermaid = await fetch(`/api/specs/${spec}/diagram.mermaid`).then((r) => r.text());
    parts.push(el("h3", {}, "Mermaid"), el("pre", { class: "text", id: "mermaid" }, mermaid),
      el("p", {}, link(`/api/specs/${spec}/diagram.dot`, "graphviz dot source")));
    show(...parts);
  }

  // ------------------------------------------------------------ replicas

  function groupBadge(status) {
    const kind = status === "converged" ? "pass" : status === "diverged" ? "fail" : "info";
    return badge(kind, status);
  }

  async function drawReplicas() {
    const response = await fetch("/api/replicas", { headers: { Accept: "application/json" } });
    const board = await response.json();
    if (!response.ok) throw new Error(board.error || "cannot read the replicas");
    const groups = board.groups.map((g) => el("li", { "data-machine": g.machine },
      el("code", {}, g.machine), " ", groupBadge(g.status), ` ${g.replicas.length} replica(s)`));
    const rows = board.replicas.map((r) => el("tr", { class: r.error ? "problem" : null },
      el("td", {}, r.replica !== undefined ? el("code", {}, r.replica) : el("span", { class: "muted" }, r.path)),
      el("td", {}, r.machine || "—"),
      el("td", { class: "mono" }, r.error ? r.error
        : Object.entries(r.state || {}).map(([k, v]) => el("div", {}, `${k}=${fmt(v)}`))),
      el("td", { class: "num" }, fmt(r.accepted)), el("td", { class: "num" }, fmt(r.log)),
      el("td", { class: "num" }, fmt(r.pending)),
      el("td", { class: "mono" }, r.digest ? `${r.digest.slice(0, 12)}…` : "—"),
      el("td", { class: "num" }, r.age === undefined ? "—" : `${r.age.toFixed(1)} s`,
        r.stale ? badge("fail", "stale") : null),
      el("td", {}, (r.problems || []).join("; "))));
    show(el("h2", {}, "Replicas"),
      el("p", { class: "muted" }, "Read from the replicas' status files, refreshed every second."),
      el("ul", { id: "groups" }, groups),
      table(["replica", "machine", "state", "accepted", "log", "pending", "digest", "updated", "problems"],
        rows, { id: "replicas" }),
      el("p", { class: "muted", id: "replicas-time" }, `read at ${new Date(board.time * 1000).toLocaleTimeString()}`));
  }

  async function renderReplicas() {
    await drawReplicas();
    if (poll === null) {
      poll = setInterval(() => {
        drawReplicas().catch((err) => show(el("p", { class: "error", id: "error" }, err.message)));
      }, 1000);
    }
  }

  // ------------------------------------------------------------ start

  async function start() {
    try {
      specs = await api("/api/specs");
      const board = await fetch("/api/replicas").then((resp) => resp.json());
      replicasEnabled = Boolean(board.enabled);
    } catch (err) {
      show(el("p", { class: "error" }, err.message));
      return;
    }
    window.addEventListener("hashchange", render);
    await render();
  }

  start();
})();
