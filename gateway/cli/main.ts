import { Command, CommanderError, Option } from 'commander';
import { describeError, LangbiangError } from '../core/errors.js';

/**
 * `langbiang` — the technician's CLI (DESIGN.md "CLI"). Every command lazy-loads what it needs, so
 * `langbiang validate` on a Pi does not pay for serial ports, and `start` does not pay for export.
 * Errors print one sentence on stderr and exit non-zero; --verbose adds detail.
 */
export async function main(argv: string[]): Promise<void> {
  const verbose = argv.includes('--verbose') || argv.includes('-v');
  const program = new Command('langbiang')
    .description('Langbiang Edge gateway: poll field devices, store every reading, sync to the city')
    .version('0.1.0')
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
    .action(async (o) => (await import('./cmd-start.js')).runStart({ config: o.config, verbose }));

  program
    .command('validate')
    .description('check a config; prints one "path.to.key: problem" line per problem')
    .requiredOption('-c, --config <file>', 'gateway config (YAML)')
    .action(async (o) => (await import('./cmd-validate.js')).runValidate({ config: o.config }));

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
    .description('dump stored readings as CSV or JSON lines')
    .option('--data-dir <dir>', "the gateway's data directory")
    .option('--receiver-db <url>', 'a receiver database (later release)')
    .option('--device <id>', 'only this device')
    .option('--point <name>', 'only this point')
    .option('--from <time>', 'ISO 8601 time, or relative like -24h')
    .option('--to <time>', 'ISO 8601 time, or relative like -1h')
    .addOption(new Option('--format <format>', 'output format').choices(['csv', 'jsonl']).default('csv'))
    .action(async (o) => (await import('./cmd-export.js')).runExport({ ...o, verbose }));

  program
    .command('status')
    .description('health of a running gateway')
    .option('--url <url>', 'gateway address', 'http://127.0.0.1:8080')
    .option('--json', 'print JSON')
    .action(async (o) => (await import('./cmd-status.js')).runStatus(o));

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
