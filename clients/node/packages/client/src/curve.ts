/**
 * CURVE keys for a broker started with `--keys` (docs/PROTOCOL.md section 13).
 */
import { readFileSync } from 'node:fs';
import { JobqError } from './errors';

/**
 * This peer's key pair and the broker's public key, each 40 characters of
 * Z85 text (as `jobq keygen` prints them).
 */
export interface CurveKeys {
  publicKey: string;
  secretKey: string;
  serverKey: string;
}

const Z85_KEY = /^[0-9a-zA-Z.\-:+=^!/*?&<>()[\]{}@%$#]{40}$/;
const ENTRY = /^\s+(public-key|secret-key)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s#]*))/;

/** Throws a `bad_request` JobqError naming the first field that is not a CURVE key. */
export function checkCurveKeys(keys: CurveKeys): CurveKeys {
  for (const name of ['publicKey', 'secretKey', 'serverKey'] as const) {
    const value: unknown = keys?.[name];
    if (typeof value !== 'string' || !Z85_KEY.test(value)) {
      throw new JobqError('bad_request', `${name}: not a CURVE key (40 characters of Z85)`);
    }
  }
  return keys;
}

/**
 * Keys from a secret certificate (`jobq keygen PATH` writes `PATH_secret`)
 * and the broker's public key: its Z85 text, or the path of its public
 * certificate.
 */
export function curveKeysFromFiles(cert: string, brokerKey: string): CurveKeys {
  const [publicKey, secretKey] = readCertificate(cert);
  if (secretKey === undefined) {
    throw new JobqError('bad_request', `${cert}: no secret-key; give the secret certificate (PATH_secret)`);
  }
  const serverKey = Z85_KEY.test(brokerKey) ? brokerKey : readCertificate(brokerKey)[0];
  return checkCurveKeys({ publicKey, secretKey, serverKey });
}

/**
 * Keys from `JOBQ_CERT` and `JOBQ_BROKER_KEY`, as jobq's programs read them;
 * undefined when neither is set.
 */
export function curveKeysFromEnv(env: NodeJS.ProcessEnv = process.env): CurveKeys | undefined {
  const cert = env.JOBQ_CERT;
  const brokerKey = env.JOBQ_BROKER_KEY;
  if (!cert && !brokerKey) return undefined;
  if (!cert || !brokerKey) throw new JobqError('bad_request', 'CURVE needs both JOBQ_CERT and JOBQ_BROKER_KEY');
  return curveKeysFromFiles(cert, brokerKey);
}

/**
 * The keys a client or worker option names: given ones (checked), none for
 * null, else those of the environment.
 */
export function resolveCurve(option: CurveKeys | null | undefined): CurveKeys | undefined {
  if (option === null) return undefined;
  if (option === undefined) return curveKeysFromEnv();
  return checkCurveKeys(option);
}

/** zeromq socket options that make a socket a CURVE client of the broker. */
export function curveSocketOptions(keys: CurveKeys | undefined): {
  curveServerKey?: string;
  curvePublicKey?: string;
  curveSecretKey?: string;
} {
  if (!keys) return {};
  return { curveServerKey: keys.serverKey, curvePublicKey: keys.publicKey, curveSecretKey: keys.secretKey };
}

/**
 * What to add to "no reply" when no answer ever came on a socket: a
 * failed handshake looks the same as a broker that is down.
 */
export function keyHint(keys: CurveKeys | undefined): string {
  return keys
    ? '; if the broker runs with keys: is this key in its key file, with a role for this endpoint, and is the broker\'s public key right?'
    : '; does the broker run with keys? (then give a certificate and the broker\'s key: the curve option, or JOBQ_CERT and JOBQ_BROKER_KEY)';
}

/**
 * The public key and, if present, the secret key of a czmq certificate:
 * the indented `public-key` and `secret-key` of its `curve` section.
 */
function readCertificate(path: string): [string, string | undefined] {
  let text: string;
  try {
    text = readFileSync(path, 'latin1');
  } catch (err) {
    throw new JobqError('bad_request', `${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const keys = new Map<string, string>();
  let inCurve = false;
  for (const line of text.split(/\r?\n/)) {
    const first = line.slice(0, 1);
    if (!['', ' ', '\t', '#'].includes(first)) {
      inCurve = line.trim() === 'curve';
      continue;
    }
    const m = inCurve ? ENTRY.exec(line) : null;
    if (m) keys.set(m[1]!, m[2] ?? m[3] ?? m[4] ?? '');
  }
  const publicKey = keys.get('public-key') ?? '';
  if (!Z85_KEY.test(publicKey)) {
    throw new JobqError('bad_request', `${path}: not a CURVE certificate (no public-key in a curve section)`);
  }
  return [publicKey, keys.get('secret-key')];
}
