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
        const to = toMs(msg.to) ?? Date.now();
        const from = toMs(msg.from) ?? to - duration('range', msg.range ?? config.range, '1h');
        query = {
          device: msg.device || config.device || undefined,
          point: msg.point || config.point || undefined,
          from,
          to,
          limit: num(msg.limit ?? config.limit, 1000),
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

/** ms since epoch from a number, a Date or an ISO string; undefined when absent or unreadable */
function toMs(v) {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number') return v;
  const t = new Date(v).getTime();
  return Number.isFinite(t) ? t : undefined;
}
