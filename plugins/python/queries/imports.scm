; Every name an import statement binds, anywhere in a file (module level or inside a function).
; Relative `from` imports keep their dots in @from; the Rust side splits them off.

; import a.b.c  (binds `a`)
(import_statement
  name: (dotted_name) @module) @import

; import a.b.c as x
(import_statement
  name: (aliased_import
    name: (dotted_name) @module
    alias: (identifier) @alias)) @import

; from m import n
(import_from_statement
  module_name: (_) @from
  name: (dotted_name) @name) @import

; from m import n as x
(import_from_statement
  module_name: (_) @from
  name: (aliased_import
    name: (dotted_name) @name
    alias: (identifier) @alias)) @import

; from m import *
(import_from_statement
  module_name: (_) @from
  (wildcard_import) @star) @import
