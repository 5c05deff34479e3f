; Handlers registered with a route decorator: `@app.get("/path", ...)` on an app or router.
; One match per decorator, so a function with two route decorators yields two matches.
; WebSocket routes (`@app.websocket`) are listed with the method `WEBSOCKET`, as the launcher
; lists them from the running app: a client of the preview can call them too.
(decorated_definition
  (decorator
    (call
      function: (attribute
        object: (_) @receiver
        attribute: (identifier) @method)
      arguments: (argument_list) @arguments)) @decorator
  definition: (function_definition) @handler
  (#any-of? @method "get" "post" "put" "patch" "delete" "options" "head" "trace" "api_route" "websocket"))
