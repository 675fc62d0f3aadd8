/**
 * Device profiles are data (YAML under hardware/profiles/); these are their shapes once validated.
 * Addresses are 0-based protocol addresses as they go on the wire (a datasheet's "40001" is
 * holding register address 0).
 */
export type RegisterFunction = 'coil' | 'discrete' | 'holding' | 'input';
export type ValueType = 'bit' | 'u16' | 'i16' | 'u32' | 'i32' | 'f32' | 'f64' | 'string';
/** big = most significant first. wordOrder applies to 32/64-bit values (ABCD vs CDAB); byteOrder inside each 16-bit word (ABCD vs BADC). */
export type Endianness = 'big' | 'little';

export interface PointDef {
  /** lower_snake_case, unique within the profile */
  name: string;
  function: RegisterFunction;
  address: number;
  type: ValueType;
  byteOrder: Endianness;
  wordOrder: Endianness;
  /** for type 'bit' on a holding/input register: which bit (0 = LSB) */
  bit?: number;
  /** for type 'string': length in registers */
  length?: number;
  /** engineering = raw * scale + offset */
  scale: number;
  offset: number;
  unit?: string;
  writable: boolean;
  /** valid range in engineering units: reads outside get quality out_of_range, writes outside are refused */
  min?: number;
  max?: number;
  /**
   * A write that acts each time it is received (a pulse, a counter reset, a "send now" register)
   * rather than setting a state: never retried after a timeout, since the first may have landed.
   */
  trigger?: boolean;
  /**
   * An analog input behind a resistor ladder (a wind vane): the raw reading maps to the value of
   * the nearest step, instead of scale/offset. Firmata analog inputs only.
   */
  ladder?: Array<{ raw: number; value: number }>;
  /** poll group name (profiles may poll groups at different intervals) */
  group?: string;
  description?: string;
}

/** Number of 16-bit registers (or coils/inputs for bit functions) a point occupies. */
export function pointWidth(p: Pick<PointDef, 'type' | 'function' | 'length'>): number {
  if (p.function === 'coil' || p.function === 'discrete') return 1;
  switch (p.type) {
    case 'bit':
    case 'u16':
    case 'i16':
      return 1;
    case 'u32':
    case 'i32':
    case 'f32':
      return 2;
    case 'f64':
      return 4;
    case 'string':
      return p.length ?? 1;
  }
}

export interface ProfileSource {
  title: string;
  url?: string;
  note?: string;
}

/** How `langbiang scan` guesses a profile for a unit that answered: read this and compare. */
export interface ProfileIdentify {
  function: RegisterFunction;
  address: number;
  count: number;
  /** every word must lie in [min, max] to call it a match */
  min?: number;
  max?: number;
}

export interface DeviceProfile {
  /** = file name without .yaml */
  name: string;
  manufacturer: string;
  model: string;
  description?: string;
  /** the public document the register map comes from */
  source: ProfileSource;
  /** defaults for the bus this device usually sits on (documentation and scan hints) */
  serial?: { baudRate?: number; parity?: 'none' | 'even' | 'odd'; stopBits?: 1 | 2 };
  /** largest block this model accepts in one read (<= 125 registers, <= 2000 bits) */
  maxReadRegisters: number;
  identify?: ProfileIdentify;
  points: PointDef[];
  /** for 'gpio' and 'firmata' profiles: named pins a device config must map */
  pins?: string[];
  /** pins a device config may map but need not (e.g. the second loop of a loop pair) */
  optionalPins?: string[];
  /** which driver kind the profile is for */
  kind: 'modbus' | 'gpio' | 'firmata';
  /** device settings a device config may give under `options` */
  options?: Record<string, ProfileOptionDef>;
  /** how the city's NGSI-LD output maps this device to a FIWARE Smart Data Model (none: generic DeviceMeasurement) */
  ngsiLd?: NgsiLdMapping;
}

/**
 * A profile's `ngsiLd:` block: the Smart Data Model entity type a device of this profile becomes
 * and which of its points feed which attribute. Data, not code: docs/profiles.md, "ngsiLd".
 */
export interface NgsiLdMapping {
  /** entity type, e.g. AgriParcelRecord; DeviceMeasurement makes one entity per mapped point */
  type: string;
  /** JSON-LD context of the model (the broker resolves attribute names with it) */
  context: string;
  /** attribute set to the time of the newest reading in the entity (a DateTime), e.g. dateObserved */
  observedAttribute?: string;
  /** points that must have a value before the entity is sent (the model requires what they feed) */
  requires?: string[];
  /** attributes the model needs that no point measures; `{gateway}` and `{device}` are replaced */
  static?: Record<string, NgsiLdStatic>;
  /** point name → attribute */
  attributes: Record<string, NgsiLdAttribute>;
}

export type NgsiLdStatic = { value: string | number | boolean | string[] } | { object: string | string[] };

export interface NgsiLdAttribute {
  /** attribute name in the model (DeviceMeasurement: unused, the value goes to numValue) */
  name?: string;
  /** UN/CEFACT common code of the value after scale (CEL, P1, C62, KWH…) */
  unitCode?: string;
  /** model value = reading value × scale (e.g. 0.01 for % → fraction) */
  scale?: number;
  /** numbers to text: the reading value (as text) → model value; `otherwise` for any other value */
  values?: Record<string, string>;
  otherwise?: string;
  /** DeviceMeasurement only: the controlledProperty of this point */
  controlledProperty?: string;
}

export interface ProfileOptionDef {
  type: 'number' | 'boolean' | 'string';
  unit?: string;
  min?: number;
  max?: number;
  default?: number | boolean | string;
  /** required when the device maps this pin (e.g. loopDistance with presence_b) */
  requiredWithPin?: string;
  description?: string;
}
