// Stands in for next/server in the Node runs (Next.js itself is not installed
// here): after() keeps what it is given until it settles, as Next does after
// the response. The suite reads how many were kept and how many settled.
const kept = { given: 0, settled: 0 }

export function after (task) {
  kept.given += 1
  const work = typeof task === 'function' ? Promise.resolve().then(task) : Promise.resolve(task)
  work.then(() => { kept.settled += 1 }, () => { kept.settled += 1 })
}

export function afterCounts () {
  return { ...kept }
}
