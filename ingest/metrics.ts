import { Counter, Histogram, Registry } from 'prom-client'

export type IngestMetrics = ReturnType<typeof createMetrics>

/** rows/s (rate of rows_total), batch sizes, commit latency, rejects by reason, dedup hits. */
export function createMetrics(registry: Registry = new Registry()) {
  const existing = registry.getSingleMetric('gridpatrol_ingest_rows_total')
  if (existing) throw new Error('ingest metrics already registered in this registry')
  return {
    rows: new Counter({ name: 'gridpatrol_ingest_rows_total', help: 'Uplink rows stored, by kind', labelNames: ['kind'], registers: [registry] }),
    rejects: new Counter({ name: 'gridpatrol_ingest_rejects_total', help: 'Payloads stored as rejects, by reason code', labelNames: ['code'], registers: [registry] }),
    dedupHits: new Counter({ name: 'gridpatrol_ingest_dedup_hits_total', help: 'Records already stored (redelivery, retry, re-upload)', registers: [registry] }),
    conflicts: new Counter({ name: 'gridpatrol_ingest_seq_conflicts_total', help: 'Records whose seq was stored with another device time', registers: [registry] }),
    batchRows: new Histogram({
      name: 'gridpatrol_ingest_batch_rows',
      help: 'Records per committed transaction (group commit)',
      buckets: [1, 2, 5, 10, 50, 100, 500, 1000, 5000],
      registers: [registry],
    }),
    commitSeconds: new Histogram({
      name: 'gridpatrol_ingest_commit_seconds',
      help: 'Transaction latency of one group commit',
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: [registry],
    }),
    retries: new Counter({ name: 'gridpatrol_ingest_store_retries_total', help: 'Group commits retried because the database was unreachable', registers: [registry] }),
  }
}
