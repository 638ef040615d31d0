// setImmediate where the runtime has it (Node, Bun, Deno); Workers and Edge
// runtimes have only setTimeout, which is also a macrotask.
export const nextMacrotask: (task: () => void) => void = typeof setImmediate === 'function'
  ? (task) => { setImmediate(task) }
  : (task) => { setTimeout(task, 0) }
