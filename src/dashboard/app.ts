import { loadAssets, type Asset } from './assets.js'
import { ActionTokens, checkAccess, crossSiteRefusal } from './guard.js'
import type { CheckedOptions } from './options.js'
import { deadLettersPage } from './pages/dead-letters.js'
import { eventListing } from './event-listing.js'
import { eventsPage } from './pages/events.js'
import type { PageContext } from './pages/layout.js'
import { overviewPage, type OverviewData } from './pages/overview.js'
import { Samples } from './samples.js'
import { ACTIONS, NEEDS, runAction, type Action } from './actions.js'
import { FlowControl } from './flow-control.js'
import { handlersPage } from './pages/handlers.js'
import { file, json, page, redirect, refusal, text, type DashboardResponse } from './responses.js'

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

export type { DashboardResponse } from './responses.js'

const DEAD_LIMIT = 100
/** How often the overview reads the store's counts, however many pages poll it. */
const STORE_READ_INTERVAL_MS = 2_000

type StoreView = Pick<OverviewData, 'counts' | 'countsError' | 'oldestPending'>

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
  readonly #flow: FlowControl
  #storeRead: { at: number, view: Promise<StoreView> } | undefined

  constructor (options: CheckedOptions<Req>, base: string) {
    this.#options = options
    this.#base = base.replace(/\/+$/, '')
    const { assets, charts } = loadAssets()
    this.#assets = assets
    this.#charts = charts
    this.#samples = new Samples(Math.ceil(3_600_000 / options.sampleIntervalMs), options.sampleIntervalMs)
    const { webhooks } = options
    this.#flow = new FlowControl(webhooks)
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
    try {
      return await this.#route(request)
    } catch (error) {
      // A store that is down is an answer an operator can act on, not a bare 500.
      this.#options.webhooks.logger?.error({ err: error, path: request.path }, 'the dashboard could not read or change the store')
      return text(503, `the store did not answer: ${error instanceof Error ? error.message : String(error)}\nTry again; the server log has the details.`, { 'retry-after': '5' })
    }
  }

  async #route (request: DashboardRequest<Req>): Promise<DashboardResponse> {
    if (request.method === 'POST') return await this.#action(request)
    if (request.method !== 'GET' && request.method !== 'HEAD') return text(405, 'GET for pages, POST for actions', { allow: 'GET, HEAD, POST' })
    const asset = /^\/assets\/([\w.-]+)$/.exec(request.path)?.[1]
    if (asset !== undefined) {
      const found = this.#assets.get(asset)
      return found === undefined ? text(404, 'no such file') : file(found.type, found.body)
    }
    switch (request.path) {
      case '/':
      case '':
        return page(overviewPage(this.#context(), await this.overview(), this.#charts && this.#options.webhooks.stats !== undefined))
      case '/api/overview':
        // `since`: the page's last sample, so that a refresh brings only the new ones;
        // `history`: the since-start chart too, which the page asks for now and then.
        return json(await this.overview(Number(request.query.get('since') ?? NaN), request.query.get('history') === '1'))
      case '/events':
        return page(await this.#eventsPage(request.query))
      case '/dead':
        return page(await this.#deadPage(request.query))
      case '/handlers':
        return page(await this.#handlersPage(request.query))
      default:
        return text(404, 'no such page')
    }
  }

  async overview (since = NaN, history = false): Promise<OverviewData> {
    const { webhooks, sampleIntervalMs } = this.#options
    const { counts, countsError, oldestPending } = await this.#storeView()
    const health = webhooks.health?.() ?? this.#inbox.health?.() ?? null
    return { stats: webhooks.stats?.() ?? null, health, counts, ...(countsError === undefined ? {} : { countsError }), ...(oldestPending === undefined ? {} : { oldestPending }), samples: this.#samples.list().filter((sample) => !(sample.t <= since)), ...(history ? { history: this.#samples.history.view() } : {}), sampleIntervalMs }
  }

  /**
   * The store's counts and oldest pending event, read at most once per
   * STORE_READ_INTERVAL_MS whatever the number of open pages: a count is a scan of
   * the table, and with SQLite it runs on the receiver's own event loop.
   */
  #storeView (): Promise<StoreView> {
    const now = Date.now()
    if (this.#storeRead !== undefined && now - this.#storeRead.at < STORE_READ_INTERVAL_MS) return this.#storeRead.view
    const view = this.#readStore()
    this.#storeRead = { at: now, view }
    return view
  }

  async #readStore (): Promise<StoreView> {
    if (typeof this.#inbox.counts !== 'function') return { counts: null }
    try {
      const counts = await this.#inbox.counts()
      const oldestPending = await this.#oldestPending()
      return { counts, ...(oldestPending === undefined ? {} : { oldestPending }) }
    } catch (error) {
      return { counts: null, countsError: `The store did not answer: ${error instanceof Error ? error.message : String(error)}` }
    }
  }

  /** How long the longest-waiting pending event has waited, in words; undefined where the inbox cannot list. */
  async #oldestPending (): Promise<string | undefined> {
    if (typeof this.#inbox.events !== 'function') return undefined
    const [oldest] = await this.#inbox.events({ state: 'pending', limit: 1, oldestFirst: true })
    return oldest === undefined ? 'none waiting' : age(Date.now() - oldest.receivedAt.getTime())
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
    const count = (name: string): number => Math.max(0, Number(query.get(name) ?? 0) | 0)
    const notice = query.get('purged') === '1'
      ? `Purged ${count('done')} done and ${count('dead')} dead event(s).`
      : query.has('redriven')
        ? `Re-drove ${count('redriven')} dead event(s)${count('skipped') > 0 ? `; ${count('skipped')} were no longer dead` : ''}.`
        : undefined
    return deadLettersPage(this.#context(), { dead, limit: DEAD_LIMIT, canRedrive: this.#can('redrive'), canRedriveFiltered: NEEDS['redrive-filtered'].every((method) => typeof this.#inbox[method] === 'function'), canPurge: this.#can('purge'), ...(notice === undefined ? {} : { notice }) })
  }

  async #handlersPage (query: URLSearchParams): Promise<string> {
    const done = query.get('done')
    const who = query.get('handler') ?? ''
    const notice = done === 'paused' || done === 'resumed'
      ? `${who === '' ? 'Every handler' : `Handler ${who}`} ${done}${done === 'paused' ? ': deliveries are still taken; its runs wait' : ''}.`
      : undefined
    return handlersPage(this.#context(), { ...await this.#flow.data(), canPause: this.#can('pause'), canList: typeof this.#inbox.events === 'function', ...(notice === undefined ? {} : { notice }) })
  }

  #can (action: Action): boolean {
    if (this.#options.readOnly) return false
    if (action === 'pause' || action === 'resume') return this.#flow.available
    return NEEDS[action].every((method) => typeof this.#inbox[method] === 'function')
  }

  /** Pause or resume: one handler by name, or every handler with an empty name. */
  async #pause (action: 'pause' | 'resume', form: URLSearchParams): Promise<DashboardResponse> {
    const name = (form.get('handler') ?? '').trim()
    if (name !== '' && !this.#flow.knows(name, await this.#flow.data())) return text(400, `no handler named ${JSON.stringify(name)} here`)
    await this.#flow.set(name === '' ? undefined : name, action === 'pause')
    return redirect(`${this.#base}/handlers?done=${action === 'pause' ? 'paused' : 'resumed'}&handler=${encodeURIComponent(name)}`)
  }

  async #action (request: DashboardRequest<Req>): Promise<DashboardResponse> {
    const action = ACTIONS.find((name) => request.path === `/actions/${name}`)
    if (action === undefined) return text(404, 'no such action')
    if (this.#options.readOnly) return text(403, 'this dashboard is read-only: no action runs')
    const crossSite = crossSiteRefusal(request.headers)
    if (crossSite !== undefined) return refusal(crossSite)
    const form = request.form ?? new URLSearchParams()
    if (!this.#tokens.verify(action, form.get('token'))) return text(403, 'the action token is missing, wrong or expired: reload the page and try again')
    if (!this.#can(action)) return text(404, `this inbox cannot ${action}`)
    if (action === 'pause' || action === 'resume') return await this.#pause(action, form)
    // An action changes the counts: the next overview reads them afresh.
    this.#storeRead = undefined
    return await runAction(action, form, this.#inbox, this.#context())
  }
}

function age (ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000))
  if (seconds < 120) return `${seconds} s`
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min`
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`
}
