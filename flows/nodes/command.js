'use strict';
const { bridgeOf } = require('./lib/gateway.js');

module.exports = function (RED) {
  function LangbiangCommand(config) {
    RED.nodes.createNode(this, config);
    const node = this;
    const bridge = bridgeOf(RED);
    if (!bridge) node.status({ fill: 'red', shape: 'ring', text: 'no gateway' });

    node.on('input', async (msg, send, done) => {
      if (!bridge) return done(new Error('not running on a Langbiang gateway'));
      const device = config.device || msg.device;
      const point = config.point || msg.point;
      const value = msg.payload;
      if (!device || !point) return done(new Error('set the device and point in the node or in msg.device / msg.point'));
      node.status({ fill: 'blue', shape: 'ring', text: `${point} ← ${value}` });
      try {
        const result = await bridge.command({ device, point, value, actor: `flow ${node.z || ''}/${node.id}`, id: msg.commandId });
        node.status(
          result.ok
            ? { fill: 'green', shape: 'dot', text: `${point} = ${result.readBack ?? value}` }
            : { fill: 'red', shape: 'dot', text: `${result.code}: ${result.message ?? ''}`.slice(0, 60) },
        );
        send({ ...msg, topic: `${device}/${point}`, payload: result, ok: result.ok, device, point, value });
        done();
      } catch (err) {
        node.status({ fill: 'red', shape: 'ring', text: String(err.message).slice(0, 60) });
        done(err);
      }
    });
  }
  RED.nodes.registerType('langbiang command', LangbiangCommand);
};
