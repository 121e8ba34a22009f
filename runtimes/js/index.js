// convergent runtime for JavaScript: run a machine exported by convergent
// (`machine.export("m.json")` or `convergent export SPEC -o m.json`) without the
// verifier. No dependencies; works in node (>= 18) and in browsers.
//
//   import { loadFile } from "convergent-runtime";
//   const m = await loadFile("order.json");       // checks format, version, hash
//   let s = m.apply(m.initial, "pay");             // states are integer ids
//   m.decode(s);                                   // { status: "paid", paid: true, ... }
//
// State ids: mixed radix over the vars in order, first var least significant;
// a value's digit is its index in the var's domain (ints: value - min).
// The file format and the content hash are described in docs/export.md.

export const FORMAT = "convergent-machine";
export const FORMAT_VERSION = 1;
const HASH_PREFIX = "convergent-machine/1\n";

/** A file or document that cannot be loaded; `reason` is one of
 * "format", "version", "truncated", "hash", "unverified" (or "usage" for misuse). */
export class MachineFileError extends Error {
  constructor(message, reason = "format") {
    super(message);
    this.name = "MachineFileError";
    this.reason = reason;
  }
}

const fail = (message, reason = "format") => new MachineFileError(message, reason);
const isInt = (x) => Number.isInteger(x);

function tableWidth(states) {
  for (const w of [1, 2, 4]) if (states <= 2 ** (8 * w)) return w;
  return 8;
}

const TYPED = { 1: Uint8Array, 2: Uint16Array, 4: Uint32Array, 8: Float64Array };

function checkVar(d, i) {
  if (d === null || typeof d !== "object" || typeof d.name !== "string") {
    throw fail(`vars[${i}] is not a {name, kind, ...} object`);
  }
  let values;
  if (d.kind === "bool") {
    values = [false, true];
  } else if (d.kind === "enum") {
    if (!Array.isArray(d.labels) || d.labels.length === 0 || !d.labels.every((x) => typeof x === "string")) {
      throw fail(`var ${d.name}: labels must be a non-empty list of strings`);
    }
    values = d.labels.slice();
  } else if (d.kind === "int") {
    if (!isInt(d.min) || !isInt(d.max) || d.min > d.max) {
      throw fail(`var ${d.name}: int needs min <= max`);
    }
    values = [];
    for (let v = d.min; v <= d.max; v++) values.push(v);
  } else {
    throw fail(`var ${d.name}: kind=${JSON.stringify(d.kind)} (expected bool, enum or int)`);
  }
  if (d.domain !== undefined && d.domain !== values.length) {
    throw fail(`var ${d.name}: domain=${d.domain} (expected ${values.length})`);
  }
  return { name: d.name, kind: d.kind, domain: values.length, values };
}

function checkTable(rows, nRows, size, limit, width, what) {
  const shape = nRows === null ? `${size}` : `${nRows} x ${size}`;
  const bad = () => fail(`${what} must be ${shape} ints in [0, ${limit})`);
  const toTyped = (row) => {
    if (!Array.isArray(row) || row.length !== size) throw bad();
    const out = new TYPED[width](size);
    for (let i = 0; i < size; i++) {
      const x = row[i];
      if (!isInt(x) || x < 0 || x >= limit) throw bad();
      out[i] = x;
    }
    return out;
  };
  if (nRows === null) return toTyped(rows);
  if (!Array.isArray(rows) || rows.length !== nRows) throw bad();
  return rows.map(toTyped);
}

/** Sorted keys, no whitespace: the JSON the content hash covers. */
export function canonicalJSON(value) {
  if (Array.isArray(value)) return "[" + value.map(canonicalJSON).join(",") + "]";
  if (value !== null && typeof value === "object") {
    return "{" + Object.keys(value).sort()
      .map((k) => JSON.stringify(k) + ":" + canonicalJSON(value[k])).join(",") + "}";
  }
  return JSON.stringify(value);
}

