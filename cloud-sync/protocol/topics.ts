/** Topic root of the native format: `langbiang/v1/{gatewayId}/…` (docs/protocol.md). */
export const TOPIC_ROOT = 'langbiang/v1';

export interface GatewayTopics {
  telemetry: string;
  events: string;
  status: string;
  cmd: string;
  cmdResult: string;
  /** downlink of new configs (gateway/remote-config), subscribed when remote config is on */
  config: string;
  /** the city's end-to-end acknowledgement of what it has stored (protocol/ack.ts) */
  ack: string;
  /** the city's signed update orders (gateway/update), subscribed when remote updates are on */
  update: string;
}

export function topicsFor(gatewayId: string): GatewayTopics {
  const base = `${TOPIC_ROOT}/${gatewayId}`;
  return {
    telemetry: `${base}/telemetry`,
    events: `${base}/events`,
    status: `${base}/status`,
    cmd: `${base}/cmd`,
    cmdResult: `${base}/cmd/result`,
    config: `${base}/config`,
    ack: `${base}/ack`,
    update: `${base}/update`,
  };
}

/** What a topic of the native format names, or null for anything else. */
export function parseTopic(
  topic: string,
): { gateway: string; kind: 'telemetry' | 'events' | 'status' | 'cmd' | 'cmd/result' | 'ack' } | null {
  const m = /^langbiang\/v1\/([^/+#]+)\/(telemetry|events|status|cmd|cmd\/result|ack)$/.exec(topic);
  return m ? { gateway: m[1]!, kind: m[2] as 'telemetry' } : null;
}
