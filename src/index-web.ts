// The package root on runtimes without node: modules (package.json picks it for
// the workerd, edge-light, worker and browser conditions). The synchronous
// node:crypto `verify` and `sign` are not here: use `verifyAsync` and `signAsync`.
export * from './exports.js'
export { Webhooks } from './core/webhooks-web.js'
