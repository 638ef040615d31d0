import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

export interface Asset {
  type: string
  body: Buffer
}

// The same folder from src/dashboard/ (tests) and dist/dashboard/ (the package ships src/).
const OWN = new URL('../../src/dashboard/assets/', import.meta.url)

function uplotFile (name: string): Buffer | undefined {
  try {
    // uPlot is an optional peer: the page works without it and says how to get charts.
    return readFileSync(createRequire(import.meta.url).resolve(`uplot/dist/${name}`))
  } catch {
    return undefined
  }
}

/** The dashboard's static files, read once at registration: never from a request's path. */
export function loadAssets (): { assets: Map<string, Asset>, charts: boolean } {
  const uplot = uplotFile('uPlot.iife.min.js')
  const uplotCss = uplotFile('uPlot.min.css')
  const ownCss = readFileSync(new URL('dashboard.css', OWN))
  const assets = new Map<string, Asset>([
    ['dashboard.js', { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('dashboard.js', OWN)) }],
    ['dashboard.css', { type: 'text/css; charset=utf-8', body: uplotCss === undefined ? ownCss : Buffer.concat([uplotCss, Buffer.from('\n'), ownCss]) }]
  ])
  if (uplot !== undefined) assets.set('uPlot.iife.min.js', { type: 'text/javascript; charset=utf-8', body: uplot })
  return { assets, charts: uplot !== undefined }
}
