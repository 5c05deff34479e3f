; Module-level `name = Callee(...)`: how DRF routers get their names
; (`router = DefaultRouter()`, `router = routers.SimpleRouter(trailing_slash=False)`). Whether the
; callee is a router class is decided on the Rust side, through the file's imports.
(module
  (expression_statement
    (assignment
      left: (identifier) @target
      right: (call
        function: [(identifier) (attribute)] @callee
        arguments: (argument_list) @arguments))))
