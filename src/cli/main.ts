#!/usr/bin/env node
// The `sir-webhooks` binary: the CLI (program.ts) on this process's argv and streams.
import { main } from './program.js'

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env })
