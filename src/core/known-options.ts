import { WebhookOptionsError } from './errors.js'

/**
 * Refuses option names nobody reads. From JavaScript, `{ toleranceSecs: 5 }` would
 * otherwise run with the default and nobody would know; the message names the
 * nearest valid option, as a compiler would.
 */
export function assertKnownOptions (options: object, known: readonly string[], where: string): void {
  for (const name of Object.keys(options)) {
    if (known.includes(name)) continue
    const nearest = nearestName(name, known)
    const hint = nearest === undefined ? `valid options are ${known.map((option) => `"${option}"`).join(', ')}` : `did you mean "${nearest}"?`
    throw new WebhookOptionsError(`${where}: unknown option "${name}"; ${hint}`)
  }
}

/** The known name closest to a typo, when it is close enough to be what was meant. */
export function nearestName (name: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = Infinity
  const lower = name.toLowerCase()
  for (const candidate of known) {
    const distance = editDistance(lower, candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  // A third of the name may be wrong, and at least two letters: "toleranceSecs" is
  // "toleranceSeconds", "foo" is nothing in particular.
  return bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined
}

// Twenty lines of Levenshtein rather than a dependency: it runs only at start-up,
// on names of a few dozen letters, and the Web build must stay dependency-light.
function editDistance (a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index)
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i]
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1)
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution))
    }
    previous = current
  }
  return previous[b.length] as number
}
