; Method calls that declare a route (`router.get('/users/:id', h)`, `.del`, `.all`, a named
; route `router.get('user', '/users/:id', h)`, each link of `router.get(...).post(...)`), set a
; router's prefix (`router.prefix('/v1')`) or mount routers (`app.use(router.routes())`,
; `api.use('/v1', users.routes(), users.allowedMethods())`). Which receiver is an app or a
; router is decided on the Rust side.
(call_expression
  function: (member_expression
    object: (_) @receiver
    property: (property_identifier) @method)
  arguments: (arguments) @arguments
  (#any-of? @method "get" "post" "put" "patch" "delete" "del" "options" "head" "all" "prefix" "use")) @call