function hashHead(doc) {
  const ver = doc.verification || {};
  return {
    format: FORMAT,
    format_version: FORMAT_VERSION,
    name: doc.name,
    version: doc.version,
    vars: doc.vars,
    events: doc.events,
    initial: doc.initial,
    states: doc.states,
    independent: doc.independent ?? [],
    policy_digest: doc.policy_digest ?? "",
    verified: Boolean(ver.verified),
    verdict: ver.verdict ?? "unknown",
    tables: { width: doc.tables.width, fires: Boolean(doc.tables.fires) },
    // event families (parameterized events) are covered when a file has them
    ...(doc.families !== undefined ? { families: doc.families } : {}),
  };
}

/** "sha256:<hex>" of a parsed document, as convergent computes it (async: WebCrypto). */
export async function contentHash(doc) {
  const enc = new TextEncoder();
  const head = enc.encode(HASH_PREFIX + canonicalJSON(hashHead(doc)) + "\n");
  const n = doc.states;
  const w = doc.tables.width;
  const rows = [[doc.nf, w], ...doc.step.map((r) => [r, w])];
  if (doc.tables.fires) rows.push(...doc.fires.map((r) => [r, 1]));
  const total = head.length + rows.reduce((acc, [, width]) => acc + n * width, 0);
  const buf = new Uint8Array(total);
  buf.set(head, 0);
  const view = new DataView(buf.buffer);
  let off = head.length;
  for (const [row, width] of rows) {
    for (let i = 0; i < n; i++, off += width) {
      const x = Number(row[i]);
      if (width === 1) view.setUint8(off, x);
      else if (width === 2) view.setUint16(off, x, true);
      else if (width === 4) view.setUint32(off, x, true);
      else view.setBigUint64(off, BigInt(x), true);
    }
  }
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", buf));
  return "sha256:" + Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A loaded machine. Build it with fromDocument, parse or loadFile. */
export class Machine {
  constructor({ name, version, vars, events, initial, nf, step, fires, verification, hash }) {
    this.name = name;
    this.version = version;
    this.vars = vars;
    this.events = events;
    this.initial = initial;
    this.nf = nf;
    this.step = step;
    this.fires = fires;
    this.verification = verification;
    this.hash = hash;
    this.eventIndex = new Map(events.map((e, i) => [e, i]));
    this.weights = [];
    let acc = 1;
    for (const v of vars) {
      this.weights.push(acc);
      acc *= v.domain;
    }
    this.size = acc;
    Object.freeze(this);
  }

  #event(event) {
    const i = this.eventIndex.get(event);
    if (i !== undefined) return i;
    if (isInt(event) && event >= 0 && event < this.events.length) return event;
    throw fail(`unknown event ${JSON.stringify(event)} (known: ${this.events.join(", ")})`, "usage");
  }

  #state(state) {
    if (!isInt(state) || state < 0 || state >= this.size) {
      throw fail(`state id ${state} is outside [0, ${this.size})`, "usage");
    }
    return state;
  }

  /** The normalized state after `event` (a no-op when its guard is false). */
  apply(state, event) {
    return this.step[this.#event(event)][this.#state(state)];
  }

  run(events, state = this.initial) {
    let s = this.#state(state);
    for (const e of events) s = this.step[this.#event(e)][s];
    return s;
  }

  normalize(state) {
    return this.nf[this.#state(state)];
  }

  isValid(state) {
    return this.nf[this.#state(state)] === state;
  }

  /** Events whose guard holds at `state` (needs the fires tables). */
  enabled(state) {
    if (!this.fires) throw fail("this file has no fires tables", "usage");
    const s = this.#state(state);
    return this.events.filter((_, i) => this.fires[i][s] === 1);
  }

  decode(state) {
    const s = this.#state(state);
    const out = {};
    this.vars.forEach((v, i) => {
      out[v.name] = v.values[Math.floor(s / this.weights[i]) % v.domain];
    });
    return out;
  }

  encode(values) {
    let s = 0;
    this.vars.forEach((v, i) => {
      if (!(v.name in values)) throw fail(`encode: missing var ${v.name}`, "usage");
      const d = v.values.indexOf(values[v.name]);
      if (d < 0) throw fail(`encode: ${v.name}=${JSON.stringify(values[v.name])} is outside its domain`, "usage");
      s += d * this.weights[i];
    });
    return s;
  }
}

/** A Machine from a parsed JSON document (synchronous; does not check the
 * hash: use parse or loadFile for that). */
export function fromDocument(doc, { allowUnverified = false } = {}) {
  if (doc === null || typeof doc !== "object" || doc.format !== FORMAT) {
    throw fail(`not a convergent machine file (no "format": "${FORMAT}")`);
  }
  if (doc.format_version !== FORMAT_VERSION) {
    throw fail(`format version ${JSON.stringify(doc.format_version)} is not supported (this runtime reads version ${FORMAT_VERSION})`, "version");
  }
  for (const key of ["name", "version", "vars", "events", "initial", "states", "tables", "hash", "nf", "step"]) {
    if (!(key in doc)) throw fail(`missing key ${JSON.stringify(key)}`);
  }
  if (!Array.isArray(doc.vars)) throw fail("vars must be a list");
  const vars = doc.vars.map(checkVar);
  if (!Array.isArray(doc.events) || !doc.events.every((e) => typeof e === "string") ||
      new Set(doc.events).size !== doc.events.length) {
    throw fail("events must be a list of distinct names");
  }
  const size = vars.reduce((acc, v) => acc * v.domain, 1);
  if (doc.states !== size) throw fail(`states=${doc.states} but the vars give ${size}`);
  if (!isInt(doc.initial) || doc.initial < 0 || doc.initial >= size) {
    throw fail(`initial=${doc.initial} (expected a state id in [0, ${size}))`);
  }
  const width = tableWidth(size);
  if (!doc.tables || doc.tables.width !== width) {
    throw fail(`tables.width must be ${width} for ${size} states`);
  }
  const nE = doc.events.length;
  const nf = checkTable(doc.nf, null, size, size, width, "nf");
  const step = checkTable(doc.step, nE, size, size, width, "step");
  const fires = doc.tables.fires ? checkTable(doc.fires, nE, size, 2, 1, "fires") : null;
  const verification = doc.verification || {};
  if (!verification.verified && !allowUnverified) {
    throw fail(`machine ${JSON.stringify(doc.name)} did not pass verification (verdict ${JSON.stringify(verification.verdict ?? "unknown")}); pass { allowUnverified: true } to load it anyway`, "unverified");
  }
  return new Machine({
    name: doc.name, version: doc.version, vars, events: doc.events.slice(), initial: doc.initial,
    nf, step, fires, verification, hash: doc.hash,
  });
}

/** Check a parsed document's content hash; throws MachineFileError("hash"). */
export async function verifyDocument(doc) {
  const got = await contentHash(doc);
  if (got !== doc.hash) {
    throw fail(`content hash mismatch: the file says ${doc.hash}, its content gives ${got} (edited or corrupt)`, "hash");
  }
}

/** A Machine from JSON text, bytes (JSON or gzip'd JSON in node) or a parsed document. */
export async function parse(input, { verify = true, allowUnverified = false } = {}) {
  let doc = input;
  if (input instanceof ArrayBuffer) input = new Uint8Array(input);
  if (input instanceof Uint8Array) {
    let bytes = input;
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
      if (typeof DecompressionStream === "undefined") throw fail("gzip needs DecompressionStream");
      try {
        const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
        bytes = new Uint8Array(await new Response(stream).arrayBuffer());
      } catch (err) {
        throw fail(`corrupt or truncated gzip data (${err.message})`, "truncated");
      }
    }
    input = new TextDecoder().decode(bytes);
  }
  if (typeof input === "string") {
    try {
      doc = JSON.parse(input);
    } catch (err) {
      throw fail(`not valid JSON (${err.message})`, /end of (JSON )?input|Unterminated/i.test(err.message) ? "truncated" : "format");
    }
  }
  const machine = fromDocument(doc, { allowUnverified: true });  // shapes first
  if (verify) await verifyDocument(doc);
  if (!machine.verification.verified && !allowUnverified) fromDocument(doc);  // throws "unverified"
  return machine;
}

/** Node only: read a .json or .json.gz file and parse it. */
export async function loadFile(path, options = {}) {
  const { readFile } = await import("node:fs/promises");
  try {
    return await parse(new Uint8Array(await readFile(path)), options);
  } catch (err) {
    if (err instanceof MachineFileError) throw fail(`${path}: ${err.message}`, err.reason);
    throw err;
  }
}
