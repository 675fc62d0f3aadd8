const { bridgeOf } = require('./lib/gateway.js');

module.exports = (RED) => {
  function LangbiangCommand(config) {
    RED.nodes.createNode(this, config);
    const bridge = bridgeOf(RED);
    if (!bridge) this.status({ fill: 'red', shape: 'ring', text: 'no gateway' });

    this.on('input', async (msg, send, done) => {
      if (!bridge) return done(new Error('not running on a Langbiang gateway'));
      const device = config.device || msg.device;
      const point = config.point || msg.point;
      const value = msg.payload;
      if (!device || !point)
        return done(new Error('set the device and point in the node or in msg.device / msg.point'));
      this.status({ fill: 'blue', shape: 'ring', text: `${point} ← ${value}` });
      try {
        const result = await bridge.command({
          device,
          point,
          value,
          // why, when the flow says (e.g. the irrigation node's reason), so the audit explains the switch
          actor: `flow ${this.z || ''}/${this.id}${typeof msg.reason === 'string' ? ` (${msg.reason.slice(0, 40)})` : ''}`,
          id: msg.commandId,
        });
        this.status(
          result.ok
            ? { fill: 'green', shape: 'dot', text: `${point} = ${result.readBack ?? value}` }
            : { fill: 'red', shape: 'dot', text: `${result.code}: ${result.message ?? ''}`.slice(0, 60) },
        );
        send({ ...msg, topic: `${device}/${point}`, payload: result, ok: result.ok, device, point, value });
        done();
      } catch (err) {
        this.status({ fill: 'red', shape: 'ring', text: String(err.message).slice(0, 60) });
        done(err);
      }
    });
  }
  RED.nodes.registerType('langbiang command', LangbiangCommand);
};
