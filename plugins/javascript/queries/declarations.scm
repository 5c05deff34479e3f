; `const name = value` (and `let`/`var`, destructuring patterns too): what a name holds — an
; app or a router, a `require(...)` result, an alias, a string constant.
(variable_declarator
  name: (_) @name
  value: (_) @value) @declarator
