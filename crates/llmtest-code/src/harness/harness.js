// llmtest code harness (JavaScript, node). Runs solution.js against the test described in
// llmtest_spec.json and writes one JSON line per event to llmtest_result.jsonl, ending with
// {"done": true}. A program that stops before that line did not finish its tests.
//
// Two processes: the judge (this one) reads the spec, runs the test and writes the results;
// the candidate, started after the spec is read and deleted, loads solution.js and serves
// calls to its functions. Arguments and return values cross a pipe as tagged JSON that the
// judge decodes into plain values only, so nothing the program does inside its interpreter
// (patching `fs` or `JSON`, walking `require.cache` or `process.mainModule`, replacing
// prototypes) reaches the code that reports.
"use strict";
const fs = require("fs");
const vm = require("vm");
const { types } = require("util");

const MAX_MESSAGE = 64 << 20; // longest message accepted from the other side
const MAX_DEPTH = 100;
// A request has "op"; a reply one of the others.
const MESSAGE_KEYS = ["op", "return", "raise", "compile_error", "missing"];
const CANDIDATE_FLAG = "--llmtest-candidate";

const lastLine = (e) => (e && e.name ? `${e.name}: ${e.message}` : String(e)).split("\n")[0];
const kind = (e) => (e && e.name === "RangeError" && /memory/i.test(e.message) ? "memory_limit" : "runtime_error");

// The judge's descriptors are non-blocking (node's child pipes); a short sleep between tries
// keeps a waiting judge off the CPU while the candidate computes.
const nap = new Int32Array(new SharedArrayBuffer(4));
function retry(op) {
  let wait = 0;
  for (;;) {
    try {
      return op();
    } catch (e) {
      if (e.code !== "EAGAIN") throw e;
    }
    if (wait > 0) Atomics.wait(nap, 0, 0, wait);
    wait = Math.min(wait > 0 ? wait * 2 : 0.02, 2);
  }
}

// A value that is not plain data: kept as its type name and text, equal only to itself.
class Opaque {
  constructor(typeName, text) {
    this.typeName = typeName;
    this.text = text;
  }
  toString() {
    return this.text;
  }
}

// The other side ended (the program exited, crashed or hit a limit).
class PeerGone extends Error {}

// One end of the pipe pair: tagged values both ways, calls both ways (a function passed as
// an argument is called back on the side that owns it).
class Peer {
  constructor(rfd, wfd, realm) {
    this.r = rfd;
    this.w = wfd;
    this.realm = realm; // where decoded values are made: the realm of the code that uses them
    this.own = []; // functions of this side, by id
    this.buf = Buffer.alloc(0);
    this.serveExtra = {}; // op name -> handler, for the candidate's load/resolve
  }

  // -- values ----------------------------------------------------------------------------
  enc(v, depth = 0) {
    if (v === null || typeof v === "boolean" || typeof v === "string") return v;
    if (v === undefined) return { u: 1 };
    if (typeof v === "number") return Number.isFinite(v) && !Object.is(v, -0) ? v : { f: String(Object.is(v, -0) ? "-0" : v) };
    if (typeof v === "bigint") return { i: v.toString() };
    if (typeof v === "function") {
      this.own.push(v);
      return { fn: this.own.length - 1, name: String(v.name || "function").slice(0, 200), repr: text(v) };
    }
    if (typeof v !== "object") return this.opaque(v);
    if (depth > MAX_DEPTH) return this.opaque(v);
    const d = depth + 1;
    try {
      // Values come from other realms (the program's and the test's contexts): no instanceof.
      if (Array.isArray(v)) return Array.from(v, (x) => this.enc(x, d));
      if (types.isSet(v)) return { s: Array.from(Set.prototype.values.call(v), (x) => this.enc(x, d)) };
      if (types.isMap(v)) return { m: Array.from(Map.prototype.entries.call(v), ([k, x]) => [this.enc(k, d), this.enc(x, d)]) };
      if (types.isTypedArray(v)) return { ta: Object.prototype.toString.call(v).slice(8, -1), v: Array.from(v, (x) => this.enc(x, d)) };
      if (types.isDate(v)) return { dt: Date.prototype.getTime.call(v) };
      if (v instanceof Opaque) return { o: v.typeName, repr: v.text };
      const o = {};
      for (const k of Object.keys(v)) o[k] = this.enc(v[k], d);
      return { d: o };
    } catch (e) {
      return this.opaque(v);
    }
  }

