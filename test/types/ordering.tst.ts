// Type tests for ordering (issue 23), run by tstyche against the built declarations.
import { describe, expect, test } from 'tstyche'
import { Webhooks, type BlockedKey, type DeadLetterOrdering, type HandlerOrdering, type OrderingOptions, type OrderingStats } from 'sir-webhooks'

const receiverWith = (ordering: OrderingOptions): Webhooks => new Webhooks({ secret: 'whsec_dev', ordering })

describe('ordering', () => {
  test('the option takes a key function of the event, and the named settings', () => {
    expect(new Webhooks({ secret: 'whsec_dev', ordering: { key: (event) => `action:${event.id}`, onDeadLetter: 'block', skipStale: true, holdMs: 500 } })).type.toBe<Webhooks>()
    expect(receiverWith).type.not.toBeCallableWith({ key: 'data.actionId' })
    expect(receiverWith).type.not.toBeCallableWith({ key: () => 'k', onDeadLetter: 'retry' })
    expect(receiverWith).type.not.toBeCallableWith({ key: () => 42 })
    expect(receiverWith).type.not.toBeCallableWith({ key: () => 'k', holdMS: 100 })
  })

  test("the handler's context says where the event stands in its key, or undefined", () => {
    new Webhooks({ secret: 'whsec_dev' }).on('action.reversed', function reverseCredit (_event, { ordering }) {
      expect(ordering).type.toBe<HandlerOrdering | undefined>()
      if (ordering === undefined) return
      expect(ordering.key).type.toBe<string>()
      expect(ordering.stale).type.toBe<boolean>()
      expect(ordering.newestHandledAt).type.toBe<Date | undefined>()
    }, { name: 'reverseCredit' })
  })

  test('blocked keys, dead letters and stats', async () => {
    const webhooks = new Webhooks({ secret: 'whsec_dev', ordering: { key: () => 'k' } })
    expect(await webhooks.ordering.blocked()).type.toBe<BlockedKey[]>()
    expect(await webhooks.ordering.unblock('action:1')).type.toBe<boolean>()
    expect(webhooks.stats().ordering).type.toBe<OrderingStats | undefined>()
    webhooks.onDeadLetter((letter) => {
      expect(letter.ordering).type.toBe<DeadLetterOrdering | undefined>()
    })
  })
})
