; `router.register(prefix, ViewSet, basename=...)`: a ViewSet registered on a DRF router.
(call
  function: (attribute
    object: (_) @router
    attribute: (identifier) @method)
  arguments: (argument_list) @arguments
  (#eq? @method "register")) @call