  opaque(v) {
    let typeName = typeof v;
    try {
      if (v && v.constructor && typeof v.constructor.name === "string") typeName = v.constructor.name;
    } catch (e) {
      // a getter that throws: the plain type name
    }
    return { o: String(typeName).slice(0, 100), repr: text(v) };
  }

  dec(v) {
    if (v === null || typeof v !== "object") return v;
    const R = this.realm;
    if (Array.isArray(v)) return R.Array.from(v, (x) => this.dec(x));
    const tag = Object.keys(v)[0]; // one tag a value, first; "fn", "o" and "ta" carry a second key
    const x = v[tag];
    switch (tag) {
      case "u":
        return undefined;
      case "f":
        return x === "-0" ? -0 : Number(x);
      case "i":
        return BigInt(String(x));
      case "s":
        return new R.Set(x.map((y) => this.dec(y)));
      case "m":
        return new R.Map(x.map(([k, y]) => [this.dec(k), this.dec(y)]));
      case "ta": {
        if (!TYPED_ARRAYS.includes(x)) throw new Error(`unknown typed array ${x}`);
        return R[x].from(v.v.map((y) => this.dec(y)));
      }
      case "dt":
        return new R.Date(Number(x));
      case "d": {
        const o = new R.Object();
        for (const k of Object.keys(x)) o[k] = this.dec(x[k]);
        return o;
      }
      case "fn":
        return this.proxy(Number(x), String(v.name || "function"), String(v.repr || ""));
      case "o":
        return new Opaque(String(x), String(v.repr || ""));
      default:
        throw new Error(`unknown value tag ${JSON.stringify(tag)}`);
    }
  }

  // -- messages --------------------------------------------------------------------------
  send(obj) {
    const data = Buffer.from(JSON.stringify(obj) + "\n", "utf8");
    let off = 0;
    while (off < data.length) off += retry(() => fs.writeSync(this.w, data, off, data.length - off));
  }

  // The next well-formed message. Anything else (a program that writes into every descriptor
  // it finds reaches this pipe too) is skipped, as if written to /dev/null.
  recv() {
    for (;;) {
      let nl = this.buf.indexOf(10);
      while (nl < 0) {
        if (this.buf.length > MAX_MESSAGE) throw new Error(`a message longer than ${MAX_MESSAGE >> 20} MiB`);
        const chunk = Buffer.alloc(1 << 16);
        const n = retry(() => fs.readSync(this.r, chunk, 0, chunk.length, null));
        if (n === 0) throw new PeerGone();
        const start = this.buf.length;
        this.buf = Buffer.concat([this.buf, chunk.subarray(0, n)]);
        nl = this.buf.indexOf(10, start);
      }
      const line = this.buf.subarray(0, nl).toString("utf8");
      this.buf = this.buf.subarray(nl + 1);
      let m;
      try {
        m = JSON.parse(line);
      } catch (e) {
        continue;
      }
      if (m && typeof m === "object" && !Array.isArray(m) && MESSAGE_KEYS.some((k) => k in m)) return m;
    }
  }

  // Sends a request and serves the other side's requests until its reply comes.
  request(msg) {
    this.send(msg);
    for (;;) {
      const m = this.recv();
      if ("op" in m) this.send(this.serve(m));
      else return m;
    }
  }

  serve(m) {
    if (m.op === "call") return this.invoke(this.own[Number(m.fn)], m);
    const handler = this.serveExtra[m.op];
    if (!handler) return { raise: { status: "runtime_error", message: `unknown request ${m.op}` } };
    return handler(m);
  }

