import type { OutcomeState } from '../core/outcome.js'
import { loadAssets, type Asset } from './assets.js'
import { escapeHtml } from './escape.js'
import { ActionTokens, checkAccess, crossSiteRefusal, type Refusal } from './guard.js'
import type { CheckedOptions } from './options.js'
import { deadLettersPage, purgeConfirmPage } from './pages/dead-letters.js'
import { eventListing } from './event-listing.js'
import { eventsPage } from './pages/events.js'
import type { PageContext } from './pages/layout.js'
import { overviewPage, type OverviewData } from './pages/overview.js'
import { Samples } from './samples.js'

/** One request, as every adapter hands it over. */
export interface DashboardRequest<Req> {
  method: string
  /** The path below the dashboard's prefix, starting with "/". */
  path: string
  query: URLSearchParams
  headers: { authorization?: string, origin?: string, secFetchSite?: string, host?: string, forwardedHost?: string }
  /** A POST's form fields (application/x-www-form-urlencoded). */
  form?: URLSearchParams
  /** The framework's own request, for `authorize`. */
  raw: Req
}

export interface DashboardResponse {
  status: number
  headers: Record<string, string>
  body: string | Buffer
}

// No inline script or style: a payload that slipped past escaping still could not run.
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // same-origin, not no-referrer: with no-referrer, browsers send "Origin: null" on a form POST and
  // the same-origin check could not tell the dashboard's own forms from a forged one.
  'referrer-policy': 'same-origin',
  'cache-control': 'no-store'
}

const DEAD_LIMIT = 100

/**
 * The framework-free dashboard: routes a request to a page, an asset or an
 * action after the access check. The adapters (fastify.ts, node.ts) only
 * translate requests and answers.
 */
export class Dashboard<Req> {
  readonly #options: CheckedOptions<Req>
  readonly #base: string
  readonly #assets: Map<string, Asset>
  readonly #charts: boolean
  readonly #tokens = new ActionTokens()
  readonly #samples: Samples

  constructor (options: CheckedOptions<Req>, base: string) {
    this.#options = options
    this.#base = base.replace(/\/+$/, '')
    const { assets, charts } = loadAssets()
    this.#assets = assets
    this.#charts = charts
    this.#samples = new Samples(Math.ceil(3_600_000 / options.sampleIntervalMs))
    const { webhooks } = options
    if (webhooks.stats !== undefined) this.#samples.start(() => webhooks.stats!(), options.sampleIntervalMs)
  }

  close (): void {
    this.#samples.stop()
  }

  get #inbox (): CheckedOptions<Req>['webhooks']['inbox'] { return this.#options.webhooks.inbox }

  #context (): PageContext {
    return { base: this.#base, title: this.#options.title, readOnly: this.#options.readOnly, token: (action) => this.#tokens.issue(action) }
  }

