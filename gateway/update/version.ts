/**
 * Release versions are semver (major.minor.patch, an optional -prerelease, an optional +build
 * that does not count), compared by semver's precedence: 1.2.0-rc.1 < 1.2.0 < 1.10.0.
 */
const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$/;

export interface Semver {
  major: number;
  minor: number;
  patch: number;
  pre: string[];
}

export function parseVersion(v: string): Semver | null {
  if (v.length > 64) return null;
  const m = SEMVER.exec(v);
  if (!m) return null;
  const nums = [m[1], m[2], m[3]].map(Number);
  if (!nums.every(Number.isSafeInteger)) return null;
  return { major: nums[0]!, minor: nums[1]!, patch: nums[2]!, pre: m[4] ? m[4].split('.') : [] };
}

export function isVersion(v: unknown): v is string {
  return typeof v === 'string' && parseVersion(v) !== null;
}

/** <0 when a is older than b, 0 when the same release, >0 when newer. Throws on a non-version. */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a);
  const y = parseVersion(b);
  if (!x) throw new Error(`"${a.slice(0, 64)}" is not a version (major.minor.patch)`);
  if (!y) throw new Error(`"${b.slice(0, 64)}" is not a version (major.minor.patch)`);
  for (const k of ['major', 'minor', 'patch'] as const) if (x[k] !== y[k]) return x[k] < y[k] ? -1 : 1;
  // a pre-release is older than its release
  if (x.pre.length === 0 || y.pre.length === 0) return y.pre.length - x.pre.length;
  for (let i = 0; i < Math.max(x.pre.length, y.pre.length); i++) {
    const p = x.pre[i];
    const q = y.pre[i];
    if (p === undefined) return -1;
    if (q === undefined) return 1;
    if (p === q) continue;
    const pn = /^\d+$/.test(p);
    const qn = /^\d+$/.test(q);
    if (pn && qn) return Number(p) < Number(q) ? -1 : 1;
    if (pn !== qn) return pn ? -1 : 1; // numeric identifiers are older than alphanumeric ones
    return p < q ? -1 : 1;
  }
  return 0;
}
