; Calls of project functions with arguments, for app and blueprint objects passed to helpers:
; `register_views(app)`, `init_routes(app=app)`. Which function is called, and whether an
; argument is an app or a blueprint, is decided on the Rust side.
(call
  function: [(identifier) (attribute)] @callee
  arguments: (argument_list) @arguments) @call
