; How a URLconf module builds its `urlpatterns`, at module level, in source order:
; pattern 0: `urlpatterns = [...]` (or `= router.urls`, `= [...] + router.urls`);
; pattern 1: `urlpatterns += [...]`;
; pattern 2: `urlpatterns.append(path(...))` and `urlpatterns.extend([...])` (@method says which).
(module
  (expression_statement
    (assignment
      left: (identifier) @name
      right: (_) @value) @statement)
  (#eq? @name "urlpatterns"))

(module
  (expression_statement
    (augmented_assignment
      left: (identifier) @name
      operator: "+="
      right: (_) @value) @statement)
  (#eq? @name "urlpatterns"))

(module
  (expression_statement
    (call
      function: (attribute
        object: (identifier) @name
        attribute: (identifier) @method)
      arguments: (argument_list
        .
        (_) @value
        .)) @statement)
  (#eq? @name "urlpatterns")
  (#any-of? @method "append" "extend"))
