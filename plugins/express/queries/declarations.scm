; `const name = value` (and `let`/`var`, destructuring patterns too): apps (`express()`),
; routers (`express.Router()`, `Router()`), `require(...)` results, aliases, string constants.
(variable_declarator
  name: (_) @name
  value: (_) @value) @declarator
