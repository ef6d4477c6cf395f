// Mints chat tokens in tests exactly as the website does (HS256, the claims of docs/protocol.md),
// and hostile variants of them. The unit tests prove common/ signs the same format.
import { createHash, createHmac, randomBytes } from 'node:crypto';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

export function signRaw(header, payload, secret, alg = 'sha256') {
  const h = b64url(typeof header === 'string' ? header : JSON.stringify(header));
  const p = b64url(typeof payload === 'string' ? payload : JSON.stringify(payload));
  const sig = createHmac(alg, secret).update(`${h}.${p}`).digest();
  return `${h}.${p}.${b64url(sig)}`;
}

// The public user id (claim uid) defaults to one derived from sub, so one email is one user;
// the room id (claim rid) to one derived from the room name, so one name is one room.
export function uidOf(sub) {
  return `u-${createHash('sha256').update(sub).digest('hex').slice(0, 16)}`;
}

export function ridOf(room) {
  return 1 + (createHash('sha256').update(String(room)).digest().readUInt32BE(0) % 1000000000);
}

export function claims({ sub = 'ann@example.com', name = 'Ann', room = 'lobby', ttl = 60,
  now = Math.floor(Date.now() / 1000), uid = uidOf(sub), rid = ridOf(room), ...extra } = {}) {
  return { iss: 'website', aud: 'chat', sub, uid, name, room, rid, iat: now, exp: now + ttl,
    jti: randomBytes(16).toString('hex'), ...extra };
}

export function mintToken(secret, opts = {}) {
  return signRaw({ alg: 'HS256', typ: 'JWT' }, claims(opts), secret);
}

export function newSecret() {
  return randomBytes(32).toString('hex');
}
