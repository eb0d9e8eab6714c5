/**
 * The YAML subset taming-transformers' model.yaml is written in: block mappings nested by
 * indentation (spaces), `key: value` scalars (integers, floats, true/false, null, strings with
 * or without quotes) and one-line flow sequences `[1, 1, 2, 4]`. Anything else (block
 * sequences, anchors, tags, multi-line strings, tabs) is refused naming the line, never guessed:
 * the converter reads hyper-parameters from it, and a silent misreading would build a wrong model.
 */
import { convertFail } from './tensor.js';

export type YamlValue = string | number | boolean | null | YamlValue[] | YamlMap;
export interface YamlMap {
  [key: string]: YamlValue;
}

function scalar(text: string, where: string): YamlValue {
  const t = text.trim();
  if (t === '' || t === '~' || t === 'null') return null;
  if (t === 'true' || t === 'True') return true;
  if (t === 'false' || t === 'False') return false;
  if (/^[-+]?\d+$/.test(t)) return Number.parseInt(t, 10);
  if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(t)) return Number.parseFloat(t);
  if (/^'.*'$/.test(t)) return t.slice(1, -1).replace(/''/g, "'");
  if (/^".*"$/.test(t)) return t.slice(1, -1);
  if (t.startsWith('[')) {
    if (!t.endsWith(']')) convertFail(`${where}: a flow sequence must close on its line`);
    const inner = t.slice(1, -1).trim();
    if (inner === '') return [];
    return inner.split(',').map((s) => {
      if (/[[\]{}]/.test(s)) convertFail(`${where}: nested flow collections are not read`);
      return scalar(s, where);
    });
  }
  if (/^[&*!|>{]/.test(t)) convertFail(`${where}: YAML feature '${t[0]}' is not read (plain model.yaml expected)`);
  return t;
}

/** Parses `text` (the file `file`, for messages) into nested plain objects. */
export function parseYaml(text: string, file: string): YamlMap {
  const root: YamlMap = {};
  // stack of (indent, map): a line belongs to the deepest map indented less than it
  const stack: Array<{ indent: number; map: YamlMap }> = [{ indent: -1, map: root }];
  let pendingKey: { map: YamlMap; key: string; indent: number } | undefined;
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const where = `${file}:${i + 1}`;
    const raw = lines[i]!;
    const noComment = raw.replace(/\s+#.*$/, '').replace(/^#.*$/, '');
    if (noComment.trim() === '' || noComment.trim() === '---') continue;
    if (/^\s*\t/.test(noComment)) convertFail(`${where}: tab indentation is not YAML`);
    const indent = noComment.length - noComment.trimStart().length;
    const body = noComment.trim();
    if (body.startsWith('- ')) convertFail(`${where}: block sequences are not read (write [a, b] on one line)`);
    const m = /^([A-Za-z0-9_.\-/]+|'[^']*'|"[^"]*"):(\s+(.*))?$/.exec(body);
    if (!m) convertFail(`${where}: expected 'key: value', got ${JSON.stringify(body)}`);
    if (pendingKey) {
      if (indent > pendingKey.indent) {
        const child: YamlMap = {};
        pendingKey.map[pendingKey.key] = child;
        stack.push({ indent, map: child });
      } else pendingKey.map[pendingKey.key] = null;
      pendingKey = undefined;
    }
    if (stack[0]!.indent < 0) stack[0]!.indent = indent; // the root's indentation is its first line's
    while (stack.length > 1 && indent < stack[stack.length - 1]!.indent) stack.pop();
    const top = stack[stack.length - 1]!;
    if (indent !== top.indent) convertFail(`${where}: indentation ${indent} does not match its block's ${top.indent}`);
    const key = m![1]!.replace(/^['"]|['"]$/g, '');
    if (key === '__proto__') convertFail(`${where}: key '__proto__' refused`);
    if (Object.hasOwn(top.map, key)) convertFail(`${where}: key '${key}' appears twice`);
    const value = m![3];
    if (value === undefined || value.trim() === '') pendingKey = { map: top.map, key, indent };
    else top.map[key] = scalar(value, where);
  }
  if (pendingKey) pendingKey.map[pendingKey.key] = null;
  return root;
}
