import { randomBytes } from 'node:crypto';
import type { Role } from './users.js';

export interface Session {
  id: string;
  user: string;
  role: Role;
  /** synchronizer token: every state-changing request must echo it in X-CSRF-Token */
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
}

const IDLE_MS = 12 * 3_600_000;
const ABSOLUTE_MS = 7 * 86_400_000;
const MAX_SESSIONS = 500;

/**
 * Server-side sessions, in memory: a restart of the process logs everyone out, which on a
 * gateway is rare and harmless, and no session secret ever reaches the SD card.
 */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(private readonly now: () => number = Date.now) {}

  create(user: string, role: Role): Session {
    if (this.sessions.size >= MAX_SESSIONS) {
      const oldest = [...this.sessions.values()].sort((a, b) => a.lastSeenAt - b.lastSeenAt)[0];
      if (oldest) this.sessions.delete(oldest.id);
    }
    const t = this.now();
    const s: Session = {
      id: randomBytes(32).toString('base64url'),
      user,
      role,
      csrf: randomBytes(24).toString('base64url'),
      createdAt: t,
      lastSeenAt: t,
    };
    this.sessions.set(s.id, s);
    return s;
  }

  get(id: string | undefined): Session | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    const t = this.now();
    if (t - s.lastSeenAt > IDLE_MS || t - s.createdAt > ABSOLUTE_MS) {
      this.sessions.delete(id);
      return undefined;
    }
    s.lastSeenAt = t;
    return s;
  }

  destroy(id: string): void {
    this.sessions.delete(id);
  }

  /** After a user is removed or their password reset: their sessions end too. */
  destroyUser(user: string, except?: string): void {
    for (const [id, s] of this.sessions) if (s.user === user && id !== except) this.sessions.delete(id);
  }

  count(): number {
    return this.sessions.size;
  }
}
