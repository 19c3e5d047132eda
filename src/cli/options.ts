import { InvalidArgumentError } from 'commander'

/**
 * A numeric option's parser: refuses what is not a number > 0 (or ≥ 0 with `min: 0`, whole with
 * `whole`), naming the flag, before the command runs.
 */
export function num(flag: string, o: { min?: 0; whole?: boolean } = {}): (v: string) => number {
  return (v: string): number => {
    const n = Number(v)
    const ok = v.trim() !== '' && Number.isFinite(n) && (o.min === 0 ? n >= 0 : n > 0) && (!o.whole || Number.isInteger(n))
    if (!ok) throw new InvalidArgumentError(`${flag} must be a ${o.whole ? 'whole ' : ''}number ${o.min === 0 ? '≥ 0' : '> 0'}.`)
    return n
  }
}
