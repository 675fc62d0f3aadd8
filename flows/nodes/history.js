const { bridgeOf, durationField, num } = require('./lib/gateway.js');

module.exports = async (RED) => {
  const duration = await durationField();

  function LangbiangHistory(config) {
    RED.nodes.createNode(this, config);
    const bridge = bridgeOf(RED);
    if (!bridge) this.status({ fill: 'red', shape: 'ring', text: 'no gateway' });

    this.on('input', async (msg, send, done) => {
      if (!bridge) return done(new Error('not running on a Langbiang gateway'));
      let query;
      try {
        const to = toMs('to', msg.to) ?? Date.now();
        const from = toMs('from', msg.from) ?? to - duration('range', msg.range ?? config.range, '1h');
        query = {
          device: msg.device || config.device || undefined,
          point: msg.point || config.point || undefined,
          from,
          to,
          limit: num('limit', msg.limit ?? config.limit, 1000),
          order: config.order === 'desc' ? 'desc' : 'asc',
        };
      } catch (err) {
        this.status({ fill: 'red', shape: 'ring', text: String(err.message).slice(0, 80) });
        return done(err);
      }
      try {
        const rows = await bridge.history(query);
        this.status({ fill: 'green', shape: 'dot', text: `${rows.length} readings` });
        send({
          ...msg,
          topic: [query.device, query.point].filter(Boolean).join('/') || 'history',
          payload: rows.map((r) => ({
            seq: r.seq,
            device: r.device,
            point: r.point,
            ts: r.ts,
            value: r.value,
            unit: r.unit,
            quality: r.quality,
          })),
          query,
        });
        done();
      } catch (err) {
        this.status({ fill: 'red', shape: 'ring', text: String(err.message).slice(0, 60) });
        done(err);
      }
    });
  }
  RED.nodes.registerType('langbiang history', LangbiangHistory);
};

/** ms since epoch from a number, a Date or an ISO string; undefined when absent; an error naming it when unreadable */
function toMs(label, v) {
  if (v === undefined || v === null || v === '') return undefined;
  const t = typeof v === 'number' ? v : new Date(v).getTime();
  if (!Number.isFinite(t))
    throw new Error(`${label}: ${JSON.stringify(String(v).slice(0, 40))} is not a time (ms since epoch or ISO 8601)`);
  return t;
}