  async handle (request: DashboardRequest<Req>): Promise<DashboardResponse> {
    const refused = await checkAccess(this.#options, request.raw, request.headers.authorization)
    if (refused !== undefined) return refusal(refused)
    if (request.method === 'POST') return await this.#action(request)
    if (request.method !== 'GET' && request.method !== 'HEAD') return text(405, 'GET for pages, POST for actions', { allow: 'GET, HEAD, POST' })
    const asset = /^\/assets\/([\w.-]+)$/.exec(request.path)?.[1]
    if (asset !== undefined) {
      const found = this.#assets.get(asset)
      return found === undefined ? text(404, 'no such file') : { status: 200, headers: { ...SECURITY_HEADERS, 'content-type': found.type }, body: found.body }
    }
    switch (request.path) {
      case '/':
      case '':
        return page(overviewPage(this.#context(), await this.overview(), this.#charts && this.#options.webhooks.stats !== undefined))
      case '/api/overview':
        // `since`: the page's last sample, so that a refresh brings only the new ones.
        return { status: 200, headers: { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(await this.overview(Number(request.query.get('since') ?? NaN))) }
      case '/events':
        return page(await this.#eventsPage(request.query))
      case '/dead':
        return page(await this.#deadPage(request.query))
      default:
        return text(404, 'no such page')
    }
  }

  async overview (since = NaN): Promise<OverviewData> {
    const { webhooks, sampleIntervalMs } = this.#options
    let counts: Record<OutcomeState, number> | null = null
    let countsError: string | undefined
    if (typeof this.#inbox.counts === 'function') {
      try {
        counts = await this.#inbox.counts()
      } catch (error) {
        countsError = `The store did not answer: ${error instanceof Error ? error.message : String(error)}`
      }
    }
    const health = webhooks.health?.() ?? this.#inbox.health?.() ?? null
    return { stats: webhooks.stats?.() ?? null, health, counts, ...(countsError === undefined ? {} : { countsError }), samples: this.#samples.list().filter((sample) => !(sample.t <= since)), sampleIntervalMs }
  }

  async #eventsPage (query: URLSearchParams): Promise<string> {
    const history = typeof this.#inbox.outcome === 'function'
    const q = (query.get('q') ?? '').trim()
    const outcome = history && q !== '' ? await this.#inbox.outcome?.(q) : undefined
    const notice = query.get('done') === 'redriven' ? 'Re-driven: the event is queued again, its attempts reset.' : undefined
    const listing = q === '' && typeof this.#inbox.events === 'function' ? await eventListing(this.#inbox.events.bind(this.#inbox), query) : undefined
    return eventsPage(this.#context(), { history, query: q, outcome, canRedrive: this.#can('redrive'), listing, ...(notice === undefined ? {} : { notice }) })
  }

  async #deadPage (query: URLSearchParams): Promise<string> {
    const dead = typeof this.#inbox.deadLetters === 'function' ? await this.#inbox.deadLetters({ limit: DEAD_LIMIT }) : undefined
    const done = Number(query.get('done') ?? NaN)
    const notice = query.get('purged') === '1' && Number.isSafeInteger(done)
      ? `Purged ${done} done and ${Number(query.get('dead') ?? 0) | 0} dead event(s).`
      : undefined
    return deadLettersPage(this.#context(), { dead, limit: DEAD_LIMIT, canRedrive: this.#can('redrive'), canPurge: this.#can('purge'), ...(notice === undefined ? {} : { notice }) })
  }

  #can (action: 'redrive' | 'purge'): boolean {
    return !this.#options.readOnly && typeof this.#inbox[action] === 'function'
  }

  async #action (request: DashboardRequest<Req>): Promise<DashboardResponse> {
    const action = /^\/actions\/(redrive|purge)$/.exec(request.path)?.[1] as 'redrive' | 'purge' | undefined
    if (action === undefined) return text(404, 'no such action')
    if (this.#options.readOnly) return text(403, 'this dashboard is read-only: no action runs')
    const crossSite = crossSiteRefusal(request.headers)
    if (crossSite !== undefined) return refusal(crossSite)
    const form = request.form ?? new URLSearchParams()
    if (!this.#tokens.verify(action, form.get('token'))) return text(403, 'the action token is missing, wrong or expired: reload the page and try again')
    if (!this.#can(action)) return text(404, `this inbox cannot ${action}`)
    if (action === 'redrive') {
      const id = form.get('id') ?? ''
      if (id === '') return text(400, 'which event? the form needs an id')
      if (!await this.#inbox.redrive?.(id)) return text(409, `no dead event with id ${JSON.stringify(id)}: re-driven or purged already?`)
      return redirect(`${this.#base}/events?q=${encodeURIComponent(id)}&done=redriven`)
    }
    const before = new Date(form.get('before') ?? '')
    if (Number.isNaN(before.getTime())) return text(400, 'the purge needs a date: "before" must be an ISO 8601 date')
    if (form.get('confirm') !== 'yes') return page(purgeConfirmPage(this.#context(), before))
    const result = await this.#inbox.purge?.({ before })
    return redirect(`${this.#base}/dead?purged=1&done=${result?.done ?? 0}&dead=${result?.dead ?? 0}`)
  }
}

function page (body: string): DashboardResponse {
  return { status: 200, headers: { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8' }, body }
}

function text (status: number, message: string, headers: Record<string, string> = {}): DashboardResponse {
  return { status, headers: { ...SECURITY_HEADERS, ...headers, 'content-type': 'text/plain; charset=utf-8' }, body: message + '\n' }
}

function refusal ({ status, message, headers }: Refusal): DashboardResponse {
  return text(status, message, headers)
}

function redirect (location: string): DashboardResponse {
  // 303: the browser follows with a GET, so a reload does not post the action again.
  return { status: 303, headers: { ...SECURITY_HEADERS, location, 'content-type': 'text/html; charset=utf-8' }, body: `<a href="${escapeHtml(location)}">continue</a>\n` }
}
