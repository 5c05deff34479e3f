// previewd's Node launcher: starts a user's Express app on the port previewd gave it.
//
// previewd embeds this file (and route_table.js beside it) in its binary, writes it under its
// data dir and runs it as
//
//     node launcher.js --entry src/server.js --port 3001 [--loader tsx|ts-node]
//
// with the app's folder (the one holding package.json) as cwd. Environment it reads:
//
//     PREVIEWD_ROUTES_FILE   absolute path; once the app listens, its route table is written
//                            there as JSON (temp file + rename).
//
// What it does, in order:
// 1. Forces the port: the first `listen` of an HTTP server goes to 127.0.0.1:<port>, whatever
//    the app asked for (`app.listen(3000)`, `server.listen(PORT, '0.0.0.0')`), so apps that
//    hard-code a port still come up where previewd probes. Later listens are left alone.
// 2. Loads the project's own `express` before the app does and instruments it: every app
//    instance is recorded (through `express.application.init`) and every `use(path, ...)` on an
//    app or router tags the layers it adds with their mount path, which Express 5 no longer
//    keeps. CommonJS `require` and ESM `import express from 'express'` both get this same
//    instance, from Node's CommonJS cache.
// 3. Registers a TypeScript loader for `.ts` entries (the project's own `tsx` or `ts-node`).
// 4. Loads the entry: `require`, or `import()` for ES modules.
// 5. When the server listens, writes the served app's route table (route_table.js).
//
// Exit codes: 0 after SIGTERM/SIGINT (servers closed), 1 when the entry throws while loading
// (the user's stack on stderr), 2 for bad arguments or a missing loader.
//
// Warm mode: previewd keeps idle Node processes with the project's framework already loaded,
// started without a project as
//
//     node launcher.js --warm [--modules /abs/path/to/node_modules] [--preload NAME]...
//
// Such a process prints `previewd-warm: started` on stdout, requires each --preload name as
// resolved from --modules (one that is not installed is skipped silently; any other failure is
// one `previewd: warning: ...` line on stderr), prints `previewd-warm: ready`, then blocks
// reading one "go" line from fd 0: JSON `{"args": [...], "cwd": "/abs/dir", "env": {...}}`. It
// chdirs to `cwd`, replaces its whole environment with `env`, sets process.argv as a cold launch
// with `args` has it, and runs main() exactly as that cold launch would. The modules required
// in advance are the ones the app gets later: Node's module cache is keyed by real path, and
// the project's node_modules is a symlink to the same install. EOF instead of a go line exits
// 0 quietly; a line that is not such JSON exits 2. Nothing else is written on stdout before
// `ready`.
//
// No dependencies: Node's own modules only. CommonJS.
'use strict';

const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');
const { pathToFileURL } = require('url');

const routeTable = require('./route_table');

function say(message) {
  process.stderr.write('previewd: ' + message + '\n');
}

function fail(message, code) {
  say(message);
  process.exit(code);
}

function parseArgs(argv) {
  const args = { entry: null, port: null, loader: null };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) fail('missing value after ' + flag, 2);
    if (flag === '--entry') args.entry = value;
    else if (flag === '--port') args.port = Number(value);
    else if (flag === '--loader') args.loader = value;
    else fail('unknown argument ' + flag, 2);
  }
  if (!args.entry) fail('--entry is required', 2);
  if (!Number.isInteger(args.port) || args.port <= 0 || args.port > 65535) {
    fail('--port needs a port number', 2);
  }
  if (args.loader && !['tsx', 'ts-node'].includes(args.loader)) {
    fail('--loader must be tsx or ts-node, got ' + args.loader, 2);
  }
  return args;
}

const servers = new Set();

