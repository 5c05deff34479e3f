; What names hold. `const name = value` (`let` and `var` too, destructuring patterns too): the
; Koa class and the router class (`require('koa')`, `require('@koa/router')`), apps
; (`new Koa()`), routers (`new Router({ prefix: '/api' })`, `require('koa-router')()`),
; `require('./m')` results, aliases and string constants.
(variable_declarator
  name: (_) @name
  value: (_) @value) @declarator

; ES module imports: `import Koa from 'koa'`, `import { Router } from '@koa/router'`,
; `import users from './routes/users.js'`, `import * as api from './api.js'`.
(import_statement
  (import_clause) @clause
  source: (string) @source) @import
