/**
 * Time as the gateway sees it. Pis have no RTC: the wall clock may be 1970 or wrong until NTP
 * syncs, so every reading keeps monotonic time and boot id beside wall time.
 */
export interface Clock {
  /** wall clock, ms since epoch */
  wallNow(): number;
  /** monotonic ms, never goes backwards within a boot */
  monoNow(): number;
  /** identifies this boot (Linux: /proc/sys/kernel/random/boot_id) */
  readonly bootId: string;
  /** is the wall clock known to be synchronised now */
  isSynced(): boolean;
}
