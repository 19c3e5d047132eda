/** Every bad environment variable, reported together. */
export class ConfigError extends Error {
  readonly code = 'GP_CONFIG_INVALID'
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`)
    this.name = 'ConfigError'
  }
}
