import type { Logger } from 'pino';
import { type LimiterOptions, LoginLimiter } from './rate-limit.js';
import { SessionStore } from './sessions.js';
import { SetupCode } from './setup-code.js';
import { UserStore } from './users.js';

export { passwordProblem } from './password.js';
export { type LimiterOptions, LoginLimiter } from './rate-limit.js';
export { type Session, SessionStore } from './sessions.js';
export { normaliseCode, SETUP_CODE_TTL_MS, SetupCode } from './setup-code.js';
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

  constructor(
    readonly dataDir: string,
    private readonly log: Logger,
    limiter: LimiterOptions = {},
  ) {
    this.users = UserStore.inDataDir(dataDir);
    this.limiter = new LoginLimiter(limiter);
  }

  /**
   * With no user yet, makes sure a setup code is outstanding and writes it to the log: the only way
   * in on a fresh gateway, for whoever can read its log (on the box, over SSH, journalctl).
   */
  ensureSetupCode(address?: string): void {
    if (this.users.hasUsers()) {
      this.setup.revoke();
      return;
    }
    if (this.setup.active()) return;
    const { code, expiresAt } = this.setup.issue();
    this.log.info(
      { setupCode: code, expiresAt: new Date(expiresAt).toISOString(), url: address ? `${address}/setup` : '/setup' },
      `FIRST-RUN SETUP CODE: ${code} — no user exists yet; open /setup on the panel and enter this code to create the first technician (single use, valid 60 minutes)`,
    );
  }
}
