; CommonJS exports: `module.exports = router`, `module.exports = { users, admin: adminRouter }`,
; `exports.users = router`, `module.exports.users = router`.
(assignment_expression
  left: (member_expression) @left
  right: (_) @value) @assignment

; ES module exports: `export default router`, `export const router = new Router()`,
; `export { router as users }`.
(export_statement) @export
