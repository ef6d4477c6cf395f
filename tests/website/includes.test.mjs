// website/src keeps a layered structure: no include cycle between its modules (a module is
// x.c with x.h). The review of issue 9 found a cycle of seven (csrf, db, http, page, router,
// session, users); this keeps it from coming back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../lib/proc.mjs';

test('no include cycle between the modules of website/src', () => {
  const dir = join(ROOT, 'website', 'src');
  const files = readdirSync(dir).filter((f) => /\.[ch]$/.test(f));
  const modules = new Set(files.map((f) => f.replace(/\.[ch]$/, '')));
  const edges = new Map([...modules].map((m) => [m, new Set()]));
  for (const f of files) {
    const from = f.replace(/\.[ch]$/, '');
    for (const m of readFileSync(join(dir, f), 'utf8').matchAll(/^#include "([a-z_]+)\.h"/gm)) {
      if (modules.has(m[1]) && m[1] !== from) edges.get(from).add(m[1]);
    }
  }
  // Depth-first search; a back edge is a cycle, reported as its path.
  const state = new Map();
  const stack = [];
  const cycles = [];
  const visit = (m) => {
    state.set(m, 'open');
    stack.push(m);
    for (const n of edges.get(m)) {
      if (state.get(n) === 'open') cycles.push([...stack.slice(stack.indexOf(n)), n].join(' -> '));
      else if (!state.has(n)) visit(n);
    }
    stack.pop();
    state.set(m, 'done');
  };
  for (const m of modules) if (!state.has(m)) visit(m);
  assert.deepEqual(cycles, [], cycles.join('\n'));
  assert.ok(edges.get('http').has('router'), 'the graph was read (http.c includes router.h)');
});
