; Calls of a method on something: `app.get('/p', h)`, `router.use('/api', child)`,
; `router.route('/p').get(h)`. One match per call, so each link of a `.route()` chain is a
; match of its own; which receiver is an app or a router is decided on the Rust side.
(call_expression
  function: (member_expression
    object: (_) @object
    property: (property_identifier) @method)
  arguments: (arguments) @arguments
  (#any-of? @method "get" "post" "put" "patch" "delete" "options" "head" "all" "use")) @call
