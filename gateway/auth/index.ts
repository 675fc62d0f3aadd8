import type { Logger } from 'pino';
import { type LimiterOptions, LoginLimiter } from './rate-limit.js';
import { SessionStore } from './sessions.js';
import { ProvisionedSetupCode, SetupCode } from './setup-code.js';
import { UserStore } from './users.js';

export { passwordProblem } from './password.js';
export { type LimiterOptions, LoginLimiter } from './rate-limit.js';
export { type Session, SessionStore } from './sessions.js';
export { normaliseCode, ProvisionedSetupCode, SETUP_CODE_FILE, SETUP_CODE_TTL_MS, SetupCode } from './setup-code.js';
export { ROLES, type Role, USERS_FILE, UserStore, userNameProblem } from './users.js';

/**
 * Everything the HTTP server needs to know who is asking. It outlives a Gateway restart (config
 * apply), so sessions survive a config change.
 */
export class AuthContext {
  readonly users: UserStore;
  readonly sessions = new SessionStore();
  readonly limiter: LoginLimiter;
  readonly setup = new SetupCode();
  /** the code from a provisioning bundle, accepted beside the logged one while no user exists */
  readonly provisioned: ProvisionedSetupCode;
  private provisionedSaid: string | null = null;

  constructor(
    readonly dataDir: string,
    private readonly log: Logger,
    limiter: LimiterOptions = {},
  ) {
    this.users = UserStore.inDataDir(dataDir);
    this.provisioned = new ProvisionedSetupCode(dataDir);
    this.limiter = new LoginLimiter(limiter);
  }

  /**
   * With no user yet, makes sure a setup code is outstanding and writes it to the log: the only way
   * in on a fresh gateway, for whoever can read its log (on the box, over SSH, journalctl). A code
   * from a provisioning bundle works too; the log says it is there, never what it is.
   */
  ensureSetupCode(address?: string): void {
    const url = address ? `${address}/setup` : '/setup';
    if (this.users.hasUsers()) {
      this.setup.revoke();
      // a first user exists (made with the CLI, or the logged code): the provisioned code is dead
      if (this.provisioned.state() !== 'absent') this.dropProvisioned('a user exists already');
      return;
    }
    const provisioned = this.provisioned.state();
    if (provisioned !== this.provisionedSaid) {
      this.provisionedSaid = provisioned;
      if (provisioned === 'present')
        this.log.info(
          { file: this.provisioned.file, url },
          'a provisioned setup code is present (from the provisioning bundle); it works at /setup too, once, with no expiry',
        );
      else if (provisioned === 'malformed')
        this.log.warn(
          { file: this.provisioned.file },
          'the provisioned setup code file holds no usable code (expected XXXX-XXXX-XXXX); it is ignored',
        );
    }
    if (this.setup.active()) return;
    const { code, expiresAt } = this.setup.issue();
    this.log.info(
      { setupCode: code, expiresAt: new Date(expiresAt).toISOString(), url },
      `FIRST-RUN SETUP CODE: ${code} — no user exists yet; open /setup on the panel and enter this code to create the first technician (single use, valid 60 minutes)`,
    );
  }

  /**
   * Checks a setup code: the one in the log, or the provisioned one. A match uses it up; once the
   * first technician is made the other is of no use, so the provisioned file goes either way.
   */
  consumeSetupCode(input: unknown): boolean {
    if (this.setup.consume(input)) {
      if (this.provisioned.state() !== 'absent') this.dropProvisioned('the logged setup code was used');
      return true;
    }
    const r = this.provisioned.consume(input);
    if (!r.ok) return false;
    this.setup.revoke();
    if (r.removeError)
      this.log.warn(
        { file: this.provisioned.file, err: r.removeError },
        'the provisioned setup code was used but its file could not be deleted; it stops working once a user exists',
      );
    else this.log.info({ file: this.provisioned.file }, 'the provisioned setup code was used; its file is deleted');
    return true;
  }

  private dropProvisioned(why: string): void {
    const err = this.provisioned.remove();
    if (err) this.log.warn({ file: this.provisioned.file, err }, `cannot delete the provisioned setup code (${why})`);
    else this.log.info({ file: this.provisioned.file }, `provisioned setup code deleted: ${why}`);
  }
}
