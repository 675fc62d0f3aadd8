import { Command, CommanderError, Option } from 'commander';
import { describeError, LangbiangError } from '../core/errors.js';
import { packageVersion } from '../update/layout.js';

/**
 * `langbiang` — the technician's CLI (DESIGN.md "CLI"). Every command lazy-loads what it needs, so
 * `langbiang validate` on a Pi does not pay for serial ports, and `start` does not pay for export.
 * Errors print one sentence on stderr and exit non-zero; --verbose adds detail.
 */
export async function main(argv: string[]): Promise<void> {
  const verbose = argv.includes('--verbose') || argv.includes('-v');
  const program = new Command('langbiang')
    .description('Langbiang Edge gateway: poll field devices, store every reading, sync to the city')
    .version(packageVersion())
    .option('-v, --verbose', 'more detail in errors and logs')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s),
      outputError: (s, write) => write(s.replace(/^error: /, 'langbiang: ')),
    });

  program
    .command('start')
    .description('run the gateway; with no --config, the demo with simulated devices')
    .option('-c, --config <file>', 'gateway config (YAML)')
    .option('--sync <url>', "sync to this MQTT broker (sets sync.url for this run; the demo's way to sync in one step)")
    .option('--simulate', "also serve the config's Modbus devices from the built-in simulators (as the demo does)")
    .addOption(
      new Option(
        '--log-format <format>',
        'log lines: pretty on a terminal, json otherwise (default: by the output)',
      ).choices(['pretty', 'json']),
    )
    .action(async (o) =>
      (await import('./cmd-start.js')).runStart({
        config: o.config,
        sync: o.sync,
        simulate: o.simulate,
        logFormat: o.logFormat,
        verbose,
      }),
    );

  program
    .command('validate')
    .description('check a config; prints one "path.to.key: problem" line per problem')
    .argument('[file]', 'gateway config (YAML), the same as --config')
    .option('-c, --config <file>', 'gateway config (YAML)')
    .action(async (file, o) => {
      const config = o.config ?? file;
      if (!config)
        throw new LangbiangError('USAGE', 'validate needs a config: langbiang validate FILE (or --config FILE)');
      if (o.config && file && o.config !== file)
        throw new LangbiangError('USAGE', `validate takes one config: ${file} or --config ${o.config}, not both`);
      await (await import('./cmd-validate.js')).runValidate({ config });
    });

  program
    .command('scan')
    .description('find Modbus units on a bus')
    .requiredOption('--bus <spec>', 'rtu:/dev/ttyUSB0?baud=9600&parity=none&stop=1 or tcp:HOST:PORT')
    .option('--units <range>', 'unit ids to try', '1-247')
    .option('--timeout <ms>', 'per-unit answer timeout in ms', '200')
    .option('--json', 'print a JSON array')
    .action(async (o) => (await import('./cmd-device.js')).runScan({ ...o, verbose }));

  program
    .command('read')
    .description('read every point of one device once')
    .argument('[device]', 'device id from --config')
    .option('-c, --config <file>', 'gateway config (YAML)')
    .option('--bus <spec>', 'bus SPEC (without --config)')
    .option('--unit <n>', 'Modbus unit id (with --bus)')
    .option('--profile <name>', 'device profile (with --bus)')
    .option('--timeout <ms>', 'request timeout in ms', '1000')
    .option('--json', 'print JSON')
    .action(async (device, o) => (await import('./cmd-device.js')).runRead({ ...o, device, verbose }));

  program
    .command('write')
    .description('write one point, through the same validation as the command router')
    .argument('<args...>', '[DEVICE] POINT VALUE')
    .option('-c, --config <file>', 'gateway config (YAML)')
    .option('--bus <spec>', 'bus SPEC (without --config)')
    .option('--unit <n>', 'Modbus unit id (with --bus)')
    .option('--profile <name>', 'device profile (with --bus)')
    .option('--timeout <ms>', 'request timeout in ms', '1000')
    .option('--json', 'print JSON')
    .action(async (args, o) => (await import('./cmd-device.js')).runWrite({ ...o, args, verbose }));

  program
    .command('simulate')
    .description('serve simulated devices for the Modbus buses of a config')
    .option('-c, --config <file>', 'gateway config (YAML); default: the demo config')
    .action(async (o) => (await import('./cmd-simulate.js')).runSimulate({ config: o.config }));

  program
    .command('export')
    .description('dump stored readings (or, with --events, events) as CSV or JSON lines')
    .option('--data-dir <dir>', "the gateway's data directory")
    .option('--receiver-db <url>', 'a receiver database: file, sqlite:///path or postgres://… (adds a gateway column)')
    .option('--gateway <id>', 'only this gateway (with --receiver-db; device ids repeat across gateways)')
    .option('--events', 'export events (gaps, command audit, alarms, config changes) instead of readings')
    .option('--kind <kind>', 'only events of this kind (with --events): gap, command, alarm, config, flows, clock')
    .option('--device <id>', 'only this device')
    .option('--point <name>', 'only this point')
    .option('--from <time>', 'ISO 8601 time, or relative like -24h')
    .option('--to <time>', 'ISO 8601 time, or relative like -1h')
    .addOption(new Option('--format <format>', 'output format').choices(['csv', 'jsonl', 'ngsi-ld']).default('csv'))
    .option(
      '--gateway-configs <path>',
      'ngsi-ld: the gateway configs (file or directory): locations and device profiles',
    )
    .option('--context <url>', "ngsi-ld: one JSON-LD @context for every entity instead of each model's own")
    .action(async (o) => (await import('./cmd-export.js')).runExport({ ...o, verbose }));

  program
    .command('sql')
    .description(
      'read-only SQL over the store: readings(seq, device, point, ts, value, unit, quality) and events(id, kind, ts, data)',
    )
    .requiredOption('--data-dir <dir>', "the gateway's data directory")
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'csv', 'jsonl']).default('table'))
    .argument(
      '<query>',
      'one SELECT statement, e.g. "SELECT device, avg(value) FROM readings WHERE point = \'moisture\' GROUP BY device"',
    )
    .action(async (query, o) => (await import('./cmd-sql.js')).runSql({ ...o, query }));

  program
    .command('receiver')
    .description('the reference cloud receiver: MQTT shared subscription → SQLite or PostgreSQL, deduplicated')
    .requiredOption('--broker <url>', 'mqtt://, mqtts://, ws:// or wss:// broker URL (no password in it)')
    .option('--db <url>', 'SQLite file (or sqlite:///path) or postgres://user@host/db', 'langbiang-receiver.db')
    .option('--group <name>', 'shared-subscription group; receivers in one group split the load', 'langbiang-receivers')
    .option('--exclusive', 'a plain subscription, not a shared one: for a single receiver (docs/operations.md)')
    .option('--client-id <id>', 'stable MQTT client id, one per receiver (default langbiang-receiver-HOSTNAME)')
    .option('--username <name>', 'MQTT user name')
    .option('--password-file <file>', 'file holding the MQTT password')
    .option('--ca <file>', 'CA certificate (PEM) for mqtts://')
    .option('--cert <file>', 'client certificate (PEM)')
    .option('--key <file>', 'client private key (PEM)')
    .option('--session-expiry <seconds>', "how long the broker keeps this receiver's session while it is away", '86400')
    .option('--stats-interval <seconds>', 'log counters this often (0: never)', '60')
    .option(
      '--land-above <readings>',
      'SQLite: commit a message of more readings than this whole, its rows made when idle (default 1000; 0: every message)',
    )
    .option('--ngsi-ld <url>', 'also upsert each device as a Smart Data Model entity into this NGSI-LD context broker')
    .option('--tenant <name>', 'NGSI-LD tenant (NGSILD-Tenant header)')
    .option('--context <url>', "one JSON-LD @context for every entity instead of each model's own")
    .option('--ngsi-ld-token-file <file>', 'file holding a bearer token for the context broker')
    .option('--gateway-configs <path>', 'the gateway configs (file or directory): locations and device profiles')
    .option(
      '--ack-key <file>',
      'sign end-to-end acks with this Ed25519 key (NAME.key from `langbiang city keygen NAME`)',
    )
    .option(
      '--ack-pace <seconds>',
      'in live operation, at most one end-to-end ack per gateway this often (≤ 60; drains and resends are acked at once)',
      '60',
    )
    .option('--health-port <port>', 'serve GET /healthz (200 connected, 503 not) on this port, for a HEALTHCHECK')
    .option('--health-host <host>', 'address of the health endpoint', '127.0.0.1')
    .action(async (o) => (await import('./cmd-receiver.js')).runReceiver({ ...o, verbose }));

  program
    .command('fleet')
    .description('every gateway the city hears from: last seen, backlog, unconfirmed, versions (receiver side)')
    .requiredOption('--receiver-db <url>', 'a receiver database: file, sqlite:///path or postgres://…')
    .option('--json', 'machine-readable output')
    .action(async (o) => (await import('./cmd-fleet.js')).runFleet(o));

  program
    .command('archive')
    .description('write closed days of a receiver database as Parquet (date=…/gateway=…), for analysis engines')
    .requiredOption('--receiver-db <url>', 'a receiver database: file, sqlite:///path or postgres://…')
    .requiredOption('--out <dir>', 'the archive root')
    .option('--day <YYYY-MM-DD>', 'this day (UTC) only, archived again if it was already')
    .option('--json', 'machine-readable output')
    .action(async (o) => (await import('./cmd-archive.js')).runArchive(o));

  program
    .command('retention')
    .description("remove a receiver database's readings older than N days (PostgreSQL: drops daily partitions)")
    .requiredOption('--receiver-db <url>', 'a receiver database: file, sqlite:///path or postgres://…')
    .requiredOption('--keep-days <n>', 'days kept, today included')
    .action(async (o) => (await import('./cmd-retention.js')).runRetention(o));

  const openData = program.command('open-data').description('open data from a receiver database (aggregates only)');
  openData
    .command('build')
    .description('CSV and JSON per dataset and day, and a DCAT-AP catalog (catalog.jsonld) for CKAN')
    .requiredOption('--receiver-db <url>', 'a receiver database: file, sqlite:///path or postgres://…')
    .requiredOption('--config <file>', 'open-data.yaml: the datasets, publisher, licence')
    .requiredOption('--out <dir>', 'the directory published at catalog.baseUrl')
    .option('--day <YYYY-MM-DD>', 'this day (UTC) only, built again if it was already')
    .option('--gateway-configs <path>', 'the gateway configs (file or directory): profiles and locations')
    .option('--json', 'machine-readable output')
    .action(async (o) => (await import('./cmd-open-data.js')).runOpenDataBuild(o));
  openData
    .command('serve')
    .description('serve the built directory over HTTP (read-only, any origin), for a portal to harvest')
    .requiredOption('--out <dir>', 'the directory open-data build writes')
    .option('--port <port>', 'TCP port', '8090')
    .option('--host <addr>', 'address to listen on', '127.0.0.1')
    .action(async (o) => (await import('./cmd-open-data.js')).runOpenDataServe(o));

  program
    .command('provision')
    .description('make a first-boot bundle for a new gateway (--id, --out), or import one (--import, --import-boot)')
    .option('--id <id>', 'gateway id of the new gateway')
    .option('--out <dir>', 'where to write the bundle (a folder named langbiang is made in it)')
    .option('--sync-url <url>', 'MQTT broker of the city, e.g. mqtts://mqtt.example:8883')
    .option('--template <file>', 'config to start from (YAML; default: no buses)')
    .option('--data-dir <dir>', "the gateway's data directory (default /var/lib/langbiang)")
    .option('--ca <file>', 'CA certificate of the broker (PEM)')
    .option('--ca-key <file>', 'CA key: sign the client certificate with it')
    .option('--cert <file>', 'use this client certificate (with --key) instead of making one')
    .option('--key <file>', 'the client key for --cert')
    .option('--username <name>', 'MQTT user name')
    .option('--password-file <file>', 'file holding the MQTT password')
    .option('--days <n>', 'validity of a made certificate', '825')
    .option(
      '--control-key <file...>',
      "the city's control public key(s) to pin (NAME.pem from `langbiang city keygen`)",
    )
    .option('--import <dir>', 'import this bundle')
    .option('--import-boot', 'import the bundle on the boot partition, if there is one')
    .option('-c, --config <file>', 'where the imported config goes', '/etc/langbiang/config.yaml')
    .option('--owner <user>', 'the service user that owns the imported secrets')
    .option('--keep', 'do not delete the bundle after importing it')
    .action(async (o) => (await import('./cmd-provision.js')).runProvision(o));

  program
    .command('status')
    .description('health of a running gateway')
    .option('--url <url>', 'gateway address', 'http://127.0.0.1:8080')
    .option('--json', 'print JSON')
    .action(async (o) => (await import('./cmd-status.js')).runStatus(o));

  const city = program
    .command('city')
    .description("the city operator's side: signing keys, signed configs, commands and update roll-outs");
  const brokerOptions = (c: Command) =>
    c
      .option('--broker <url>', 'publish to this broker (mqtt://, mqtts://…; no password in it); without it: print')
      .option('--out <file>', 'write the signed message to a file (- for stdout) instead of publishing')
      .option('--username <name>', 'MQTT user name')
      .option('--password-file <file>', 'file holding the MQTT password')
      .option('--password-stdin', 'read the MQTT password from the first line of stdin')
      .option('--ca <file>', 'CA certificate (PEM) for mqtts://')
      .option('--cert <file>', 'client certificate (PEM)')
      .option('--client-key <file>', 'client private key (PEM) for --cert');
  city
    .command('keygen')
    .description('make an Ed25519 signing key pair: NAME.key (private, 0600) and NAME.pem (public, to pin on gateways)')
    .argument('<name>', 'key name (the audit actor of what it signs)')
    .option('--out <dir>', 'where to write the two files', '.')
    .option('--release', 'a release key: signs software bundles (pinned as trust/release/NAME.pem), nothing else')
    .action(async (name, o) =>
      (await import('./cmd-city.js')).runKeygen({ name, out: o.out, role: o.release ? 'release' : 'control' }),
    );
  brokerOptions(
    city
      .command('config')
      .description("sign a gateway's new config and publish it on its config topic (retained)")
      .argument('<file>', 'the config (YAML)')
      .requiredOption('--gateway <id>', 'gateway id')
      .requiredOption('--key <file>', 'private signing key (NAME.key)')
      .option('--key-name <name>', 'key name (default: the key file name)')
      .option('--config-version <n>', 'config version, only grows (default: now in seconds)')
      .option('--watch <duration>', 'watch window of this change on the gateway')
      .option('--expires <duration>', 'how long the message may be applied', '7d')
      .option('--no-retain', 'do not retain the message on the broker'),
  ).action(async (file, o) => (await import('./cmd-city.js')).runCityConfig({ ...o, file }));
  brokerOptions(
    city
      .command('command')
      .description("sign a command, publish it on the gateway's cmd topic and print its cmd/result")
      .argument('<args...>', 'DEVICE POINT VALUE')
      .requiredOption('--gateway <id>', 'gateway id')
      .requiredOption('--key <file>', 'private signing key (NAME.key)')
      .option('--key-name <name>', 'key name (default: the key file name)')
      .option('--id <id>', 'command id (default: made up)')
      .option('--deadline <duration>', 'run within this long or not at all (at most 1h)', '5m')
      .option('--wait <duration>', 'how long to wait for the result', '30s'),
  ).action(async (args, o) => (await import('./cmd-city.js')).runCityCommand({ ...o, args }));
  brokerOptions(
    city
      .command('update')
      .description(
        'roll a release out to a fleet in stages: signed update orders, wait for confirmations, stop when failures pass a threshold',
      )
      .requiredOption('--gateways <file>', 'the fleet: one gateway id per line, or JSON; in roll-out order')
      .requiredOption('--bundle <file>', 'the release bundle (its size and sha256 go into the order)')
      .requiredOption('--url <url>', 'where the gateways download the bundle (https://)')
      .requiredOption('--release <version>', 'the release version inside the bundle, e.g. 1.4.0')
      .requiredOption('--key <file>', 'private control key (NAME.key) that signs the orders')
      .option('--key-name <name>', 'key name (default: the key file name)')
      .option('--stage <share>', 'the first stage, as a share of the fleet; then 25% and 100%', '5%')
      .option('--stages <list>', 'all stages as cumulative shares, e.g. 5,25,100 (instead of --stage)')
      .option('--max-failures <n>', 'stop when failures pass this share of the gateways ordered (10%) or number', '10%')
      .option(
        '--confirm-timeout <duration>',
        'a gateway not confirmed this long after its order counts as failed',
        '30m',
      )
      .option('--expires <duration>', 'how long a gateway may act on its order (at most 14d)', '7d')
      .option('--state <file>', 'the roll-out state file (default rollout-VERSION.json); a second run continues it'),
  ).action(async (o) => {
    await (await import('./cmd-city-update.js')).runCityUpdate(o);
  });

  const release = program.command('release').description('software releases: signed bundles for the gateways');
  release
    .command('pack')
    .description(
      "a signed release bundle of this checkout's build for one architecture (langbiang-VERSION-linux-ARCH.lbr)",
    )
    .option('--key <file>', 'the release private key (NAME.key from `langbiang city keygen --release NAME`)')
    .option('--key-name <name>', 'key name (default: the key file name)')
    .option('--out <dir>', 'where to write the bundle', '.')
    // not --version: that is the program's own option, which commander takes before any subcommand's
    .option('--release-version <version>', "the release's version (default: package.json's)")
    .option('--arch <arch>', 'x64, arm64 or armv7 (default: this machine; native modules must match)')
    .option(
      '--reuse-modules',
      "leave node_modules out: gateways reuse their installed release's (same package-lock.json)",
    )
    .action(async (o) => (await import('./cmd-release.js')).runReleasePack({ ...o, version: o.releaseVersion }));

  const update = program.command('update').description('update the gateway software from a release bundle');
  update
    .command('apply')
    .description('verify a release bundle, install it beside the running release, switch to it and restart')
    .argument('<file>', 'the bundle (.lbr)')
    .option('-c, --config <file>', 'gateway config (finds the data directory; default /etc/langbiang/config.yaml)')
    .option('--data-dir <dir>', "the gateway's data directory")
    .option('--install-root <dir>', 'where releases/ and current are (default: where this langbiang runs from)')
    .option('--allow-downgrade', 'restore the confirmed previous release (older than the running one)')
    .option('--no-restart', 'do not restart the service; say how to')
    .option(
      '--url <url>',
      "the running gateway's address (its health is what the new release must match)",
      'http://127.0.0.1:8080',
    )
    .action(async (file, o) => (await import('./cmd-update.js')).runUpdateApply({ ...o, file }));
  update
    .command('status')
    .description('the running release, the previous one, a release waiting for confirmation, the last update')
    .option('-c, --config <file>', 'gateway config (finds the data directory)')
    .option('--data-dir <dir>', "the gateway's data directory")
    .option('--install-root <dir>', 'where releases/ and current are')
    .option('--json', 'print JSON')
    .action(async (o) => (await import('./cmd-update.js')).runUpdateStatus(o));

  const user = program.command('user').description('local users of the panel and console');
  user
    .command('add')
    .description('create a user; the password is read from stdin (typed twice on a terminal), never from argv')
    .argument('<name>', 'user name')
    .addOption(
      new Option('--role <role>', 'what the user may do').choices(['farmer', 'technician']).makeOptionMandatory(),
    )
    .option('-c, --config <file>', 'gateway config (finds the data directory)')
    .option('--data-dir <dir>', "the gateway's data directory")
    .option('--replace', 'set a new password (and role) for an existing user')
    .action(async (name, o) => (await import('./cmd-user.js')).runUserAdd({ ...o, name }));
  user
    .command('list')
    .description('list users')
    .option('-c, --config <file>', 'gateway config')
    .option('--data-dir <dir>', "the gateway's data directory")
    .option('--json', 'print JSON')
    .action(async (o) => (await import('./cmd-user.js')).runUserList(o));
  user
    .command('remove')
    .description('remove a user')
    .argument('<name>', 'user name')
    .option('-c, --config <file>', 'gateway config')
    .option('--data-dir <dir>', "the gateway's data directory")
    .action(async (name, o) => (await import('./cmd-user.js')).runUserRemove({ ...o, name }));

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; usage errors were already printed by commander
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    process.stderr.write(`langbiang: ${describeError(err)}\n`);
    if (verbose && err instanceof Error) {
      if (err instanceof LangbiangError) process.stderr.write(`code: ${err.code}\n`);
      process.stderr.write(`${err.stack ?? ''}\n`);
    }
    process.exitCode = 1;
  }
}
