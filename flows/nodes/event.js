const { bridgeOf } = require('./lib/gateway.js');

const KINDS = ['gap', 'alarm', 'command', 'flows', 'config', 'clock'];

module.exports = (RED) => {
  function LangbiangEvent(config) {
    RED.nodes.createNode(this, config);
    const bridge = bridgeOf(RED);
    if (!bridge) {
      this.status({ fill: 'red', shape: 'ring', text: 'no gateway' });
      return;
    }
    const kinds = new Set(KINDS.filter((k) => config[k] === true));
    if (kinds.size === 0) for (const k of ['gap', 'alarm', 'command']) kinds.add(k);
    const device = config.device || '';
    const off = bridge.onEvent((event) => {
      if (!kinds.has(event.kind)) return;
      if (device && event.data && event.data.device !== undefined && event.data.device !== device) return;
      this.send({ topic: event.kind, payload: event.data, event });
      this.status({ fill: 'green', shape: 'dot', text: `${event.kind} ${new Date(event.ts).toLocaleTimeString()}` });
    });
    this.on('close', off);
  }
  RED.nodes.registerType('langbiang event', LangbiangEvent);
};