  invoke(fn, m) {
    let args;
    try {
      if (typeof fn !== "function") throw new TypeError("not a function");
      args = (m.args || []).map((a) => this.dec(a));
    } catch (e) {
      return { raise: errorInfo(e) };
    }
    let out;
    try {
      out = { return: this.enc(fn(...args)) };
    } catch (e) {
      return { raise: errorInfo(e) };
    }
    // Arguments the callee changed in place go back so the caller's objects change too.
    const changed = {};
    args.forEach((a, i) => {
      if (mutable(a)) changed[i] = this.enc(a);
    });
    if (Object.keys(changed).length) out.m = changed;
    return out;
  }

  proxy(fid, name, repr) {
    const peer = this;
    const remote = function (...args) {
      const reply = peer.request({ op: "call", fn: fid, args: args.map((a) => peer.enc(a)) });
      if ("raise" in reply) throw remoteError(reply.raise, peer.realm);
      for (const [k, v] of Object.entries(reply.m || {})) updateInPlace(args[Number(k)], peer.dec(v));
      return peer.dec(reply.return);
    };
    Object.defineProperty(remote, "name", { value: name });
    remote.toString = () => repr;
    return remote;
  }
}

function text(v) {
  try {
    return String(v).slice(0, 200);
  } catch (e) {
    return "<unrepresentable>";
  }
}

const plainObject = (a) => a !== null && typeof a === "object" && Object.prototype.toString.call(a) === "[object Object]";
const mutable = (a) => Array.isArray(a) || types.isSet(a) || types.isMap(a) || plainObject(a);

function updateInPlace(orig, now) {
  if (Array.isArray(orig) && Array.isArray(now)) {
    orig.length = 0;
    orig.push(...now);
  } else if (types.isSet(orig) && types.isSet(now)) {
    orig.clear();
    now.forEach((x) => orig.add(x));
  } else if (types.isMap(orig) && types.isMap(now)) {
    orig.clear();
    now.forEach((x, k) => orig.set(k, x));
  } else if (plainObject(orig) && plainObject(now)) {
    for (const k of Object.keys(orig)) delete orig[k];
    Object.assign(orig, now);
  }
}

const REMOTE_STATUSES = ["runtime_error", "memory_limit"];
const BUILTIN_ERRORS = ["Error", "TypeError", "RangeError", "ReferenceError", "SyntaxError", "EvalError", "URIError"];
const TYPED_ARRAYS = ["Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"];

// The constructors of a context, taken before any program runs in it.
const realmOf = (ctx) => vm.runInContext(`({ Array, Object, Set, Map, Date, ${BUILTIN_ERRORS.join(", ")}, ${TYPED_ARRAYS.join(", ")} })`, ctx);

function errorInfo(e) {
  let name = "Error";
  let detail = "";
  let message = "Error";
  try {
    name = String(e && e.name);
    detail = String(e && e.message !== undefined ? e.message : e).slice(0, 2000);
    message = lastLine(e).slice(0, 2000);
  } catch (err) {
    // an error whose name or message throws: the plain texts
  }
  const out = { type: BUILTIN_ERRORS.includes(name) ? name : null, text: detail, message, status: "runtime_error" };
  try {
    out.status = kind(e);
    const at = e && typeof e.stack === "string" && /solution\.js:(\d+)/.exec(e.stack);
    if (at) out.solution_line = Number(at[1]);
  } catch (err) {
    // as above
  }
  return out;
}

// An exception the program threw, thrown again on the judge's side: a builtin type as
// itself (of the test's realm), anything else as a plain Error; `llmtest_remote` says where
// it came from. The candidate's side of this harness is the program's to change, so what
// it says is read as data: a status other than an error's is a runtime error.
function remoteError(info, realm) {
  const C = BUILTIN_ERRORS.includes(info.type) ? realm[info.type] : realm.Error;
  const e = new C(String(info.text || ""));
  e.llmtest_remote = {
    status: REMOTE_STATUSES.includes(info.status) ? info.status : "runtime_error",
    message: String(info.message || "").slice(0, 2000),
    solution_line: Number.isSafeInteger(info.solution_line) ? info.solution_line : null,
  };
  return e;
}