/** Sends the first HTTP server's listen to 127.0.0.1:port and reports its routes once up. */
function forcePort(port, onListening) {
  const original = net.Server.prototype.listen;
  let forced = false;
  net.Server.prototype.listen = function listen(...args) {
    if (forced || !(this instanceof http.Server)) return original.apply(this, args);
    forced = true;
    servers.add(this);
    const callback = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
    const asked = typeof args[0] === 'object' && args[0] !== null ? args[0].port : args[0];
    if (asked !== undefined && String(asked) !== String(port)) {
      say('the app asked to listen on ' + asked + '; listening on 127.0.0.1:' + port + ' instead');
    }
    // Before any other listener, and synchronously: the table is on disk before the first
    // request (previewd's health check) can be answered.
    this.prependOnceListener('listening', () => onListening(this));
    return original.call(this, { port, host: '127.0.0.1' }, callback);
  };
}

/** The project's own `express`, loaded from the entry's folder and instrumented; null if none. */
function instrumentExpress(fromDir) {
  let resolved;
  try {
    resolved = require.resolve('express', { paths: [fromDir] });
  } catch (_) {
    return null;
  }
  const express = require(resolved);
  return routeTable.instrument(express);
}

async function registerLoader(loader, cwd) {
  const from = { paths: [cwd] };
  try {
    if (loader === 'tsx') {
      // What `node --import tsx` runs: registers tsx for require() and import() alike.
      await import(pathToFileURL(require.resolve('tsx', from)).href);
    } else {
      require(require.resolve('ts-node', from)).register({ transpileOnly: true });
    }
  } catch (error) {
    fail(
      'the entry is TypeScript but ' + loader + ' could not be loaded from the project (' +
        error.message + '); add tsx or ts-node to its devDependencies',
      2,
    );
  }
}

async function loadEntry(file) {
  try {
    require(file);
  } catch (error) {
    if (error && error.code === 'ERR_REQUIRE_ESM') {
      await import(pathToFileURL(file).href);
      return;
    }
    throw error;
  }
}

