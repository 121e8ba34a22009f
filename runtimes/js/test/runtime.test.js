// Tests of the JavaScript runtime: node --test runtimes/js/
// The fixture was written by convergent's Python exporter (order machine:
// status pending|paid|shipped, paid bool, inventory 0..5; events pay, ship, restock).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, mkdtempSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import {
  MachineFileError, canonicalJSON, contentHash, fromDocument, loadFile, parse,
} from "../index.js";

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), "fixtures", "order.json");
const text = readFileSync(FIXTURE, "utf8");
const fresh = () => JSON.parse(text);

async function rejectsWith(promise, reason) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof MachineFileError, `expected MachineFileError, got ${err}`);
    assert.equal(err.reason, reason, err.message);
    return true;
  });
}

test("loads the Python export and checks its hash", async () => {
  const m = await loadFile(FIXTURE);
  assert.equal(m.name, "order");
  assert.deepEqual(m.events, ["pay", "ship", "restock"]);
  assert.equal(m.size, 36);
  assert.equal(await contentHash(fresh()), fresh().hash);
  assert.deepEqual(m.decode(m.initial), { status: "pending", paid: false, inventory: 0 });
});

test("applies events as the Python machine does", async () => {
  const m = await parse(text);
  assert.equal(m.apply(m.initial, "pay"), 4);
  assert.equal(m.apply(4, "restock"), 10);  // inventory has weight 3 * 2
  assert.equal(m.apply(10, "ship"), 5);
  const s = m.run(["pay", "restock", "ship"]);
  assert.equal(s, 5);  // the id the numpy Machine gives
  assert.deepEqual(m.decode(s), { status: "shipped", paid: true, inventory: 0 });
  assert.equal(m.run(["restock", "restock"]), 12);
  // ship's guard is false before pay: a no-op
  assert.equal(m.apply(m.initial, "ship"), m.initial);
  assert.deepEqual(m.enabled(m.initial), ["pay", "restock"]);
  // event indexes work like names
  assert.equal(m.apply(m.initial, 0), m.apply(m.initial, "pay"));
});

test("normalize repairs an invalid state; encode inverts decode", async () => {
  const m = await parse(text);
  const bad = m.encode({ status: "shipped", paid: false, inventory: 3 });
  assert.equal(m.isValid(bad), false);
  assert.deepEqual(m.decode(m.normalize(bad)), { status: "pending", paid: false, inventory: 3 });
  for (let s = 0; s < m.size; s++) assert.equal(m.encode(m.decode(s)), s);
});

test("misuse is an error, not undefined", async () => {
  const m = await parse(text);
  assert.throws(() => m.apply(m.initial, "refund"), /unknown event "refund"/);
  assert.throws(() => m.apply(36, "pay"), /outside \[0, 36\)/);
  assert.throws(() => m.encode({ status: "lost", paid: false, inventory: 0 }), /outside its domain/);
});

test("an edited table is refused", async () => {
  const doc = fresh();
  doc.step[0][0] = (doc.step[0][0] + 1) % 36;
  await rejectsWith(parse(doc), "hash");
  await rejectsWith(parse(JSON.stringify(doc)), "hash");
  // without verification the edit goes through: the hash is what catches it
  const m = await parse(doc, { verify: false });
  assert.notEqual(m.apply(0, 0), fresh().step[0][0]);
});

test("an edited name or verdict is refused", async () => {
  const doc = fresh();
  doc.name = "orders";
  await rejectsWith(parse(doc), "hash");
  const doc2 = fresh();
  doc2.verification.verified = false;
  await rejectsWith(parse(doc2), "hash");
});

test("unverified machines load only when allowed", async () => {
  const doc = fresh();
  doc.verification.verified = false;
  doc.verification.verdict = "fail";
  doc.hash = await contentHash(doc);
  await rejectsWith(parse(doc), "unverified");
  const m = await parse(doc, { allowUnverified: true });
  assert.equal(m.verification.verdict, "fail");
  assert.throws(() => fromDocument(doc), /did not pass verification/);
});

test("wrong version, truncated text, wrong shapes", async () => {
  const doc = fresh();
  doc.format_version = 2;
  await rejectsWith(parse(doc), "version");
  await rejectsWith(parse(text.slice(0, text.length / 2)), "truncated");
  await rejectsWith(parse({ name: "x" }), "format");
  const short = fresh();
  short.nf.pop();
  await rejectsWith(parse(short), "format");
  const out = fresh();
  out.step[1][3] = 36;
  await rejectsWith(parse(out), "format");
});

test("gzip'd files load", async () => {
  const dir = mkdtempSync(join(tmpdir(), "cvm-"));
  const path = join(dir, "order.json.gz");
  writeFileSync(path, gzipSync(text));
  const m = await loadFile(path);
  assert.equal(m.run(["pay"]), 4);
  writeFileSync(path, gzipSync(text).subarray(0, 100));
  await rejectsWith(loadFile(path), "truncated");
});

test("canonical JSON sorts keys and drops whitespace", () => {
  assert.equal(canonicalJSON({ b: [1, { d: true, c: null }], a: "é" }),
    '{"a":"é","b":[1,{"c":null,"d":true}]}');
});
