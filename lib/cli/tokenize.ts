/** `healthgpt tokenize --model M "text" [--json]`: the token ids and pieces of a text. */
import { Command } from 'commander';
import { GGUFFile } from '../gguf/file.js';
import { Tokenizer } from '../tokenizer/index.js';
import { toJson } from './format.js';

export function tokenizeCommand(): Command {
  return new Command('tokenize')
    .description("split a text into the model's tokens")
    .requiredOption('-m, --model <file>', 'GGUF model (only its vocabulary is read)')
    .argument('<text>', 'text')
    .option('--special', 'recognise special tokens such as <|user|> in the text')
    .option('--no-bos', 'do not add BOS even if the vocabulary asks for it')
    .option('--json', 'print {"ids": [...], "pieces": [...]}')
    .action((text: string, o: { model: string; special?: boolean; bos: boolean; json?: boolean }) => {
      const f = GGUFFile.open(o.model);
      let tok: Tokenizer;
      try {
        tok = Tokenizer.fromGGUF(f.info);
      } finally {
        f.close();
      }
      const ids = tok.encode(text, { special: o.special ?? false, addSpecial: o.bos });
      const pieces = ids.map((id) => tok.tokenText(id));
      if (o.json) process.stdout.write(toJson({ ids, pieces }, 0) + '\n');
      else process.stdout.write(ids.map((id, i) => `${id}\t${JSON.stringify(pieces[i])}`).join('\n') + `\n${ids.length} tokens\n`);
    });
}