// The globals a program (and a test) sees, as before the harness had two processes.
function context() {
  const sandbox = { console, require, module: { exports: {} }, process, Buffer, setTimeout, clearTimeout };
  sandbox.exports = sandbox.module.exports;
  const ctx = vm.createContext(sandbox);
  return { sandbox, ctx, realm: realmOf(ctx), base: new Set(Object.keys(sandbox)) };
}

// `name` in a context: a global function, `Class.method` (on a new instance), or an export.
function lookupIn(c, name) {
  const lookup = (n) => {
    try {
      return vm.runInContext(`typeof ${n} !== "undefined" ? ${n} : undefined`, c.ctx);
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
  const exp = c.sandbox.module.exports;
  if (exp && typeof exp[name] === "function") return exp[name];
  if (typeof exp === "function" && exp.name === name) return exp;
  return undefined;
}

// -- the candidate's side ------------------------------------------------------------------
function candidate() {
  const c = context();
  const peer = new Peer(3, 4, c.realm);

  peer.serveExtra.load = () => {
    let script, source;
    try {
      source = fs.readFileSync("solution.js", "utf8");
      script = new vm.Script(source, { filename: "solution.js" });
    } catch (e) {
      return { compile_error: lastLine(e) };
    }
    try {
      script.runInContext(c.ctx);
    } catch (e) {
      return { raise: errorInfo(e) };
    }
    // The program's top-level functions, for the test to see as it would in one
    // interpreter: globals, and the `const`/`let`/`class` names it declares.
    const fns = {};
    for (const k of Object.keys(c.sandbox)) {
      if (!c.base.has(k) && typeof c.sandbox[k] === "function") fns[k] = c.sandbox[k];
    }
    for (const [, k] of source.matchAll(/\b(?:const|let|var|class|function)\s+([A-Za-z_$][\w$]*)/g)) {
      if (k in fns || c.base.has(k)) continue;
      const f = lookupIn(c, k);
      if (typeof f === "function") fns[k] = f;
    }
    return { return: peer.enc(fns) };
  };

  peer.serveExtra.resolve = (m) => {
    let fn;
    try {
      fn = lookupIn(c, String(m.name));
    } catch (e) {
      return { raise: errorInfo(e) };
    }
    if (typeof fn !== "function") return { missing: true };
    return { return: peer.enc(fn) };
  };

  for (;;) {
    let m;
    try {
      m = peer.recv();
    } catch (e) {
      process.exit(0); // the judge is gone
    }
    peer.send(peer.serve(m));
  }
}

// -- the judge's side ----------------------------------------------------------------------
function judge() {
  const spec = JSON.parse(fs.readFileSync("llmtest_spec.json", "utf8"));
  // The spec goes before the candidate starts: it holds the token that marks this harness's
  // result lines (lines without it are ignored), and the test.
  fs.unlinkSync("llmtest_spec.json");
  const out = fs.openSync("llmtest_result.jsonl", "w");
  const emit = ((token) => (o) => fs.writeSync(out, JSON.stringify({ ...o, k: token }) + "\n"))(spec.token);
  delete spec.token;

  const child = require("child_process").spawn(process.execPath, [...process.execArgv, __filename, CANDIDATE_FLAG], {
    stdio: ["inherit", "inherit", "inherit", "pipe", "pipe"],
  });
  // node's own pipes: the judge reads and writes them directly, never through the streams.
  const peer = new Peer(child.stdio[4]._handle.fd, child.stdio[3]._handle.fd, realmOf(vm.createContext({})));

  const error = (e, phase) => {
    const remote = e && e.llmtest_remote;
    if (remote) {
      const o = { status: remote.status, message: remote.message, phase };
      if (remote.solution_line != null) o.solution_line = remote.solution_line;
      return o;
    }
    return { status: kind(e), message: lastLine(e), phase };
  };

  // The solution loaded in the candidate; its top-level functions, or null once reported.
  const load = () => {
    const reply = peer.request({ op: "load" });
    if ("compile_error" in reply) {
      emit({ status: "compile_error", message: String(reply.compile_error).slice(0, 2000) });
      return null;
    }
    if ("raise" in reply) {
      emit(error(remoteError(reply.raise, peer.realm), "load"));
      return null;
    }
    return peer.dec(reply.return);
  };

  // The candidate's function `name`, or null once reported.
  const resolve = (name) => {
    const reply = peer.request({ op: "resolve", name });
    if ("raise" in reply) {
      emit(error(remoteError(reply.raise, peer.realm), "load"));
      return null;
    }
    if (reply.missing) {
      emit({ status: "missing_function", message: `the code defines no function \`${name}\`` });
      return null;
    }
    return peer.dec(reply.return);
  };

  const humaneval = (fns) => {
    const c = context();
    peer.realm = c.realm; // values the test gets are of its own realm (deepStrictEqual checks)
    Object.assign(c.sandbox, fns); // the test sees the program's functions too
    try {
      new vm.Script(spec.test, { filename: "test.js" }).runInContext(c.ctx);
    } catch (e) {
      return emit({ status: "test_error", message: lastLine(e) });
    }
    const check = lookupIn(c, "check");
    if (!check) return emit({ status: "test_error", message: "the test defines no `check` function" });
    const fn = resolve(spec.entry_point);
    if (!fn) return;
    try {
      check(fn);
    } catch (e) {
      if (e instanceof PeerGone) throw e;
      if (e && e.llmtest_remote) return emit(error(e, "check")); // the program's own throw
      const inTest = e && e.stack && /test\.js:(\d+)/.exec(e.stack);
      if (e && e.name && e.name.startsWith("AssertionError")) {
        return emit({ status: "wrong_answer", test_line: inTest ? Number(inTest[1]) : null, message: String(e.message).slice(0, 500) });
      }
      return emit(error(e, "check"));
    }
    emit({ status: "passed" });
  };

  const cases = () => {
    const fn = resolve(spec.call);
    if (!fn) return;
    spec.cases.forEach((c, i) => {
      try {
        emit({ case: i, value: jsonable(fn(...(c.args || []))) });
      } catch (e) {
        if (e instanceof PeerGone) throw e;
        emit({ case: i, ...error(e, "call") });
      }
    });
    emit({ status: "finished" });
  };

  try {
    const fns = load();
    if (fns) {
      if (spec.style === "humaneval") humaneval(fns);
      else cases();
    }
  } catch (e) {
    if (!(e instanceof PeerGone)) throw e;
    // The candidate ended on its own: the judge ends the same way, so the sandbox reports
    // its exit status, signal or limit as it would for a single process.
    child.on("exit", (code, signal) => {
      if (signal) {
        process.removeAllListeners(signal);
        process.kill(process.pid, signal);
      } else {
        process.exit(code === null ? 1 : code);
      }
    });
    return;
  }
  emit({ done: true });
  child.kill("SIGKILL");
  process.exit(0);
}

function jsonable(v, depth = 0) {
  if (depth > 50) return { __repr__: String(v).slice(0, 200) };
  if (v === null || v === undefined) return null;
  if (typeof v === "number") return Number.isFinite(v) ? v : { __float__: String(v) };
  if (typeof v === "bigint") return { __int__: v.toString() };
  if (typeof v === "string" || typeof v === "boolean") return v;
  if (Array.isArray(v)) return v.map((x) => jsonable(x, depth + 1));
  if (types.isSet(v)) return { __set__: [...v].map((x) => jsonable(x, depth + 1)) };
  if (types.isMap(v)) return { __dict__: [...v].map(([k, x]) => [jsonable(k, depth + 1), jsonable(x, depth + 1)]) };
  if (ArrayBuffer.isView(v)) return Array.from(v);
  if (v instanceof Opaque) return { __repr__: v.text };
  if (typeof v === "object") {
    const o = {};
    for (const k of Object.keys(v)) o[k] = jsonable(v[k], depth + 1);
    return o;
  }
  return { __repr__: String(v).slice(0, 200) };
}

if (process.argv[2] === CANDIDATE_FLAG) candidate();
else judge();
