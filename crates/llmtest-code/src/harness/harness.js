// llmtest code harness (JavaScript, node). Runs solution.js against the test described in
// llmtest_spec.json and writes one JSON line per event to llmtest_result.jsonl, ending with
// {"done": true}. A program that stops before that line did not finish its tests.
"use strict";
const fs = require("fs");
const vm = require("vm");

const spec = JSON.parse(fs.readFileSync("llmtest_spec.json", "utf8"));
// The spec goes before the solution runs: its token marks this harness's result lines
// (lines without it are ignored), so a program cannot forge a "passed" line.
fs.unlinkSync("llmtest_spec.json");
const out = fs.openSync("llmtest_result.jsonl", "w");
const emit = ((token) => (o) => fs.writeSync(out, JSON.stringify({ ...o, k: token }) + "\n"))(spec.token);
delete spec.token;
const lastLine = (e) => (e && e.name ? `${e.name}: ${e.message}` : String(e)).split("\n")[0];

function jsonable(v, depth = 0) {
  if (depth > 50) return { __repr__: String(v).slice(0, 200) };
  if (v === null || v === undefined) return null;
  if (typeof v === "number") return Number.isFinite(v) ? v : { __float__: String(v) };
  if (typeof v === "bigint") return { __int__: v.toString() };
  if (typeof v === "string" || typeof v === "boolean") return v;
  if (Array.isArray(v)) return v.map((x) => jsonable(x, depth + 1));
  if (v instanceof Set) return { __set__: [...v].map((x) => jsonable(x, depth + 1)) };
  if (v instanceof Map) return { __dict__: [...v].map(([k, x]) => [jsonable(k, depth + 1), jsonable(x, depth + 1)]) };
  if (ArrayBuffer.isView(v)) return Array.from(v);
  if (typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v)) o[k] = jsonable(v[k], depth + 1);
    return o;
  }
  return { __repr__: String(v).slice(0, 200) };
}

const sandbox = { console, require, module: { exports: {} }, process, Buffer, setTimeout, clearTimeout };
sandbox.exports = sandbox.module.exports;
const ctx = vm.createContext(sandbox);

function load() {
  let script;
  try {
    script = new vm.Script(fs.readFileSync("solution.js", "utf8"), { filename: "solution.js" });
  } catch (e) {
    emit({ status: "compile_error", message: lastLine(e) });
    return false;
  }
  try {
    script.runInContext(ctx);
  } catch (e) {
    emit({ status: e instanceof RangeError && /memory/i.test(e.message) ? "memory_limit" : "runtime_error", message: lastLine(e), phase: "load" });
    return false;
  }
  return true;
}

function resolve(name) {
  const lookup = (n) => {
    try {
      return vm.runInContext(`typeof ${n} !== "undefined" ? ${n} : undefined`, ctx);
    } catch (e) {
      return undefined;
    }
  };
  if (!/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)?$/.test(name)) return undefined;
  if (name.includes(".")) {
    const [cls, meth] = name.split(".");
    const C = lookup(cls);
    if (typeof C !== "function") return undefined;
    const obj = new C();
    return typeof obj[meth] === "function" ? obj[meth].bind(obj) : undefined;
  }
  const f = lookup(name);
  if (typeof f === "function") return f;
  const exp = sandbox.module.exports;
  if (exp && typeof exp[name] === "function") return exp[name];
  if (typeof exp === "function" && exp.name === name) return exp;
  return undefined;
}

function humaneval() {
  try {
    new vm.Script(spec.test, { filename: "test.js" }).runInContext(ctx);
  } catch (e) {
    emit({ status: "test_error", message: lastLine(e) });
    return;
  }
  const check = resolve("check");
  const fn = resolve(spec.entry_point);
  if (!check) return emit({ status: "test_error", message: "the test defines no `check` function" });
  if (!fn) return emit({ status: "missing_function", message: `the code defines no function \`${spec.entry_point}\`` });
  try {
    check(fn);
  } catch (e) {
    const inTest = e && e.stack && /test\.js:(\d+)/.exec(e.stack);
    if (e && e.name && e.name.startsWith("AssertionError")) {
      return emit({ status: "wrong_answer", test_line: inTest ? Number(inTest[1]) : null, message: String(e.message).slice(0, 500) });
    }
    return emit({ status: "runtime_error", message: lastLine(e), phase: "check" });
  }
  emit({ status: "passed" });
}

function cases() {
  const fn = resolve(spec.call);
  if (!fn) return emit({ status: "missing_function", message: `the code defines no function \`${spec.call}\`` });
  spec.cases.forEach((c, i) => {
    try {
      emit({ case: i, value: jsonable(fn(...(c.args || []))) });
    } catch (e) {
      emit({ case: i, status: "runtime_error", message: lastLine(e), phase: "call" });
    }
  });
  emit({ status: "finished" });
}

if (load()) {
  if (spec.style === "humaneval") humaneval();
  else cases();
}
emit({ done: true });
