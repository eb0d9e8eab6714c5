// The text commands end to end on a random phi3 with a small SentencePiece vocabulary.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PHI3_TINY, writeRandomPhi3 } from '../lib/synthetic/phi3.js';
import { cli, root, tempDir } from './helpers.js';

const dir = tempDir();
const model = join(dir, 'tiny.gguf');

beforeAll(async () => {
  await writeRandomPhi3(model, PHI3_TINY);
});

describe('text commands', () => {
  it('tokenize: special tokens only with --special; pieces match ids', () => {
    const plain = JSON.parse(cli(['tokenize', '-m', model, '<|user|>lung nodule', '--json']).stdout);
    const special = JSON.parse(cli(['tokenize', '-m', model, '<|user|>lung nodule', '--special', '--json']).stdout);
    expect(special.pieces[0]).toBe('<|user|>');
    expect(special.pieces.slice(1)).toEqual(['▁lung', '▁nodule']);
    expect(plain.pieces).not.toContain('<|user|>');
    expect(plain.ids.length).toBeGreaterThan(special.ids.length);
  });

  it('complete --json: greedy output is reproducible and bounded by --max-tokens', () => {
    const a = cli(['complete', '-m', model, 'The patient', '-n', '10', '--json']);
    expect(a.status, a.stderr).toBe(0);
    const ra = JSON.parse(a.stdout);
    const rb = JSON.parse(cli(['complete', '-m', model, 'The patient', '-n', '10', '--json']).stdout);
    expect(ra.text).toBe(rb.text);
    expect(ra.finish_reason).toBe('length');
    expect(typeof ra.timings.generate_ms).toBe('number');
  });

  it('eval --json: nll, ppl = exp(nll) and the top-k after every position', () => {
    const r = cli(['eval', '-m', model, '--tokens', '1,300,400,500,600', '--top', '3', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.top.length).toBe(5);
    for (const row of j.top) {
      expect(row.length).toBe(3);
      expect(row[0][1]).toBeGreaterThanOrEqual(row[1][1]);
    }
    expect(j.ppl).toBeCloseTo(Math.exp(j.nll), 6);
    const bad = cli(['eval', '-m', model, '--tokens', '1,x,3']);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/"x" \(item 2\) is not a token id/);
  });

  it('bench --json reports the fields the issue names', () => {
    const r = cli(['bench', '-m', model, '--prompt', '32', '--decode', '8', '--repeats', '1', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    for (const k of ['load_ms', 'pp_tok_s', 'tg_tok_s', 'peak_rss_mb']) expect(j[k]).toBeGreaterThan(0);
  });

  it('chat reads one message per line and answers each', () => {
    const r = spawnSync(process.execPath, [join(root, 'bin', 'healthgpt.js'), 'chat', '-m', model, '-n', '5'], { input: 'hello\nwhat is this?\n', encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.split('> ').length).toBeGreaterThanOrEqual(3);
  });

  it('a model without a tokenizer says so when given text', () => {
    const r = cli(['complete', '-m', join(root, 'test', 'fixtures', 'phi3', 'gqa.f32.gguf'), 'hi']);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/has no tokenizer/);
  });
});
