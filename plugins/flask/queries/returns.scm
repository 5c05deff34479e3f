; What functions return, for app factories: `return app` or `return Flask(...)`.
(return_statement
  [
    (identifier) @returned
    (call
      function: [(identifier) (attribute)] @callee)
  ]) @return
