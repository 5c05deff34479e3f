// The route table of a running Express app, for previewd's Node launcher (launcher.js).
//
// Express keeps its routes in router stacks: `app._router.stack` (Express 4) or
// `app.router.stack` (Express 5). A layer with a `route` is a route (its methods in
// `route.methods`; `.all()` is reported as the one method `ALL`); a layer whose handle has a
// `stack` of its own is a router mounted with `use`. Express 5 (path-to-regexp 8) no longer
// keeps a mount's path on its layer, so `instrument` wraps `use` to tag the layers it adds
// with the path they were mounted at; Express 4 layers without a tag fall back to reading the
// path back out of `layer.regexp`. Sub-apps (`app.use('/v1', otherApp)`) are not walked.
//
// Paths are written the way previewd's static extraction writes them: prefix and path joined,
// repeated slashes collapsed, no trailing slash (except `/`), `:id`, `:id?` and `:id(\\d+)`
// become `{id}`. Handlers' files and lines are left null: compare on method and path.
'use strict';

const fs = require('fs');
const http = require('http');

const MOUNT = Symbol.for('previewd.mountPath');
const APPS = Symbol.for('previewd.apps');

/** Records every app `express()` creates and tags mounted layers; returns `express`. */
function instrument(express) {
  if (express[APPS]) return express;
  const apps = [];
  Object.defineProperty(express, APPS, { value: apps });
  const application = express.application;
  if (application && typeof application.init === 'function') {
    const init = application.init;
    application.init = function previewdInit(...args) {
      apps.push(this);
      return init.apply(this, args);
    };
  }
  const Router = express.Router;
  const target = Router && (Object.prototype.hasOwnProperty.call(Router, 'use') ? Router : Router.prototype);
  if (target && typeof target.use === 'function') {
    const use = target.use;
    target.use = function previewdUse(...args) {
      const before = Array.isArray(this.stack) ? this.stack.length : 0;
      const result = use.apply(this, args);
      const mount = typeof args[0] === 'string' ? args[0] : typeof args[0] === 'function' ? '/' : null;
      if (Array.isArray(this.stack)) {
        for (const layer of this.stack.slice(before)) layer[MOUNT] = mount;
      }
      return result;
    };
  }
  return express;
}

/** The app serving `server` (its request listener), else the first app created. */
function servedApp(express, server) {
  const apps = express[APPS] || [];
  const listeners = server ? server.listeners('request') : [];
  return listeners.find((fn) => apps.includes(fn)) || apps[0] || null;
}

function routerOf(app) {
  if (app._router) return app._router;
  try {
    return app.router || null; // Express 5; a throwing deprecation getter in Express 4
  } catch (_) {
    return null;
  }
}

function toPreviewdPath(prefix, path) {
  const joined = (prefix + '/' + path).replace(/\/+/g, '/');
  const trimmed = joined.length > 1 ? joined.replace(/\/$/, '') : joined;
  return trimmed.replace(/:([A-Za-z_$][\w$]*)(\([^)]*\))?\??/g, '{$1}');
}

/** Express 4's mount path, read back from a layer's regexp; null when it is not plain. */
function mountFromRegexp(layer) {
  const regexp = layer.regexp;
  if (!regexp) return null;
  if (regexp.fast_slash) return '/';
  let source = regexp.source.replace(/^\^/, '').replace(/\\\/\?\(\?=\\\/\|\$\)$/, '');
  for (const key of layer.keys || []) {
    source = source.replace('(?:([^\\/]+?))', ':' + key.name);
  }
  source = source.replace(/\\\//g, '/');
  return /[\\()[\]*+?|^$]/.test(source) ? null : source;
}

/** A route's methods, upper-case; `ALL` for `.all()` (Express 4's `app.all` sets every one). */
function methodsOf(route) {
  const on = route.methods || {};
  if (on._all || http.METHODS.every((m) => on[m.toLowerCase()])) return ['ALL'];
  return Object.keys(on).filter((m) => on[m]).map((m) => m.toUpperCase());
}

function walk(router, prefix, out, depth) {
  if (!router || !Array.isArray(router.stack) || depth > 32) return;
  for (const layer of router.stack) {
    const route = layer.route;
    if (route) {
      const paths = Array.isArray(route.path) ? route.path : [route.path];
      const methods = methodsOf(route);
      for (const path of paths.filter((p) => typeof p === 'string')) {
        for (const method of methods) {
          out.push({ method, path: toPreviewdPath(prefix, path) });
        }
      }
    } else if (layer.handle && Array.isArray(layer.handle.stack)) {
      const mount = MOUNT in layer ? layer[MOUNT] : mountFromRegexp(layer);
      if (typeof mount === 'string') walk(layer.handle, prefix + '/' + mount, out, depth + 1);
    }
  }
}

/** The routes of the app serving `server`, as previewd endpoint records, sorted. */
function collect(express, server) {
  const app = servedApp(express, server);
  const found = [];
  if (app) walk(routerOf(app), '', found, 0);
  const seen = new Set();
  const endpoints = [];
  for (const { method, path } of found) {
    const key = method + ' ' + path;
    if (seen.has(key)) continue;
    seen.add(key);
    endpoints.push({
      method,
      path,
      path_params: [...path.matchAll(/\{([^{}]+)\}/g)].map((m) => m[1]),
      summary: null,
      description: null,
      tags: [],
      file: null,
      line: null,
    });
  }
  endpoints.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.method < b.method ? -1 : a.method > b.method ? 1 : 0));
  return endpoints;
}

/** Writes `routes` to `file` as JSON through a temp file and a rename. */
function write(file, routes) {
  const temp = file + '.tmp-' + process.pid;
  fs.writeFileSync(temp, JSON.stringify(routes, null, 2) + '\n');
  fs.renameSync(temp, file);
}

module.exports = { instrument, collect, write, toPreviewdPath };
