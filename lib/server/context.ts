/** What every route shares: the session, the served model's name and the server's limits. */
import type { HealthGPT } from '../session/healthgpt.js';
import type { Admission } from './admission.js';
import type { ImageSource } from './image-source.js';

/** The part of a HealthGPT session the server uses. */
export type ServedSession = Pick<HealthGPT, 'ask' | 'generateImage' | 'model' | 'vqgan'>;

export interface ServerContext {
  session: ServedSession;
  /** the name clients give as `model` */
  modelId: string;
  images: ImageSource;
  admission: Admission;
  timeoutMs: number;
  /** images with more pixels are refused (413) before they are decoded */
  maxPixels: number;
  /** log prompt text (never image content) */
  logPrompts: boolean;
  /** fires when the server closes: requests in flight stop */
  shutdown: AbortSignal;
}
