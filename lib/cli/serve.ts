/**
 * `healthgpt serve -m <folder or files>`: the OpenAI-compatible HTTP server (lib/server/) over
 * one HealthGPT session. Listens on 127.0.0.1:8080 unless told otherwise; another address
 * needs --api-key (or HEALTHGPT_API_KEY). Ctrl-C / SIGTERM stop requests in flight and exit.
 */
import { basename } from 'node:path';
import { Command, Option } from 'commander';
import { INT_MAX, intArg, threadsArg } from './arg-parsers.js';
import { gpuOf, reportBackend } from './session-flags.js';
import { startServer, type RunningServer } from '../server/app.js';
import { HealthGPT } from '../session/healthgpt.js';
import type { KvType } from '../model/model.js';
import { resolveModelFiles } from '../session/model-files.js';

interface ServeFlags {
  model: string[];
  name?: string;
  host: string;
  port: number;
  apiKey?: string;
  allowDir?: string[];
  maxBodyMb: number;
  maxPixels: number;
  queue: number;
  timeout: number;
  logPrompts?: boolean;
  logLevel: string;
  threads?: number;
  context?: number;
  sequences?: number;
  kvType?: KvType;
  gpu?: 'auto' | 'cuda' | 'off';
  gpuLayers?: number;
}

const num = (v: string) => Number(v);

export function serveCommand(): Command {
  return new Command('serve')
    .description('serve the model over an OpenAI-compatible HTTP API (chat completions, images)')
    .requiredOption('-m, --model <paths...>', 'a converted model folder (healthgpt.json), m3 / l14 after pull, or its GGUF files')
    .option('--name <id>', "the model's name in the API (default: the folder's name, else healthgpt)")
    .option('--host <address>', 'address to listen on; other than loopback needs --api-key', '127.0.0.1')
    .addOption(new Option('--port <n>', 'port (0: any free one)').argParser(intArg(0, 65535)).default(8080))
    .addOption(new Option('--api-key <key>', 'require Authorization: Bearer <key>').env('HEALTHGPT_API_KEY'))
    .option('--allow-dir <dirs...>', 'folders whose files requests may name as images (default: none)')
    .addOption(new Option('--max-body-mb <n>', 'largest request body').argParser(intArg(1, 2047)).default(32))
    .addOption(new Option('--max-pixels <n>', 'largest image in pixels').argParser(intArg(1, Number.MAX_SAFE_INTEGER)).default(25_000_000))
    .addOption(new Option('--queue <n>', 'requests that may wait for the model; more get 429').argParser(intArg(0, 1_000_000)).default(16))
    .addOption(new Option('--timeout <s>', 'per-request deadline in seconds, waiting included').argParser(intArg(1, 2_000_000)).default(600))
    .option('--log-prompts', 'log prompt text (never image content)')
    .addOption(new Option('--log-level <level>', 'log level').choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'))
    .addOption(new Option('--threads <n>', 'threads (default: one per core)').argParser(threadsArg))
    .addOption(new Option('--context <n>', "context size (default: the model's)").argParser(intArg(0, INT_MAX)))
    .addOption(
      new Option(
        '--sequences <n>',
        'requests decoded together, one batch per token (KV cache slots of --context positions each, committed as written); more wait in the queue (default 4; 1 with --gpu cuda, whose model holds one)',
      ).argParser(num),
    )
    .addOption(new Option('--kv-type <type>', 'KV cache precision (default f16; q8_0: half the memory a slot takes)').choices(['f16', 'f32', 'q8_0']))
    .addOption(new Option('--gpu <mode>', 'where the language model, CLIP and the VQGAN run: off (default, the CPU), auto (CUDA when present and it fits), cuda').choices(['auto', 'cuda', 'off']))
    .addOption(new Option('--gpu-layers <n>', 'with a GPU: only the first n layers there, the rest on the CPU').argParser(intArg(0, INT_MAX)))
    .action(async (o: ServeFlags) => {
      const files = await resolveModelFiles(o.model);
      const { name: _name, ...parts } = files;
      const hg = await HealthGPT.load({
        ...parts,
        threads: o.threads,
        contextSize: o.context,
        sequences: o.sequences ?? (gpuOf(o) === 'cuda' ? 1 : 4),
        kvType: o.kvType,
        gpu: gpuOf(o),
        gpuLayers: o.gpuLayers,
      });
      reportBackend(hg.model.info.backend, gpuOf(o));
      let server: RunningServer | undefined;
      try {
        server = await startServer({
          session: hg,
          modelId: o.name ?? (o.model.length === 1 && !o.model[0]!.endsWith('.gguf') ? basename(o.model[0]!) : 'healthgpt'),
          host: o.host,
          port: o.port,
          apiKey: o.apiKey || undefined,
          allowDirs: o.allowDir,
          bodyLimit: Math.round(o.maxBodyMb * 2 ** 20),
          maxPixels: Math.round(o.maxPixels),
          queue: o.queue,
          timeoutMs: Math.round(o.timeout * 1000),
          logPrompts: o.logPrompts ?? false,
          logger: { level: o.logLevel },
        });
      } catch (err) {
        hg.dispose();
        throw err;
      }
      const running = server;
      await new Promise<void>((resolve) => {
        const stop = (): void => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          void running.close().finally(() => {
            hg.dispose();
            resolve();
          });
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
    });
}
