import { type Document, isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type ScalarTag } from 'yaml';
import type { PathSegment, RawProblem } from './problems.js';

/** A `!file path` value: replaced by the file's contents before validation (see secrets.ts). */
export class FileRef {
  constructor(readonly path: string) {}
}

const fileTag: ScalarTag = {
  tag: '!file',
  identify: (value) => value instanceof FileRef,
  resolve: (value, onError) => {
    if (value.trim() === '') onError('!file needs a path');
    return new FileRef(value.trim());
  },
};

export interface YamlSource {
  data: Record<string, unknown>;
  /** 1-based line of the key (or item) a path points at; the nearest existing ancestor if it is missing */
  lineOf(path: readonly PathSegment[]): number | undefined;
}

export type YamlResult = { ok: true; source: YamlSource } | { ok: false; problems: RawProblem[] };

function firstLine(message: string): string {
  // yaml's pretty errors append " at line L, column C:" and a code frame; we print our own position.
  const head = message.split('\n')[0] ?? message;
  return head.replace(/ at line \d+, column \d+:?\s*$/, '').trim();
}

function kindOf(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return 'a string';
  return `${typeof value === 'number' ? 'a number' : String(value)}`;
}

function makeLineOf(doc: Document, counter: LineCounter) {
  const lineAt = (node: unknown): number | undefined => {
    const range = (node as { range?: [number, number, number] } | null)?.range;
    return range ? counter.linePos(range[0]).line : undefined;
  };
  return (path: readonly PathSegment[]): number | undefined => {
    let node: unknown = doc.contents;
    let line: number | undefined;
    for (const seg of path) {
      if (isAlias(node)) node = node.resolve(doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
        if (!pair) break;
        line = lineAt(pair.key) ?? line;
        node = pair.value;
      } else if (isSeq(node)) {
        const item = node.items[Number(seg)];
        if (item === undefined) break;
        line = lineAt(item) ?? line;
        node = item;
      } else {
        break;
      }
    }
    return line;
  };
}

/**
 * YAML text → plain data, with positions kept for messages. YAML 1.2 core schema: `yes`/`on` are
 * strings (so `enabled: yes` is a clear type error, not a surprise), duplicate keys are errors,
 * `<<` merge keys and anchors work, alias expansion is bounded.
 */
export function readYaml(text: string): YamlResult {
  const counter = new LineCounter();
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), {
    lineCounter: counter,
    prettyErrors: true,
    uniqueKeys: true,
    merge: true,
    customTags: [fileTag],
  });
  if (doc.errors.length > 0) {
    // A tab in the indentation throws the parser off for the rest of the block: the errors after it
    // ("Nested mappings are not allowed…", "Implicit keys…") are its echoes. Report the tabs alone.
    const tabs = doc.errors.filter((e) => e.code === 'TAB_AS_INDENT');
    return {
      ok: false,
      problems: (tabs.length > 0 ? tabs : doc.errors).map((err) => {
        const pos = err.linePos?.[0];
        const where = pos ? `line ${pos.line}, column ${pos.col}: ` : '';
        const fix = err.code === 'TAB_AS_INDENT' ? ' (indent with spaces: YAML forbids tabs there)' : '';
        return { path: [], message: `${where}${firstLine(err.message)}${fix}` };
      }),
    };
  }
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    return {
      ok: false,
      problems: [{ path: [], message: 'the file is empty (expected a mapping with gateway:, buses: and devices:)' }],
    };
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return {
      ok: false,
      problems: [{ path: [], message: `cannot read the YAML: ${err instanceof Error ? err.message : String(err)}` }],
    };
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data) || data instanceof FileRef) {
    return {
      ok: false,
      problems: [
        { path: [], message: `the top level must be a mapping (gateway:, buses:, devices:), got ${kindOf(data)}` },
      ],
    };
  }
  return { ok: true, source: { data: data as Record<string, unknown>, lineOf: makeLineOf(doc, counter) } };
}
