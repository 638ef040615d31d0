// The package root on Node.js. index-web.ts is its twin for runtimes without node: modules.
export * from './exports.js'
export { Webhooks } from './core/webhooks-node.js'
export { verify, sign } from './core/verify-node.js'
