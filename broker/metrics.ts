// Prometheus metrics of the broker, registered on the registry the caller passes.
// Per-message counters (messages in/out by kind) are plain numbers on the hot path,
// handed to prom-client at scrape time: a labelled inc() hashes its labels on every
// call, twice per message otherwise.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export type BrokerMetrics = ReturnType<typeof createMetrics>

/** A counter by one label whose increments are summed locally and exported at scrape. */
export class KindCounter {
  private readonly counts = new Map<string, { n: number }>()

  constructor(registry: Registry, name: string, help: string) {
    const counts = this.counts
    new Counter({
      name,
      help,
      labelNames: ['kind'],
      registers: [registry],
      collect() {
        this.reset()
        for (const [kind, c] of counts) this.inc({ kind }, c.n)
      },
    })
  }

  /** The cell of one kind, to keep and bump with `cell.n++`. */
  cell(kind: string): { n: number } {
    let c = this.counts.get(kind)
    if (!c) this.counts.set(kind, (c = { n: 0 }))
    return c
  }

  inc(kind: string): void {
    this.cell(kind).n++
  }
}

export function createMetrics(registry: Registry, sockets: { bytesRead(): number; bytesWritten(): number }) {
  const registers = [registry]
  const hookSeconds = new Histogram({
    name: 'gridpatrol_broker_hook_seconds',
    help: 'Latency of broker hooks (authenticate, commit)',
    labelNames: ['hook'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  })
  return {
    connections: new Gauge({ name: 'gridpatrol_broker_connections', help: 'Open MQTT connections', labelNames: ['listener'], registers }),
    connects: new Counter({ name: 'gridpatrol_broker_connects_total', help: 'CONNECT outcomes', labelNames: ['result'], registers }),
    messagesIn: new KindCounter(registry, 'gridpatrol_broker_messages_in_total', 'Accepted PUBLISH packets by kind'),
    messagesOut: new KindCounter(registry, 'gridpatrol_broker_messages_out_total', 'Messages forwarded to subscribers by kind'),
    bytesIn: new Counter({
      name: 'gridpatrol_broker_bytes_in_total',
      help: 'Bytes read from MQTT connections',
      registers,
      collect() {
        this.reset()
        this.inc(sockets.bytesRead())
      },
    }),
    bytesOut: new Counter({
      name: 'gridpatrol_broker_bytes_out_total',
      help: 'Bytes written to MQTT connections',
      registers,
      collect() {
        this.reset()
        this.inc(sockets.bytesWritten())
      },
    }),
    refusals: new Counter({ name: 'gridpatrol_broker_refusals_total', help: 'Refused connects, publishes and subscriptions by reason', labelNames: ['stage', 'reason'], registers }),
    shed: new Counter({ name: 'gridpatrol_broker_shed_total', help: 'QoS 0 deliveries dropped for a subscriber over its queue bound', registers }),
    slowConsumers: new Counter({ name: 'gridpatrol_broker_slow_consumer_disconnects_total', help: 'Subscribers disconnected with QoS 1 messages over their queue bound', registers }),
    throttled: new Counter({ name: 'gridpatrol_broker_throttled_total', help: 'Publishes delayed by the per-device rate limit', registers }),
    routingHolds: new Counter({ name: 'gridpatrol_broker_routing_holds_total', help: 'Publishes held before their ack while the routing backlog was over its high-water mark', registers }),
    flapDelays: new Counter({ name: 'gridpatrol_broker_flap_delays_total', help: 'Connect attempts slowed down for reconnecting too often', registers }),
    sinkFailures: new Counter({ name: 'gridpatrol_broker_sink_failures_total', help: 'Uplink commits that threw (retried, not acked)', registers }),
    authenticateSeconds: hookSeconds.labels('authenticate'),
    commitSeconds: hookSeconds.labels('commit'),
  }
}

/** Seconds since `startMs` (performance.now()), for the hook histogram. */
export const secondsSince = (startMs: number) => (performance.now() - startMs) / 1000
