import { readFile } from 'node:fs/promises'
import { eventNames, type EventName, type KnownEvent } from '../core/events.js'
import { createEvent } from '../testing/event-factory.js'
import { UsageError, requiredFlag, stringFlag, type Command, type Flags } from './args.js'

/** The flags `send` and `sign` share to build one event. */
export const eventOptions: Command['options'] = {
  type: { type: 'string' },
  data: { type: 'string' },
  'data-file': { type: 'string' },
  id: { type: 'string' }
}

export const eventUsage = `  --type TYPE         event type, one of the 14 documented ones listed below
  --data JSON         the event's data as a JSON object, merged over realistic defaults
  --data-file FILE    the same, read from a file
  --id ID             the event id (default: a fresh evt_ id); reuse one to test deduplication`

/** The documented types, for the usage text of the commands that take --type. */
export const eventTypesUsage = `Event types (--type):\n${eventNames.map((name) => `  ${name}`).join('\n')}`

function parseData (text: string, flag: string): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    throw new UsageError(`--${flag} is not valid JSON: ${(error as Error).message}`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`--${flag} must be a JSON object (the event's "data"), got ${Array.isArray(value) ? 'an array' : typeof value}`)
  }
  return value as Record<string, unknown>
}

export function parseEventType (raw: string, flag = 'type'): EventName {
  if (!(eventNames as readonly string[]).includes(raw)) {
    throw new UsageError(`--${flag} must be one of: ${eventNames.join(', ')}; got ${JSON.stringify(raw)}`)
  }
  return raw as EventName
}

export async function eventFromFlags (flags: Flags): Promise<KnownEvent> {
  const type = parseEventType(requiredFlag(flags, 'type'))
  const inline = stringFlag(flags, 'data')
  const file = stringFlag(flags, 'data-file')
  if (inline !== undefined && file !== undefined) throw new UsageError('give --data or --data-file, not both')
  let data: Record<string, unknown> | undefined
  if (inline !== undefined) data = parseData(inline, 'data')
  if (file !== undefined) {
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (error) {
      throw new UsageError(`--data-file: cannot read ${JSON.stringify(file)} (${(error as NodeJS.ErrnoException).code ?? String(error)})`)
    }
    data = parseData(text, 'data-file')
  }
  const id = stringFlag(flags, 'id')
  if (id !== undefined && id.length === 0) throw new UsageError('--id must not be empty')
  return createEvent(type, data, id === undefined ? {} : { id }) as KnownEvent
}
