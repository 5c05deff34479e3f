; `name = callee(...)` and `name: T = callee(...)`, anywhere: how apps (`FastAPI()`,
; `Flask(__name__)`), routers and blueprints, and factory results (`app = create_app()`) get
; their names. Which callee it is gets decided on the Rust side, through the file's imports.
(assignment
  left: (identifier) @target
  right: (call
    function: [(identifier) (attribute)] @callee
    arguments: (argument_list) @arguments)) @assignment