function stopOnSignals() {
  const stop = (signal) => {
    say('received ' + signal + ', closing the server');
    for (const server of servers) {
      server.close();
      if (typeof server.closeAllConnections === 'function') server.closeAllConnections();
    }
    process.exit(0);
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const cwd = process.cwd();
  const entry = path.resolve(cwd, args.entry);
  if (!fs.existsSync(entry)) fail('the entry ' + args.entry + ' does not exist in ' + cwd, 2);
  process.env.PORT = String(args.port);
  process.env.HOST = '127.0.0.1';

  const express = instrumentExpress(path.dirname(entry));
  if (!express) say('express could not be resolved from ' + args.entry + '; routes will not be reported');
  forcePort(args.port, (server) => {
    const file = process.env.PREVIEWD_ROUTES_FILE;
    if (!file || !express) return;
    try {
      routeTable.write(file, routeTable.collect(express, server));
    } catch (error) {
      say('could not write the route table: ' + (error && error.stack ? error.stack : error));
    }
  });
  stopOnSignals();
  if (args.loader) await registerLoader(args.loader, cwd);
  // The entry runs as the main module would: argv[1] is the entry, not this launcher.
  process.argv[1] = entry;
  try {
    await loadEntry(entry);
  } catch (error) {
    process.stderr.write((error && error.stack ? error.stack : String(error)) + '\n');
    fail('could not load ' + args.entry + ' (stack above)', 1);
  }
}

// ---------------------------------------------------------------------------------------------
// Warm mode

const WARM_STARTED = 'previewd-warm: started';
const WARM_READY = 'previewd-warm: ready';
// How long to sleep when fd 0 has nothing to read yet (a non-blocking pipe).
const READ_RETRY_MS = 5;

function parseWarmArgs(argv) {
  const args = { modules: null, preload: [] };
  for (let i = 0; i < argv.length; i += 1) {
    const flag = argv[i];
    if (flag === '--warm') continue;
    const value = argv[i + 1];
    if (value === undefined) fail('missing value after ' + flag, 2);
    i += 1;
    if (flag === '--modules') args.modules = path.resolve(value);
    else if (flag === '--preload') args.preload.push(value);
    else fail('unknown argument ' + flag, 2);
  }
  return args;
}

function announce(line) {
  process.stdout.write(line + '\n');
}

/** Requires each name as the project will resolve it; a name not installed is skipped. What
 * the modules print goes to stderr, so that `ready` stays the next line on stdout. */
function preload(names, modules) {
  const write = process.stdout.write;
  process.stdout.write = process.stderr.write.bind(process.stderr);
  try {
    names.forEach((name) => preloadOne(name, modules));
  } finally {
    process.stdout.write = write;
  }
}

function preloadOne(name, modules) {
  const from = { paths: [modules || process.cwd()] };
  let resolved;
  try {
    resolved = require.resolve(name, from);
  } catch (error) {
    if (!error || error.code !== 'MODULE_NOT_FOUND') warnPreload(name, error);
    return;
  }
  try {
    require(resolved);
  } catch (error) {
    warnPreload(name, error);
  }
}

function warnPreload(name, error) {
  const message = String(error && error.message ? error.message : error).split(/\s+/).join(' ');
  say('warning: could not pre-import ' + name + ': ' + message);
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** One line from fd 0, read synchronously (no event loop yet); null at EOF before any byte. */
function readLineSync() {
  const chunks = [];
  const buffer = Buffer.alloc(65536);
  for (;;) {
    let count;
    try {
      count = fs.readSync(0, buffer, 0, buffer.length, null);
    } catch (error) {
      if (error.code === 'EAGAIN') {
        sleep(READ_RETRY_MS);
        continue;
      }
      if (error.code === 'EINTR') continue;
      if (error.code === 'EOF') count = 0;
      else throw error;
    }
    if (count === 0) break;
    const chunk = Buffer.from(buffer.subarray(0, count));
    const newline = chunk.indexOf(10);
    if (newline >= 0) {
      chunks.push(chunk.subarray(0, newline));
      return Buffer.concat(chunks).toString('utf8');
    }
    chunks.push(chunk);
  }
  return chunks.length ? Buffer.concat(chunks).toString('utf8') : null;
}

/** The go line's {args, cwd, env}; throws an Error saying what is wrong with it. */
function parseGo(line) {
  const go = JSON.parse(line);
  if (go === null || typeof go !== 'object' || Array.isArray(go)) {
    throw new Error('the go line is not a JSON object');
  }
  const { args, cwd, env } = go;
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    throw new Error('"args" must be a list of strings');
  }
  if (typeof cwd !== 'string' || !path.isAbsolute(cwd)) {
    throw new Error('"cwd" must be an absolute path');
  }
  if (env === null || typeof env !== 'object' || Array.isArray(env) ||
      !Object.values(env).every((v) => typeof v === 'string')) {
    throw new Error('"env" must be an object of strings');
  }
  return { args, cwd, env };
}

/** Takes on the app's working dir, (complete) environment and argv, as a cold launch starts. */
function becomeApp(go) {
  try {
    process.chdir(go.cwd);
  } catch (error) {
    fail('could not enter ' + go.cwd + ': ' + error.message, 2);
  }
  for (const key of Object.keys(process.env)) delete process.env[key];
  Object.assign(process.env, go.env);
  process.argv = [process.argv[0], __filename, ...go.args];
}

function warmMain() {
  announce(WARM_STARTED);
  const args = parseWarmArgs(process.argv.slice(2));
  preload(args.preload, args.modules);
  announce(WARM_READY);
  let line;
  try {
    line = readLineSync();
  } catch (error) {
    fail('could not read the go line: ' + error.message, 2);
  }
  if (line === null) process.exit(0); // previewd retired this process
  let go;
  try {
    go = parseGo(line);
  } catch (error) {
    fail('bad go line: ' + error.message, 2);
  }
  becomeApp(go);
  return main();
}

if (process.argv.includes('--warm')) warmMain();
else main();
