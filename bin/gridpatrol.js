#!/usr/bin/env node
// The `gridpatrol` command. Sources are TypeScript, run through tsx's loader.
import { register } from 'tsx/esm/api'

register()
const { main } = await import('../src/cli/index.ts')
await main(process.argv)
