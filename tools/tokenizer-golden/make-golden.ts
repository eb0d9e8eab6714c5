/**
 * Records llama.cpp's token ids and detokenized text for the tokenizer test cases into
 * test/fixtures/tokenizer/llama-cpp-golden.json. See README.md in this folder.
 *
 *   npx vite-node tools/tokenizer-golden/make-golden.ts -- --harness /path/to/harness --llama-cpp-rev <commit>
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GGUFWriter } from '../../lib/gguf/writer.js';
import { addBpeVocab, addSpmVocab } from '../../lib/tokenizer/index.js';
import { MODES, caseHash, goldenCases, textsHash, type GoldenFile, type Mode } from '../../test/fixtures/tokenizer/golden.js';
import { CORPUS } from '../../test/fixtures/tokenizer/corpus.js';
import { buildVocabs } from '../../test/fixtures/tokenizer/vocabs.js';

const FULL_IDS = ['phi3', 'healthgpt-phi3', 'phi4-dbrx'];

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const harness = arg('--harness');
  if (!harness) throw new Error('--harness <path to the compiled harness> is required');
  const rev = arg('--llama-cpp-rev') ?? 'unknown';
  const out = arg('--out') ?? join(__dirname, '../../test/fixtures/tokenizer/llama-cpp-golden.json');
  const dir = mkdtempSync(join(tmpdir(), 'tokenizer-golden-'));
  const cases = goldenCases();

  // One input file for all vocabularies: every (case, mode) record.
  const records: { caseIdx: number; mode: Mode }[] = [];
  const chunks: Buffer[] = [];
  cases.forEach((c, caseIdx) => {
    for (const mode of c.modes) {
      const m = MODES[mode];
      const body = Buffer.from(c.text, 'utf8');
      const head = Buffer.alloc(8);
      head[0] = m.add ? 1 : 0;
      head[1] = m.parse ? 1 : 0;
      head[2] = m.remove ? 1 : 0;
      head[3] = m.unparse ? 1 : 0;
      head.writeUInt32LE(body.length, 4);
      chunks.push(head, body);
      records.push({ caseIdx, mode });
    }
  });
  const input = join(dir, 'input.bin');
  writeFileSync(input, Buffer.concat(chunks));

  const golden: GoldenFile = { llamaCpp: rev, casesHash: textsHash(cases.map((c) => c.text)), hashes: {}, ids: {} };
  for (const v of await buildVocabs()) {
    const w = new GGUFWriter();
    w.addKV('general.architecture', 'phi3');
    for (const [k, val] of Object.entries(v.extra)) w.addKV(k, val);
    if (v.spm) addSpmVocab(w, v.spm);
    else addBpeVocab(w, v.bpe!);
    const gguf = join(dir, `${v.name}.gguf`);
    await w.write(gguf);
    const outFile = join(dir, `${v.name}.out`);
    execFileSync(harness, [gguf, input, outFile], { stdio: 'inherit' });
    const lines = readFileSync(outFile, 'utf8').split('\n').filter((l, i, a) => i < a.length - 1 || l.length > 0);
    if (lines.length !== records.length) throw new Error(`${v.name}: ${lines.length} results for ${records.length} records`);
    const hashes = { A: [], B: [], C: [] } as Record<Mode, string[]>;
    const ids = { A: [] as number[][], B: [] as number[][] };
    lines.forEach((line, k) => {
      const [idStr, hex] = line.split('\t');
      const list = idStr ? idStr.split(',').map(Number) : [];
      const { caseIdx, mode } = records[k]!;
      hashes[mode].push(caseHash(list, Buffer.from(hex ?? '', 'hex')));
      if (FULL_IDS.includes(v.name) && caseIdx < CORPUS.length && (mode === 'A' || mode === 'B')) ids[mode].push(list);
    });
    golden.hashes[v.name] = hashes;
    if (FULL_IDS.includes(v.name)) golden.ids[v.name] = ids;
    console.log(`${v.name}: ${records.length} results`);
  }
  // Compact JSON: one line per array.
  const text = JSON.stringify(golden, null, 1).replace(/\[\s+([^\[\]]*?)\s+\]/g, (_, body: string) => `[${body.replace(/\s+/g, '')}]`);
  writeFileSync(out, text + '\n');
  console.log(`wrote ${out} (${text.length} bytes)`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
