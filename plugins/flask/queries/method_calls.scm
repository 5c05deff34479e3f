; Calls that wire routes and blueprints together:
; `parent.register_blueprint(child, url_prefix=..., name=...)` on an app or a blueprint, and
; `x.add_url_rule("/path", endpoint, view_func, methods=[...])`.
(call
  function: (attribute
    object: (_) @receiver
    attribute: (identifier) @method)
  arguments: (argument_list) @arguments
  (#any-of? @method "register_blueprint" "add_url_rule")) @call
