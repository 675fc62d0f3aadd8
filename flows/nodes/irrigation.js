const { durationField, num } = require('./lib/gateway.js');
const { IrrigationController } = require('./lib/irrigation-logic.js');

const TICK_MS = 1000;

module.exports = async (RED) => {
  const duration = await durationField();

  function LangbiangIrrigation(config) {
    RED.nodes.createNode(this, config);
    let ctl;
    try {
      const threshold = num('Dry below', config.threshold, 30);
      ctl = new IrrigationController(
        {
          threshold,
          recoverAt: threshold + num('Close at +', config.hysteresis, 5),
          dryForMs: duration('Dry for', config.dryFor, '10m'),
          maxOpenMs: duration('Max open', config.maxOpen, '15m'),
          budgetMs: duration('Max per window', config.budget, '20m'),
          windowMs: duration('Window', config.window, '60m'),
          staleAfterMs: duration('Stale after', config.staleAfter, '5m'),
        },
        Date.now(),
      );
    } catch (err) {
      // the editor shows status text on the canvas: the field and the value, not just "bad settings"
      const bad = () => this.status({ fill: 'red', shape: 'ring', text: String(err.message).slice(0, 80) });
      bad();
      this.error(err.message);
      // it never runs on defaults instead; each reading says so again, to a catch node too
      this.on('input', (_msg, _send, done) => {
        bad();
        done(err);
      });
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
