; CommonJS exports: `module.exports = router`, `module.exports = { a, b }`,
; `exports.x = router`, `module.exports.x = router`.
(assignment_expression
  left: (member_expression) @left
  right: (_) @value) @assignment
