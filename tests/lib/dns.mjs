// A name server of the test's own (dns-packet, UDP on 127.0.0.153:53) and a way to run a
// daemon against it: in its own mount namespace (unshare -m, needs root) whose
// /etc/resolv.conf names only that server. The server starts silent (every lookup blocks for
// the resolver's whole timeout, as a restarting container DNS does) and can be told to answer.
import { spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import dnsPacket from 'dns-packet';

export const DNS_ADDR = '127.0.0.153';

export const canUnshare = () => spawnSync('unshare', ['-m', 'true']).status === 0;

// names: {name: ipv4}. lookupMs: how long one lookup blocks while silent (2 attempts). addr:
// the server's address (one per test file: test files run in parallel).
// Returns {answer(), queries: [..], wrap(bin) -> path of a script that runs bin in the
// namespace, close()}.
export async function startDns(names, { lookupMs = 20000, addr = DNS_ADDR } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'parley-dns-'));
  const resolv = join(dir, 'resolv.conf');
  writeFileSync(resolv, `nameserver ${addr}\noptions timeout:${Math.ceil(lookupMs / 2000)} attempts:2\n`);
  let answering = false;
  const queries = [];
  const s = createSocket('udp4');
  s.on('message', (msg, rinfo) => {
    let q;
    try { q = dnsPacket.decode(msg); } catch { return; }
    queries.push(q.questions.map((x) => `${x.type} ${x.name}`).join(','));
    if (!answering) return;
    const answers = q.questions.filter((x) => x.type === 'A' && names[x.name])
      .map((x) => ({ type: 'A', name: x.name, ttl: 5, data: names[x.name] }));
    const known = q.questions.every((x) => names[x.name]);
    // rcode 3: NXDOMAIN for names we do not serve; NOERROR without data for their AAAA
    s.send(dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_DESIRED
      | (known ? 0 : 3), questions: q.questions, answers }), rinfo.port, rinfo.address);
  });
  await new Promise((res, rej) => { s.once('error', rej); s.bind(53, addr, res); });
  let n = 0;
  return {
    queries,
    lookupMs,
    answer() { answering = true; },
    wrap(bin) {
      const w = join(dir, `in-ns-${n++}`);
      writeFileSync(w, '#!/bin/sh\nexec unshare -m sh -c \'mount --bind "$1" /etc/resolv.conf && exec "$2"\''
        + ` sh "${resolv}" "${bin}"\n`);
      chmodSync(w, 0o755);
      return w;
    },
    close() { s.close(); rmSync(dir, { recursive: true, force: true }); },
  };
}
