; Calls that wire routes and routers together:
; `parent.include_router(child, prefix=..., tags=[...])`, `app.mount("/sub", subapp)` and
; `router.add_api_route("/path", handler, methods=[...])`.
(call
  function: (attribute
    object: (_) @receiver
    attribute: (identifier) @method)
  arguments: (argument_list) @arguments
  (#any-of? @method "include_router" "mount" "add_api_route")) @call
