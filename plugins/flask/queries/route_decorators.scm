; View functions registered with a route decorator on an app or a blueprint:
; `@x.route("/path", methods=[...])` and Flask 2's shortcuts `@x.get("/path")`, `post`, `put`,
; `patch`, `delete`. One match per decorator, so a function with two route decorators yields
; two matches.
(decorated_definition
  (decorator
    (call
      function: (attribute
        object: (_) @receiver
        attribute: (identifier) @method)
      arguments: (argument_list) @arguments)) @decorator
  definition: (function_definition) @handler
  (#any-of? @method "route" "get" "post" "put" "patch" "delete"))
