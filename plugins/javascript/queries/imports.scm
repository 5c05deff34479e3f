; ES module imports: `import x, { a as b } from 'm'`, `import * as ns from 'm'`.
(import_statement
  (import_clause) @clause
  source: (string) @source) @import
