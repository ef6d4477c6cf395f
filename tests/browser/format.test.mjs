// Unit tests of the message formatter (website/static/format.js) in Node: the page loads the
// same file. What it turns into elements, what it leaves as text, and which links it refuses.
// The DOM side (render) is checked in a real browser by tests/browser/features.test.mjs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const F = require('../../website/static/format.js');

const inl = (text, opts) => {
  const b = F.parse(text, opts);
  assert.equal(b.length, 1, JSON.stringify(b));
  return b[0].inlines;
};

test('plain text stays one text node, line breaks kept', () => {
  assert.deepEqual(inl('hello\nworld'), [{ t: 'text', v: 'hello\nworld' }]);
  assert.deepEqual(inl('<img src=x onerror=alert(1)>'),
    [{ t: 'text', v: '<img src=x onerror=alert(1)>' }]);
});

test('strong, emphasis and inline code', () => {
  assert.deepEqual(inl('a **b** c'), [{ t: 'text', v: 'a ' },
    { t: 'strong', c: [{ t: 'text', v: 'b' }] }, { t: 'text', v: ' c' }]);
  assert.deepEqual(inl('*it*'), [{ t: 'em', c: [{ t: 'text', v: 'it' }] }]);
  assert.deepEqual(inl('run `rm -rf *` now'), [{ t: 'text', v: 'run ' },
    { t: 'code', v: 'rm -rf *' }, { t: 'text', v: ' now' }]);
  assert.deepEqual(inl('**bold *and em***')[0].t, 'strong');
});

test('marks that are not formatting stay literal', () => {
  for (const s of ['2*3*4', 'snake*case*x', '* not em *', 'a ** b ** c', '`', '``', '**', 'a*',
    'file_name_here', '*unclosed', '**unclosed']) {
    const b = F.parse(s);
    const text = JSON.stringify(b);
    assert.ok(!/"t":"(em|strong|code)"/.test(text), `${s} -> ${text}`);
  }
});

test('links: http and https only, trailing punctuation left out', () => {
  assert.deepEqual(inl('see https://example.com/a?b=1.'), [{ t: 'text', v: 'see ' },
    { t: 'link', href: 'https://example.com/a?b=1', v: 'https://example.com/a?b=1' },
    { t: 'text', v: '.' }]);
  assert.deepEqual(inl('(http://x.org/wiki/A_(b))')[1],
    { t: 'link', href: 'http://x.org/wiki/A_(b)', v: 'http://x.org/wiki/A_(b)' });
  assert.equal(inl('(http://x.org/a)')[1].v, 'http://x.org/a');
  for (const s of ['javascript:alert(1)', 'JaVaScRiPt:alert(1)', 'data:text/html,<b>',
    'vbscript:x', 'ftp://example.com', 'http://', 'https:///', 'file:///etc/passwd',
    'xhttps://example.com', '//evil.example']) {
    assert.ok(!JSON.stringify(F.parse(s)).includes('"link"'), s);
  }
  // a link's text is never HTML, and a quote ends it
  assert.equal(inl('https://a.example/"><script>')[0].v, 'https://a.example/');
});

test('mentions: known display names only, longest first, case-insensitive', () => {
  const opts = { names: ['Ann', 'Ann Archer', 'Bob'], me: 'Bob' };
  assert.deepEqual(inl('hi @ann archer!', opts), [{ t: 'text', v: 'hi ' },
    { t: 'mention', name: 'Ann Archer', v: '@ann archer', me: false }, { t: 'text', v: '!' }]);
  assert.deepEqual(inl('@Bob', opts), [{ t: 'mention', name: 'Bob', v: '@Bob', me: true }]);
  assert.deepEqual(inl('@Bobby', opts), [{ t: 'text', v: '@Bobby' }]);
  assert.deepEqual(inl('mail bob@Bob.org', opts), [{ t: 'text', v: 'mail bob@Bob.org' }]);
  assert.deepEqual(inl('@nobody', opts), [{ t: 'text', v: '@nobody' }]);
  assert.equal(F.mentions(F.parse('**@bob** and @Ann', opts)).length, 2);
});

test('fenced code blocks keep their text verbatim', () => {
  const b = F.parse('look:\n```js\nconst a = `x` **1**;\n  <b>\n```\nafter');
  assert.deepEqual(b, [
    { type: 'text', inlines: [{ t: 'text', v: 'look:' }] },
    { type: 'code', text: 'const a = `x` **1**;\n  <b>' },
    { type: 'text', inlines: [{ t: 'text', v: 'after' }] },
  ]);
  assert.deepEqual(F.parse('```\nnever closed *x*'), [{ type: 'code', text: 'never closed *x*' }]);
});

test('long messages fold', () => {
  assert.equal(F.isLong('short'), false);
  assert.equal(F.isLong('x'.repeat(F.FOLD_CHARS + 1)), true);
  assert.equal(F.isLong('a\n'.repeat(F.FOLD_LINES)), true);
  assert.equal(F.isLong('😀'.repeat(F.FOLD_CHARS)), false, 'counted in code points');
});

test('hostile input: huge, deeply nested, or odd, it ends and keeps every character', () => {
  const texts = ['*'.repeat(5000), '**a'.repeat(3000), '`'.repeat(4001), '@'.repeat(4000),
    'https://'.repeat(500), '\u202e\u0301'.repeat(1000), '*a '.repeat(2000) + '*'.repeat(2000)];
  for (const t of texts) {
    const blocks = F.parse(t, { names: ['a'], me: 'a' });
    // every character that is not a formatting mark is still there, in order
    const flat = [];
    const walk = (l) => { for (const n of l) { if (n.v !== undefined) flat.push(n.v); if (n.c) walk(n.c); } };
    for (const b of blocks) (b.inlines ? walk(b.inlines) : flat.push(b.text));
    const kept = flat.join('');
    assert.ok(kept.replace(/[*`]/g, '').length >= t.replace(/[*`]/g, '').length - 10,
      `lost text for ${t.slice(0, 20)}`);
  }
});
