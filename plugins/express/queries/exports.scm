; ES module exports: `export default router`, `export { r as x }`, `export const r = Router()`.
(export_statement) @export
