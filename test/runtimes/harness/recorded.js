import { recorded } from '../apps/actions.js'

// What the suite reads back: the ids the snippet's handlers recorded. A
// separate path, so the snippet itself is served unchanged.
export const RECORDED_PATH = '/__recorded'

/** Wraps a snippet's fetch: GET /__recorded answers the record, anything else goes to the snippet with every argument. */
export function serveRecorded (fetch, extra = () => ({})) {
  return (request, ...rest) => new URL(request.url).pathname === RECORDED_PATH
    ? Response.json({ recorded, ...extra() })
    : fetch(request, ...rest)
}
