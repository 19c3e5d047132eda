export { loadConfig, describeEnv } from './load.ts'
export { ConfigError } from './errors.ts'
export type { Config } from './schema.ts'
