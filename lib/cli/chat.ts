/** `healthgpt chat --model M`: an interactive conversation, streamed, in the model's template. */
import { Command } from 'commander';
import { createInterface } from 'node:readline';
import { LanguageModel } from '../model/model.js';
import type { ChatMessage } from '../prompt/template.js';
import { validateSampling } from '../model/sampler.js';
import { addGenerationOptions, generationOptions, type GenerationFlags } from './sampling.js';

export function chatCommand(): Command {
  const c = new Command('chat')
    .description('talk with the model (one line per message; Ctrl-D ends)')
    .requiredOption('-m, --model <file>', 'GGUF model')
    .option('--system <text>', "replace the template's system text");
  return addGenerationOptions(c).action(async (o: GenerationFlags & { model: string; system?: string }) => {
    validateSampling(generationOptions(o)); // before the model loads, not at the first message
    const model = await LanguageModel.load(o.model, { threads: o.threads, contextSize: o.context });
    const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: Boolean(process.stdin.isTTY) });
    const history: ChatMessage[] = [];
    const ac = new AbortController();
    // Ctrl-C during an answer stops the answer; at the prompt it ends the chat
    let answering = false;
    rl.on('SIGINT', () => (answering ? ac.abort() : rl.close()));
    try {
      if (process.stdin.isTTY) process.stdout.write('(random weights give random text; Ctrl-D to end)\n');
      rl.setPrompt('> ');
      rl.prompt();
      for await (const line of rl) {
        if (!line.trim()) {
          rl.prompt();
          continue;
        }
        history.push({ role: 'user', content: line });
        let reply = '';
        answering = true;
        try {
          for await (const piece of model.chat(history, { ...generationOptions(o), system: o.system, signal: ac.signal })) {
            reply += piece;
            process.stdout.write(piece);
          }
        } catch (err) {
          if ((err as { code?: string }).code !== 'ABORT_ERR') throw err;
        } finally {
          answering = false;
        }
        process.stdout.write('\n');
        history.push({ role: 'assistant', content: reply });
        rl.prompt();
      }
    } finally {
      rl.close();
      model.dispose();
    }
  });
}
