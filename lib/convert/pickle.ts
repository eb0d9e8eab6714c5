/**
 * Our own unpickler for the protocol 2-5 subset torch.save writes. Nothing in the file is ever
 * executed: the only callables are a fixed allow-list (tensor and parameter rebuilds, OrderedDict)
 * that this module implements itself, and torch's storage classes are recognised as names only.
 * A few known-inert classes of Lightning checkpoints' extras (INERT_GLOBALS) are accepted as
 * names that build opaque placeholders, never called. Any other global (GLOBAL or STACK_GLOBAL)
 * is refused naming module.name the moment it is read, and any opcode outside the subset is
 * refused naming the opcode.
 *
 * Python values come back as: None -> null, bool, int -> number (bigint past 2^53), float ->
 * number, str -> string, bytes -> Uint8Array, list -> array, tuple -> PyTuple, dict and
 * OrderedDict -> Map, torch tensor -> TorchTensorRef (storage + offset + size + stride).
 */
import { HealthGPTError } from '../errors.js';
import type { DType } from './tensor.js';

export class PyTuple {
  constructor(readonly items: readonly unknown[]) {}
}

/** A name read by GLOBAL / STACK_GLOBAL that passed the allow-list. */
class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** One storage a tensor views (torch: key of the data/<key> entry, element type, length). */
export interface TorchStorageRef {
  key: string;
  dtype: DType;
  numel: number;
}

export interface TorchTensorRef {
  kind: 'tensor';
  storage: TorchStorageRef;
  offset: number;
  size: number[];
  stride: number[];
}

export function isTensorRef(v: unknown): v is TorchTensorRef {
  return typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'tensor';
}

/** torch's typed storage classes and the element type of each. */
export const STORAGE_DTYPES: Record<string, DType> = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
};

const CALLABLE = new Set(['torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter', 'collections.OrderedDict']);

/**
 * Known-inert classes a Lightning checkpoint carries outside its state_dict: callback classes
 * (PL 1.x keys its 'callbacks' dict by the class itself) and hyper-parameter containers. They
 * are accepted as names only: "calling" one (REDUCE, NEWOBJ) gives an OpaqueObject that records
 * the name and nothing else; items and state set on it (SETITEMS, BUILD) are dropped unread. No
 * Python code runs, none is imitated, and an opaque object is never a tensor, so nothing from
 * it reaches a converted file. Every other class stays refused by name.
 */
export const INERT_GLOBALS: ReadonlySet<string> = new Set([
  'pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint',
  'pytorch_lightning.callbacks.early_stopping.EarlyStopping',
  'pytorch_lightning.callbacks.lr_monitor.LearningRateMonitor',
  'pytorch_lightning.utilities.parsing.AttributeDict',
  'argparse.Namespace',
]);

/** What an inert global gives when called: its name, no state. */
export class OpaqueObject {
  constructor(readonly qualified: string) {}
}

/** Is module.name on the allow-list (callable, a storage class, or inert)? */
export function allowedGlobal(module: string, name: string): boolean {
  if (module === 'torch' && Object.hasOwn(STORAGE_DTYPES, name)) return true;
  return CALLABLE.has(`${module}.${name}`) || INERT_GLOBALS.has(`${module}.${name}`);
}

const MAX_DEPTH = 1 << 20;

export interface UnpickleOptions {
  /** file or entry name for messages */
  what?: string;
  /** resolves a persistent id (torch: ('storage', StorageClass, key, location, numel)) */
  persistentLoad?: (pid: unknown) => unknown;
}

function opName(op: number): string {
  const printable = op >= 0x20 && op < 0x7f ? ` '${String.fromCharCode(op)}'` : '';
  return `0x${op.toString(16).padStart(2, '0')}${printable}`;
}

