// Prometheus metrics of the broker, registered on the registry the caller passes.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'

export type BrokerMetrics = ReturnType<typeof createMetrics>

export function createMetrics(registry: Registry, sockets: { bytesRead(): number; bytesWritten(): number }) {
  const registers = [registry]
  return {
    connections: new Gauge({ name: 'gridpatrol_broker_connections', help: 'Open MQTT connections', labelNames: ['listener'], registers }),
    connects: new Counter({ name: 'gridpatrol_broker_connects_total', help: 'CONNECT outcomes', labelNames: ['result'], registers }),
    messagesIn: new Counter({ name: 'gridpatrol_broker_messages_in_total', help: 'Accepted PUBLISH packets by kind', labelNames: ['kind'], registers }),
    messagesOut: new Counter({ name: 'gridpatrol_broker_messages_out_total', help: 'Messages forwarded to subscribers by kind', labelNames: ['kind'], registers }),
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
    flapDelays: new Counter({ name: 'gridpatrol_broker_flap_delays_total', help: 'Connect attempts slowed down for reconnecting too often', registers }),
    sinkFailures: new Counter({ name: 'gridpatrol_broker_sink_failures_total', help: 'Uplink commits that threw (retried, not acked)', registers }),
    hookSeconds: new Histogram({
      name: 'gridpatrol_broker_hook_seconds',
      help: 'Latency of broker hooks (authenticate, commit)',
      labelNames: ['hook'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
  }
}
