#!/usr/bin/env node
// Summarizes a V8 .cpuprofile (from `npm run bench -- --cpu-prof <dir>`): self time
// by function and by package, so the hot path can be read without a browser.
// Usage: node bench/profile-summary.js <file.cpuprofile> [top=30]
import { readFileSync } from 'node:fs'

const [file, topArgument = '30'] = process.argv.slice(2)
if (file === undefined) {
  console.error('usage: node bench/profile-summary.js <file.cpuprofile> [top]')
  process.exit(2)
}
const top = Number(topArgument)
const profile = JSON.parse(readFileSync(file, 'utf8'))

const byId = new Map(profile.nodes.map((node) => [node.id, node]))
const selfMicros = new Map()
const deltas = profile.timeDeltas
for (let index = 0; index < profile.samples.length; index++) {
  const id = profile.samples[index]
  selfMicros.set(id, (selfMicros.get(id) ?? 0) + (deltas[index] ?? 0))
}
const total = [...selfMicros.values()].reduce((sum, value) => sum + value, 0)

function place (frame) {
  const url = frame.url.replace(/^file:\/\//, '')
  const modules = url.lastIndexOf('node_modules/')
  if (modules !== -1) {
    const rest = url.slice(modules + 'node_modules/'.length).split('/')
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
  }
  if (url.includes('/dist/')) return 'sir-webhooks ' + url.slice(url.indexOf('/dist/') + 1)
  if (url.includes('/bench/')) return 'bench'
  if (url.startsWith('node:')) return url
  return url === '' ? '(native)' : url
}

const byFunction = new Map()
const byPackage = new Map()
for (const [id, micros] of selfMicros) {
  const frame = byId.get(id).callFrame
  const where = place(frame)
  const key = `${frame.functionName || '(anonymous)'}  ${where}:${frame.lineNumber + 1}`
  byFunction.set(key, (byFunction.get(key) ?? 0) + micros)
  byPackage.set(where, (byPackage.get(where) ?? 0) + micros)
}

const show = (title, map, count) => {
  console.log(`\n${title}`)
  for (const [key, micros] of [...map].sort((a, b) => b[1] - a[1]).slice(0, count)) {
    console.log(`${(100 * micros / total).toFixed(1).padStart(5)}%  ${(micros / 1000).toFixed(0).padStart(6)} ms  ${key}`)
  }
}
console.log(`${file}: ${(total / 1000).toFixed(0)} ms sampled`)
show('self time by package / file', byPackage, 25)
show('self time by function', byFunction, top)
