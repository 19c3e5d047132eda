// Writes sample-city.json (tens of grids) deterministically: `npx tsx simulators/scenarios/generate.ts`.
import { writeFileSync } from 'node:fs'
import { createRng } from '../prng.ts'
import type { ScenarioInput } from '../scenario.ts'

export function sampleCity(): ScenarioInput {
  const rng = createRng(20250310)
  const districts: ScenarioInput['city']['districts'] = []
  const devices: ScenarioInput['devices'] = []
  const plans: NonNullable<ScenarioInput['plans']> = []
  const methods = ['nfc', 'nfc', 'rfid', 'ibutton', 'qr', 'gps'] as const
  let tag = 0x04a10000
  for (let d = 1; d <= 2; d++) {
    const streets = []
    for (let s = 1; s <= 2; s++) {
      const grids = []
      for (let g = 1; g <= 6; g++) {
        const gid = `D${d}-S${s}-G${String(g).padStart(2, '0')}`
        const lat0 = 31.2 + d * 0.03 + s * 0.01 + g * 0.002
        const lon0 = 121.44 + d * 0.03 + g * 0.002
        const n = 4 + (g % 3)
        const checkpoints = Array.from({ length: n }, (_, i) => {
          const method = methods[(g + i) % methods.length]!
          return {
            id: `${gid}-CP${i + 1}`,
            name: `${gid} checkpoint ${i + 1}`,
            ...(method === 'gps' ? {} : { tagId: (tag++).toString(16).toUpperCase() }),
            method,
            lat: Math.round((lat0 + Math.cos(i) * 0.0008 + rng.normal(0, 0.0001)) * 1e6) / 1e6,
            lon: Math.round((lon0 + Math.sin(i) * 0.0008 + rng.normal(0, 0.0001)) * 1e6) / 1e6,
          }
        })
        grids.push({ id: gid, name: `Community grid ${g}`, code: `310101${String(d).padStart(3, '0')}${String(s).padStart(3, '0')}${String(g).padStart(3, '0')}`, checkpoints })
        plans.push({
          gridId: gid,
          windows: { kind: 'shifts', shifts: [{ name: 'morning', start: '08:00', end: '12:00' }, { name: 'afternoon', start: '12:00', end: '18:00' }, { name: 'evening', start: '18:00', end: '22:00' }] },
          visitsPerWindow: 1,
          maxGapMinutes: 360,
        })
        devices.push({ type: 'patrol', id: `patrol-${gid}`, gridId: gid, badgeId: `B${d}${s}${g}`, route: { rounds: ['08:30', '13:30', '19:00'] }, clock: { driftPpm: Math.round(rng.normal(0, 20)), offsetMs: rng.int(-2000, 2000) } })
      }
      streets.push({ id: `D${d}-S${s}`, name: `Street ${d}.${s}`, grids })
    }
    districts.push({ id: `D${d}`, name: `District ${d}`, streets })
  }
  const metrics = ['water_level', 'tilt', 'smoke', 'temperature'] as const
  metrics.forEach((metric, i) => devices.push({ type: 'sensor', id: `sensor-${metric.replace('_', '-')}-${i + 1}`, gridId: 'D1-S1-G01', metric, reportIntervalS: 300 }))
  return {
    name: 'sample-city',
    description: 'Two districts, four streets, 24 community grids; one patroller per grid, three rounds a day, and a day of faults.',
    start: '2025-03-10',
    days: 1,
    seed: 42,
    timeZone: 'Asia/Shanghai',
    city: { name: 'Sample City', districts },
    plans,
    devices,
    faults: [
      { device: 'patrol-D1-S1-G01', at: '08:20', kind: 'offline', durationMinutes: 90 },
      { device: 'patrol-D1-S1-G02', at: '13:00', kind: 'skip', checkpointId: 'D1-S1-G02-CP2', durationMinutes: 120 },
      { device: 'patrol-D1-S1-G03', at: '07:00', kind: 'clock_reset' },
      { device: 'patrol-D1-S1-G03', at: '12:00', kind: 'time_sync' },
      { device: 'patrol-D1-S1-G04', at: '08:31', kind: 'reboot', durationMinutes: 2 },
      { device: 'patrol-D1-S1-G05', at: '08:29', kind: 'duplicate', count: 3 },
      { device: 'patrol-D1-S1-G06', at: '13:29', kind: 'ack_loss', count: 2 },
      { device: 'patrol-D1-S2-G01', at: '10:15', kind: 'sos' },
      { device: 'patrol-D1-S2-G02', at: '14:00', kind: 'low_battery', pct: 12 },
      { device: 'patrol-D1-S2-G03', at: '17:30', kind: 'power_off', durationMinutes: 240 },
      { device: 'patrol-D2-S1-G01', at: '00:00', kind: 'clock_drift', ppm: 500 },
      { device: 'patrol-D2-S1-G02', at: '18:55', kind: 'offline', durationMinutes: 20 },
      { device: 'patrol-D2-S1-G02', at: '19:05', kind: 'man_down' },
      { device: 'sensor-water-level-1', at: '15:00', kind: 'anomaly', value: 2.8, durationMinutes: 45 },
    ],
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  writeFileSync(new URL('./sample-city.json', import.meta.url), JSON.stringify(sampleCity(), null, 1) + '\n')
}
