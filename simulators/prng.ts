// Seeded randomness: a run is reproducible from its seed (sfc32 seeded by splitmix32).
export interface Rng {
  /** Uniform in [0, 1). */
  next(): number
  int(minIncl: number, maxIncl: number): number
  /** Normal(mean, sd) by Box–Muller. */
  normal(mean?: number, sd?: number): number
  chance(p: number): boolean
  pick<T>(items: readonly T[]): T
  /** An independent stream derived from this seed and a label (per device). */
  fork(label: string): Rng
}

function splitmix32(a: number): () => number {
  return () => {
    a |= 0
    a = (a + 0x9e3779b9) | 0
    let t = a ^ (a >>> 16)
    t = Math.imul(t, 0x21f0aaad)
    t ^= t >>> 15
    t = Math.imul(t, 0x735a2d97)
    return (t ^ (t >>> 15)) >>> 0
  }
}

function hashLabel(seed: number, label: string): number {
  let h = (seed ^ 0x811c9dc5) >>> 0
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0
  return h
}

export function createRng(seed: number): Rng {
  const sm = splitmix32(seed)
  let a = sm()
  let b = sm()
  let c = sm()
  let d = sm()
  const next = () => {
    const t = (((a + b) | 0) + d) | 0
    d = (d + 1) | 0
    a = b ^ (b >>> 9)
    b = (c + (c << 3)) | 0
    c = (c << 21) | (c >>> 11)
    c = (c + t) | 0
    return (t >>> 0) / 4294967296
  }
  return {
    next,
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    normal: (mean = 0, sd = 1) => mean + sd * Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next()),
    chance: (p) => next() < p,
    pick: (items) => items[Math.floor(next() * items.length)]!,
    fork: (label) => createRng(hashLabel(seed, label)),
  }
}
