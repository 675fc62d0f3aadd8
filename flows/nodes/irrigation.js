const { durationMs, num } = require('./lib/gateway.js');
const { IrrigationController } = require('./lib/irrigation-logic.js');

const TICK_MS = 1000;

module.exports = (RED) => {
  function LangbiangIrrigation(config) {
    RED.nodes.createNode(this, config);
    let ctl;
    try {
      const threshold = num(config.threshold, 30);
      ctl = new IrrigationController(
        {
          threshold,
          recoverAt: threshold + num(config.hysteresis, 5),
          dryForMs: durationMs(config.dryFor, 10 * 60_000),
          maxOpenMs: durationMs(config.maxOpen, 15 * 60_000),
          budgetMs: durationMs(config.budget, 20 * 60_000),
          windowMs: durationMs(config.window, 60 * 60_000),
          staleAfterMs: durationMs(config.staleAfter, 5 * 60_000),
        },
        Date.now(),
      );
    } catch (err) {
      this.status({ fill: 'red', shape: 'ring', text: 'bad settings' });
      this.error(err.message);
      return;
    }

    const emit = (action) => {
      if (!action) return;
      this.send({ topic: 'valve', payload: action.open, reason: action.reason, moisture: ctl.lastValue });
      show();
    };
    const show = () => {
      const s = ctl.state(Date.now());
      const used = Math.round(s.usedMs / 60_000);
      const text = s.fault
        ? `closed: sensor ${s.fault}`
        : `${s.open ? 'open' : 'closed'} · ${s.lastValue ?? '–'} % · ${used}/${Math.round(s.budgetMs / 60_000)} min`;
      this.status({ fill: s.fault ? 'red' : s.open ? 'blue' : 'green', shape: s.open ? 'dot' : 'ring', text });
    };

    // The runtime may have died with the valve open: the first word after a (re)start is "close".
    setImmediate(() => this.send({ topic: 'valve', payload: false, reason: 'startup' }));
    const timer = setInterval(() => emit(ctl.tick(Date.now())), TICK_MS);

    this.on('input', (msg, _send, done) => {
      const value = typeof msg.payload === 'number' ? msg.payload : msg.value;
      emit(ctl.reading(value, msg.quality ?? 'good', Date.now()));
      show();
      done();
    });
    this.on('close', () => clearInterval(timer));
  }
  RED.nodes.registerType('langbiang irrigation', LangbiangIrrigation);
};
