const { bridgeOf, list } = require('./lib/gateway.js');

module.exports = (RED) => {
  function LangbiangReading(config) {
    RED.nodes.createNode(this, config);
    const bridge = bridgeOf(RED);
    if (!bridge) {
      this.status({ fill: 'red', shape: 'ring', text: 'no gateway' });
      return;
    }
    const devices = list(config.devices);
    const points = list(config.points);
    const batch = config.output === 'batch';
    this.status({ fill: 'grey', shape: 'ring', text: 'waiting' });
    const off = bridge.onReadings({ devices, points }, (readings) => {
      if (batch) {
        this.send({ topic: 'readings', payload: readings.map(toPlain) });
      } else {
        for (const r of readings) this.send({ topic: `${r.device}/${r.point}`, payload: r.value, ...toPlain(r) });
      }
      const last = readings[readings.length - 1];
      this.status({
        fill: last.quality === 'good' ? 'green' : 'yellow',
        shape: 'dot',
        text: `${last.device}/${last.point} ${last.value ?? last.quality}${last.unit ? ` ${last.unit}` : ''}`,
      });
    });
    this.on('close', off);
  }
  RED.nodes.registerType('langbiang reading', LangbiangReading);
};

function toPlain(r) {
  return { device: r.device, point: r.point, value: r.value, unit: r.unit, quality: r.quality, ts: r.ts, seq: r.seq };
}