/** Unpickles `data` without executing anything from it. */
export function unpickle(data: Uint8Array, options: UnpickleOptions = {}): unknown {
  const what = options.what ?? 'pickle';
  const fail = (msg: string): never => {
    throw new HealthGPTError('ERR_PICKLE', `${what}: ${msg}`);
  };
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let pos = 0;
  const stack: unknown[] = [];
  const metaStack: unknown[][] = [];
  let cur = stack;
  const memo = new Map<number, unknown>();

  const need = (n: number): number => {
    if (n < 0 || pos + n > data.length) fail(`truncated: ${n} bytes needed at offset ${pos}, ${data.length - pos} left`);
    const at = pos;
    pos += n;
    return at;
  };
  const u8 = (): number => data[need(1)]!;
  const u16 = (): number => dv.getUint16(need(2), true);
  const u32 = (): number => dv.getUint32(need(4), true);
  const len64 = (): number => {
    const v = dv.getBigUint64(need(8), true);
    if (v > BigInt(data.length)) fail(`a length of ${v} at offset ${pos - 8} is longer than the pickle`);
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => data.subarray(need(n), pos);
  const utf8 = (n: number): string => Buffer.from(bytes(n)).toString('utf8');
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) fail(`truncated: no end of line after offset ${pos}`);
    const s = Buffer.from(data.subarray(pos, end)).toString('latin1');
    pos = end + 1;
    return s;
  };
  const push = (v: unknown): void => {
    if (cur.length >= MAX_DEPTH) fail('stack too deep');
    cur.push(v);
  };
  const pop = (): unknown => {
    if (cur.length === 0) fail(`stack underflow at offset ${pos - 1}`);
    return cur.pop();
  };
  const top = (): unknown => {
    if (cur.length === 0) fail(`stack underflow at offset ${pos - 1}`);
    return cur[cur.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = cur;
    const prev = metaStack.pop();
    if (!prev) fail(`no MARK before offset ${pos - 1}`);
    cur = prev!;
    return items;
  };
  const toInt = (v: bigint): number | bigint => (v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v);
  const longLE = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
    return toInt(v);
  };
  const global = (module: string, name: string): PyGlobal => {
    if (!allowedGlobal(module, name)) fail(`global '${module}.${name}' is not on the allow-list (refused; nothing was executed)`);
    return new PyGlobal(module, name);
  };
  const setItems = (target: unknown, kv: unknown[]): void => {
    if (target instanceof OpaqueObject) return; // a dict subclass's items: dropped unread
    if (!(target instanceof Map)) fail(`SETITEM(S) on a ${describe(target)}, not a dict`);
    if (kv.length % 2) fail('SETITEMS with an odd number of items');
    for (let i = 0; i < kv.length; i += 2) (target as Map<unknown, unknown>).set(kv[i], kv[i + 1]);
  };
  const appendItems = (target: unknown, items: unknown[]): void => {
    if (target instanceof OpaqueObject) return;
    if (!Array.isArray(target)) fail(`APPEND(S) on a ${describe(target)}, not a list`);
    for (const x of items) (target as unknown[]).push(x);
  };
  const call = (fn: unknown, args: unknown): unknown => {
    if (!(fn instanceof PyGlobal)) fail(`REDUCE calls a ${describe(fn)}, not an allowed global`);
    if (!(args instanceof PyTuple)) fail(`REDUCE arguments are a ${describe(args)}, not a tuple`);
    const g = fn as PyGlobal;
    if (INERT_GLOBALS.has(g.qualified)) return new OpaqueObject(g.qualified);
    const a = (args as PyTuple).items;
    switch (g.qualified) {
      case 'collections.OrderedDict':
        if (a.length !== 0) fail('OrderedDict called with arguments');
        return new Map();
      case 'torch._utils._rebuild_tensor_v2':
        return rebuildTensor(a, fail);
      case 'torch._utils._rebuild_parameter': {
        if (!isTensorRef(a[0])) fail('_rebuild_parameter without a tensor');
        return a[0];
      }
      default:
        return fail(`global '${g.qualified}' is not callable (refused; nothing was executed)`);
    }
  };

  const PROTO = 0x80;
  while (pos < data.length) {
    const op = u8();
    switch (op) {
      case PROTO: {
        const v = u8();
        if (v > 5) fail(`pickle protocol ${v} is newer than 5`);
        break;
      }
      case 0x95: // FRAME
        need(8);
        break;
      case 0x2e: {
        // STOP
        if (metaStack.length) fail('STOP inside an unclosed MARK');
        if (stack.length !== 1) fail(`STOP with ${stack.length} values on the stack`);
        return stack[0];
      }
      case 0x28: // MARK
        metaStack.push(cur);
        cur = [];
        break;
      case 0x30: // POP
        if (cur.length) cur.pop();
        else popMark();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        push(dv.getInt32(need(4), true));
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x49: {
        // INT (text): also True/False as 01/00
        const s = line().trim();
        if (s === '01') push(true);
        else if (s === '00') push(false);
        else if (/^[-+]?\d+$/.test(s)) push(toInt(BigInt(s)));
        else fail(`INT '${s}' is not an integer`);
        break;
      }
      case 0x4c: {
        // LONG (text)
        const s = line().trim().replace(/L$/, '');
        if (!/^[-+]?\d+$/.test(s)) fail(`LONG '${s}' is not an integer`);
        push(toInt(BigInt(s)));
        break;
      }
      case 0x8a: // LONG1
        push(longLE(bytes(u8())));
        break;
      case 0x8b: {
        // LONG4
        const n = dv.getInt32(need(4), true);
        if (n < 0) fail('LONG4 with a negative length');
        push(longLE(bytes(n)));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        push(dv.getFloat64(need(8), false));
        break;
      case 0x46: {
        // FLOAT (text)
        const s = line().trim();
        const v = Number(s);
        if (Number.isNaN(v) && s.toLowerCase() !== 'nan') fail(`FLOAT '${s}' is not a number`);
        push(v);
        break;
      }
      case 0x58: // BINUNICODE
        push(utf8(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(utf8(u8()));
        break;
      case 0x8d: // BINUNICODE8
        push(utf8(len64()));
        break;
      case 0x54: {
        // BINSTRING (py2 str; torch reads it as latin1)
        const n = dv.getInt32(need(4), true);
        if (n < 0) fail('BINSTRING with a negative length');
        push(Buffer.from(bytes(n)).toString('latin1'));
        break;
      }
      case 0x55: // SHORT_BINSTRING
        push(Buffer.from(bytes(u8())).toString('latin1'));
        break;
      case 0x42: // BINBYTES
        push(bytes(u32()).slice());
        break;
      case 0x43: // SHORT_BINBYTES
        push(bytes(u8()).slice());
        break;
      case 0x8e: // BINBYTES8
        push(bytes(len64()).slice());
        break;
      case 0x29: // EMPTY_TUPLE
        push(new PyTuple([]));
        break;
      case 0x74: // TUPLE
        push(new PyTuple(popMark()));
        break;
      case 0x85: // TUPLE1
        push(new PyTuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        push(new PyTuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        push(new PyTuple([pop(), b, c]));
        break;
      }
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x6c: // LIST
        push(popMark());
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        push(new Map());
        break;
      case 0x64: {
        // DICT
        const m = new Map();
        setItems(m, popMark());
        push(m);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x8f: // EMPTY_SET (kept as a list)
        push([]);
        break;
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x91: // FROZENSET
        push(popMark());
        break;
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        push(global(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL without two strings');
        push(global(module as string, name as string));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        push(call(fn, args));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args), for inert classes only
        const args = pop();
        const cls = pop();
        if (!(cls instanceof PyGlobal) || !INERT_GLOBALS.has(cls.qualified)) fail(`NEWOBJ on a ${describe(cls)} (only known-inert classes are accepted)`);
        if (!(args instanceof PyTuple)) fail(`NEWOBJ arguments are a ${describe(args)}, not a tuple`);
        push(new OpaqueObject((cls as PyGlobal).qualified));
        break;
      }
      case 0x62: {
        // BUILD: only an OrderedDict's attribute state (state_dict._metadata) is accepted, and dropped
        const state = pop();
        const obj = top();
        if (obj instanceof OpaqueObject) break; // an inert object's state: dropped unread
        if (!(obj instanceof Map)) fail(`BUILD on a ${describe(obj)} (only a dict's state is accepted)`);
        if (!(state instanceof Map) && state !== null) fail(`BUILD with a ${describe(state)} state`);
        break;
      }
      case 0x50: // PERSID (text id)
        push(persistent(line()));
        break;
      case 0x51: // BINPERSID
        push(persistent(pop()));
        break;
      case 0x68: // BINGET
        push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        push(memoGet(u32()));
        break;
      case 0x67: {
        // GET
        const s = line();
        if (!/^\d+$/.test(s)) fail(`GET '${s}' is not an index`);
        push(memoGet(Number(s)));
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x70: {
        // PUT
        const s = line();
        if (!/^\d+$/.test(s)) fail(`PUT '${s}' is not an index`);
        memo.set(Number(s), top());
        break;
      }
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      default:
        fail(`opcode ${opName(op)} at offset ${pos - 1} is not supported (refused; nothing was executed)`);
    }
  }
  return fail('no STOP opcode (truncated pickle)');

  function memoGet(i: number): unknown {
    if (!memo.has(i)) fail(`memo ${i} is not set`);
    return memo.get(i);
  }
  function persistent(pid: unknown): unknown {
    if (!options.persistentLoad) fail('a persistent id with no loader for it');
    return options.persistentLoad!(pid);
  }
}

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (v instanceof PyTuple) return 'tuple';
  if (v instanceof Map) return 'dict';
  if (Array.isArray(v)) return 'list';
  if (v instanceof PyGlobal) return `global ${v.qualified}`;
  if (v instanceof OpaqueObject) return `opaque ${v.qualified} object`;
  if (isTensorRef(v)) return 'tensor';
  return typeof v;
}

const isIntList = (v: unknown): v is PyTuple => v instanceof PyTuple && v.items.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0);

/** _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]) */
function rebuildTensor(a: readonly unknown[], fail: (m: string) => never): TorchTensorRef {
  if (a.length < 4) fail(`_rebuild_tensor_v2 with ${a.length} arguments`);
  const [storage, offset, size, stride] = a;
  const s = storage as TorchStorageRef;
  if (!s || typeof s !== 'object' || typeof s.key !== 'string' || typeof s.dtype !== 'string') fail('_rebuild_tensor_v2 without a storage');
  if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0) fail('_rebuild_tensor_v2: bad storage offset');
  if (!isIntList(size) || !isIntList(stride) || size.items.length !== stride.items.length) fail('_rebuild_tensor_v2: size and stride are not matching integer tuples');
  const sz = (size as PyTuple).items as number[];
  const st = (stride as PyTuple).items as number[];
  // the last element any index reaches must lie inside the storage
  if (sz.every((d) => d > 0)) {
    const last = (offset as number) + sz.reduce((acc, d, i) => acc + (d - 1) * st[i]!, 0);
    if (last >= s.numel) fail(`tensor view reaches element ${last} of a storage of ${s.numel} (key ${s.key})`);
  }
  return { kind: 'tensor', storage: s, offset: offset as number, size: [...sz], stride: [...st] };
}
