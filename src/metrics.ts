// Prometheus metrics (GET /metrics). One registry per gateway instance so
// tests that start several gateways in one process do not collide.
import client from 'prom-client';

export function createMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  const m = {
    registry,
    accepted: new client.Counter({ name: 'relaygate_messages_accepted_total', help: 'Messages accepted', labelNames: ['source'], registers: [registry] }),
    rejected: new client.Counter({ name: 'relaygate_messages_rejected_total', help: 'Submissions refused, by reason', labelNames: ['source', 'reason'], registers: [registry] }),
    deliveries: new client.Counter({ name: 'relaygate_deliveries_total', help: 'Delivery attempt outcomes per recipient', labelNames: ['result', 'bounce_class'], registers: [registry] }),
    deliveryLatency: new client.Histogram({
      name: 'relaygate_delivery_latency_seconds',
      help: 'Acceptance to delivery',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 1800, 7200, 86400],
      registers: [registry],
    }),
    queueDepth: new client.Gauge({ name: 'relaygate_queue_depth', help: 'Recipients not yet delivered, bounced or expired', registers: [registry] }),
    trackingHits: new client.Counter({ name: 'relaygate_tracking_hits_total', help: 'Tracking requests', labelNames: ['kind', 'result'], registers: [registry] }),
    webhookFailures: new client.Counter({ name: 'relaygate_webhook_failures_total', help: 'Failed webhook calls', registers: [registry] }),
    webhookDeliveries: new client.Counter({ name: 'relaygate_webhook_deliveries_total', help: 'Successful webhook calls', registers: [registry] }),
  };
  return m;
}

export type Metrics = ReturnType<typeof createMetrics>;
