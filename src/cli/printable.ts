// Control characters from stored or received data (C0, DEL, C1): a terminal acts
// on them. ESC starts a sequence that can clear the screen, move the cursor or
// retitle the window, and U+009B is a one-character CSI on some terminals, so an
// event type or a handler error could print fake text over an operator's table.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g
// The same, less newline and tab: for multi-line text laid out as it was received.
// eslint-disable-next-line no-control-regex
const CONTROL_BUT_LAYOUT = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g

function hex (character: string): string {
  return '\\x' + character.charCodeAt(0).toString(16).padStart(2, '0')
}

/**
 * Data for a human-readable line, with every control character written as
 * `\xHH`. Every value that came from a store, a request or a response goes
 * through here (or `printableLines`) before it reaches a terminal; `--json`
 * output goes through `terminalJson` instead.
 */
export function printable (text: string): string {
  return text.replace(CONTROL, hex)
}

/** `printable`, keeping newlines and tabs: for a body or a JSON document shown over several lines. */
export function printableLines (text: string): string {
  return text.replace(CONTROL_BUT_LAYOUT, hex)
}

// JSON.stringify escapes C0 but leaves DEL and C1 (U+009B among them) as they are.
const UNESCAPED_BY_JSON = /[\u007f-\u009f]/g

/**
 * JSON for `--json`: JSON.stringify's, with DEL and C1 written as `\u00XX` too, so
 * a document piped to a terminal cannot drive it either. A parser reads the same values.
 */
export function terminalJson (value: unknown): string {
  return JSON.stringify(value, null, 2).replace(UNESCAPED_BY_JSON, (character) => '\\u00' + character.charCodeAt(0).toString(16))
}
