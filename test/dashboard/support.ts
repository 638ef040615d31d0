import type { Test } from 'tap'
import { join } from 'node:path'
import Fastify, { type FastifyInstance } from 'fastify'
import dashboard from '../../src/dashboard/index.js'
import type { FastifyDashboardOptions } from '../../src/dashboard/fastify.js'
import type { Inbox } from '../../src/index.js'
import { sqliteInbox } from '../../src/sqlite/inbox.js'
import { tempDir } from '../inbox-contract/scenarios.js'
import { receiver } from '../inbox-contract/support.js'

export const PREFIX = '/ops/webhooks'
export const OPERATOR = { username: 'operator', password: 'correct horse battery' }
export const BASIC = 'Basic ' + Buffer.from(`${OPERATOR.username}:${OPERATOR.password}`).toString('base64')
export const XSS = '<img src=x onerror=alert(1)>'
export const TERMINAL = '\u001b[2J'

type Teardown = Test

/** A receiver on a SQLite inbox whose handler fails while `failing.on` is true, and records each success. */
export function sqliteReceiver (t: Teardown): { webhooks: ReturnType<typeof receiver>, handled: string[], failing: { on: boolean } } {
  const inbox = sqliteInbox({ path: join(tempDir(t), 'inbox.db') })
  return withHandler(t, inbox)
}

/** `options`: more receiver options, such as `ordering`. */
export function withHandler (t: Teardown, inbox: Inbox, options: Parameters<typeof receiver>[1] = {}): { webhooks: ReturnType<typeof receiver>, handled: string[], failing: { on: boolean } } {
  const webhooks = receiver(inbox, { retry: { attempts: 2, minDelayMs: 5, maxDelayMs: 10 }, ...options })
  t.teardown(() => webhooks.close())
  const handled: string[] = []
  const failing = { on: true }
  webhooks.on('action.completed', async function award (event) {
    // The error carries markup and a terminal escape: the page must show it as text.
    if (failing.on) throw new Error(`award failed for ${XSS} ${TERMINAL}`)
    handled.push(event.id)
  })
  return { webhooks, handled, failing }
}

/** A Fastify app with the dashboard mounted; `extra` overrides the options. */
export async function fastifyApp (t: Teardown, webhooks: FastifyDashboardOptions['webhooks'], extra: Partial<FastifyDashboardOptions> = {}): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(dashboard, { webhooks, prefix: PREFIX, basicAuth: OPERATOR, sampleIntervalMs: 200, ...extra })
  await app.ready()
  t.teardown(() => app.close())
  return app
}

/** The token of an action's form on a page. */
export function tokenOn (page: string, action: string): string {
  const match = new RegExp(`action="${PREFIX}/actions/${action}"[\\s\\S]*?name="token" value="([^"]+)"`).exec(page)
  if (match?.[1] === undefined) throw new Error(`no ${action} form on the page`)
  return match[1]
}

export function form (fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString()
}

export const SAME_ORIGIN = { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost:80', host: 'localhost:80', 'sec-fetch-site': 'same-origin' }
