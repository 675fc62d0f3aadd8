/**
 * Light level in percent → the dimmer point's value. DALI arc power levels are logarithmic
 * (IEC 62386-102: level n gives 10^((n-1)/(253/3) - 1) % of full light, 1 → 0.1 %, 254 → 100 %),
 * so 50 % of the light is arc level 229, not 127. 'linear' is for dimmers that take a plain
 * 0..max scale.
 */
export type DimCurve = 'dali' | 'linear';

export function levelToPoint(percent: number, curve: DimCurve, max: number): number {
  if (percent <= 0) return 0;
  const p = Math.min(100, percent);
  if (curve === 'linear') return Math.max(1, Math.round((p / 100) * max));
  const arc = 1 + (253 / 3) * (Math.log10(p) + 1);
  return Math.min(254, Math.max(1, Math.round(arc)));
}

/** The inverse: what fraction (0..1) of full light a point value gives. */
export function pointToFraction(value: number, curve: DimCurve, max: number): number {
  if (value <= 0) return 0;
  if (curve === 'linear') return Math.min(1, value / max);
  return Math.min(1, 10 ** ((Math.min(254, value) - 1) / (253 / 3) - 1) / 100);
}
