/**
 * The generation tasks and the instruction each sends. HealthGPT's released demo
 * (llava/demo/gen_infer.sh) runs "Reconstruct the image." with an input image; the wording of
 * the other tasks is ours, in the same imperative style, since the release documents no other
 * prompt: the caller can replace any of them with `instruction`.
 *
 * The prompt is the chat template's single user turn `<image>\n{instruction}` (no `<image>`
 * when the task takes no image), then `<start_index>` after the open assistant role, as the
 * released gen_infer.py builds it.
 */
import { HealthGPTError } from '../errors.js';

export type GenerationTask = 'ct2mri' | 'mri2ct' | 'super-resolution' | 'reconstruct' | 'report2cxr';

export interface TaskSpec {
  instruction: string;
  /** an input image is required (all but report-to-CXR) */
  image: boolean;
  /** a report text is required (report-to-CXR) */
  report: boolean;
}

export const GENERATION_TASKS: Readonly<Record<GenerationTask, TaskSpec>> = {
  ct2mri: { instruction: 'Convert the CT image to an MRI image.', image: true, report: false },
  mri2ct: { instruction: 'Convert the MRI image to a CT image.', image: true, report: false },
  'super-resolution': { instruction: 'Generate a high-resolution version of this image.', image: true, report: false },
  reconstruct: { instruction: 'Reconstruct the image.', image: true, report: false },
  report2cxr: { instruction: 'Generate a chest X-ray image that matches the following report: ', image: false, report: true },
};

export function isGenerationTask(t: unknown): t is GenerationTask {
  return typeof t === 'string' && Object.hasOwn(GENERATION_TASKS, t);
}

/** The user message for a task: `<image>\n` + instruction (+ report), validated. */
export function taskMessage(task: GenerationTask, o: { hasImage: boolean; report?: string; instruction?: string }): string {
  if (!isGenerationTask(task)) throw new HealthGPTError('ERR_INVALID_ARG', `task must be one of ${Object.keys(GENERATION_TASKS).join(', ')}, got ${String(task)}`);
  const spec = GENERATION_TASKS[task];
  if (spec.image && !o.hasImage) throw new HealthGPTError('ERR_INVALID_ARG', `task ${task} needs an input image`);
  if (!spec.image && o.hasImage) throw new HealthGPTError('ERR_INVALID_ARG', `task ${task} takes no input image`);
  if (spec.report && (typeof o.report !== 'string' || o.report.trim() === '')) throw new HealthGPTError('ERR_INVALID_ARG', `task ${task} needs a non-empty report, got ${JSON.stringify(o.report)}`);
  if (!spec.report && o.report !== undefined) throw new HealthGPTError('ERR_INVALID_ARG', `task ${task} takes no report`);
  if (o.instruction !== undefined && (typeof o.instruction !== 'string' || o.instruction.trim() === ''))
    throw new HealthGPTError('ERR_INVALID_ARG', `instruction must be a non-empty string, got ${typeof o.instruction === 'string' ? JSON.stringify(o.instruction) : typeof o.instruction}`);
  const text = (o.instruction ?? spec.instruction) + (spec.report ? o.report!.trim() : '');
  return o.hasImage ? `<image>\n${text}` : text;
}
