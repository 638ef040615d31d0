// Stands in for the user's own code in the docs/fetch.md snippets. It waits on
// a timer before recording, so a handler finishes only if the runtime keeps it
// alive after the response (on Workers, through waitUntil).
export const recorded = []

export async function recordAction (event) {
  await new Promise((resolve) => setTimeout(resolve, 25))
  recorded.push(event.id)
}
