export * from './exports.js'
export { Webhooks } from './core/webhooks.js'
export { verify, sign, computeDigest } from './core/verify.js'
