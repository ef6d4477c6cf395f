// Parley message formatting: a small, strict subset of Markdown turned into DOM nodes.
//
//   ParleyFormat.parse(text, {names, me}) -> blocks (plain objects; no DOM; unit-tested in node
//                                           by tests/browser/format.test.mjs)
//   ParleyFormat.render(blocks, document) -> DocumentFragment (text nodes and a fixed set of
//                                           elements; never innerHTML)
//   ParleyFormat.isLong(text)             -> whether the page folds it behind "Show more"
//
// What it understands (and nothing else; everything else stays literal text):
//   ```            a line that starts with three backticks opens a code block, a line that is
//                  only three backticks closes it (an unclosed block runs to the end)
//   `code`         inline code (no formatting inside)
//   **strong**     *emphasis*   (the opening mark follows start/space/punctuation and is
//                  followed by a non-space; the closing one the other way round, so 2*3*4 and
//                  snake_case stay as they are)
//   http(s)://...  links; only http: and https:, trailing punctuation is not part of the link;
//                  the page adds rel="noopener noreferrer" and target="_blank"
//   @Name          a mention, when Name (case-insensitive) is one of opts.names, longest first;
//                  `me: true` when it is opts.me (the reader's display name)
//   line breaks    kept as "\n" text (the page styles messages with white-space: pre-wrap, so a
//                  message's textContent is its text without the formatting marks)
'use strict';

(function (root) {
  const FOLD_CHARS = 1200; // messages longer than this many code points fold...
  const FOLD_LINES = 14;   // ...and so do messages with more lines than this
  const MAX_DEPTH = 4;     // nesting of strong/emphasis
  const URL_RE = /^https?:\/\/[^\s<>"'`\u0000-\u001f\u007f]+/i;
  const TRAIL_RE = /[.,;:!?'"\u2019\u201d]+$/;
  const WORD_RE = /[\p{L}\p{N}_]/u;

  function isWord(c) {
    return c !== undefined && c !== '' && WORD_RE.test(c);
  }
  function isSpace(c) {
    return c === undefined || c === '' || /\s/.test(c);
  }

  // A link's end: whitespace ends it; trailing punctuation and an unbalanced ")" are dropped.
  function matchUrl(s, i) {
    const m = URL_RE.exec(s.slice(i, i + 2048));
    if (!m) return null;
    let u = m[0];
    for (;;) {
      const t = u.replace(TRAIL_RE, '');
      let v = t;
      if (v.endsWith(')')) {
        const open = (v.match(/\(/g) || []).length;
        const close = (v.match(/\)/g) || []).length;
        if (close > open) v = v.slice(0, -1);
      }
      if (v === u) break;
      u = v;
    }
    let href;
    try {
      const parsed = new URL(u);
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return null;
      if (!parsed.hostname) return null;
      href = parsed.href;
    } catch (e) {
      return null;
    }
    if (u.length <= 'https://'.length) return null;
    return { text: u, href };
  }

  // A mention at s[i] === '@': the longest known name right after it, followed by a non-word.
  function matchMention(s, i, opts) {
    if (!opts.sorted || !opts.sorted.length) return null;
    if (i > 0 && isWord(s[i - 1])) return null; // an email address, not a mention
    const rest = s.slice(i + 1, i + 1 + opts.maxName).toLowerCase();
    for (const n of opts.sorted) {
      if (rest.startsWith(n.lower) && !isWord(s[i + 1 + n.name.length])) {
        return { name: n.name, text: s.slice(i, i + 1 + n.name.length),
          me: !!opts.meLower && n.lower === opts.meLower };
      }
    }
    return null;
  }

  // Finds the closing mark for an opening one at `from` (inner text starts there).
  function findClose(s, from, mark) {
    let j = from;
    for (;;) {
      j = s.indexOf(mark, j);
      if (j < 0) return -1;
      if (j > from && !isSpace(s[j - 1]) && !isWord(s[j + mark.length]) &&
          !(mark === '*' && s[j + 1] === '*')) return j;
      j += mark.length;
    }
  }

  function inline(s, opts, depth) {
    const out = [];
    let buf = '';
    const flush = () => {
      if (buf) out.push({ t: 'text', v: buf });
      buf = '';
    };
    let i = 0;
    while (i < s.length) {
      const c = s[i];
      if (c === '`') {
        const j = s.indexOf('`', i + 1);
        if (j > i + 1) {
          flush();
          out.push({ t: 'code', v: s.slice(i + 1, j) });
          i = j + 1;
          continue;
        }
      } else if (c === '*' && depth < MAX_DEPTH && !isWord(s[i - 1])) {
        const strong = s[i + 1] === '*';
        const mark = strong ? '**' : '*';
        const from = i + mark.length;
        if (!isSpace(s[from]) && s[from] !== '*') {
          const j = findClose(s, from, mark);
          if (j > from) {
            flush();
            out.push({ t: strong ? 'strong' : 'em', c: inline(s.slice(from, j), opts, depth + 1) });
            i = j + mark.length;
            continue;
          }
        }
      } else if ((c === 'h' || c === 'H') && !isWord(s[i - 1])) {
        const u = matchUrl(s, i);
        if (u) {
          flush();
          out.push({ t: 'link', href: u.href, v: u.text });
          i += u.text.length;
          continue;
        }
      } else if (c === '@') {
        const m = matchMention(s, i, opts);
        if (m) {
          flush();
          out.push({ t: 'mention', name: m.name, v: m.text, me: m.me });
          i += m.text.length;
          continue;
        }
      }
      buf += c;
      i++;
    }
    flush();
    return out;
  }

  function prepare(opts) {
    const o = opts || {};
    const seen = new Set();
    const sorted = [];
    for (const n of (o.names || []).concat(o.me ? [o.me] : [])) {
      if (typeof n !== 'string' || !n) continue;
      const lower = n.toLowerCase();
      if (seen.has(lower)) continue;
      seen.add(lower);
      sorted.push({ name: n, lower });
    }
    sorted.sort((a, b) => b.name.length - a.name.length);
    return { sorted, maxName: sorted.length ? sorted[0].name.length : 0,
      meLower: o.me ? o.me.toLowerCase() : '' };
  }

  // text -> [{type: 'text', inlines: [...]}, {type: 'code', text}]; a block's inlines keep its
  // line breaks as "\n" inside text nodes.
  function parse(text, opts) {
    const o = prepare(opts);
    const blocks = [];
    const lines = String(text).split('\n');
    let para = [];
    let code = null;
    const endPara = () => {
      if (para.length) blocks.push({ type: 'text', inlines: inline(para.join('\n'), o, 0) });
      para = [];
    };
    for (const line of lines) {
      if (code) {
        if (line.trim() === '```') {
          blocks.push({ type: 'code', text: code.join('\n') });
          code = null;
        } else {
          code.push(line);
        }
      } else if (line.startsWith('```')) {
        endPara();
        code = [];
        const after = line.slice(3);
        // "```lang" names a language (ignored); "```code```" on one line is a one-line block
        if (after.length > 3 && after.endsWith('```')) {
          blocks.push({ type: 'code', text: after.slice(0, -3) });
          code = null;
        }
      } else {
        para.push(line);
      }
    }
    if (code) blocks.push({ type: 'code', text: code.join('\n') });
    endPara();
    return blocks;
  }

  function mentions(blocks) {
    const found = [];
    const walk = (list) => {
      for (const n of list) {
        if (n.t === 'mention') found.push(n);
        if (n.c) walk(n.c);
      }
    };
    for (const b of blocks) if (b.inlines) walk(b.inlines);
    return found;
  }

  function renderInline(list, doc, parent) {
    for (const n of list) {
      let e;
      switch (n.t) {
        case 'text': parent.appendChild(doc.createTextNode(n.v)); continue;
        case 'code': e = doc.createElement('code'); e.className = 'fmt-code'; e.textContent = n.v; break;
        case 'strong': e = doc.createElement('strong'); renderInline(n.c, doc, e); break;
        case 'em': e = doc.createElement('em'); renderInline(n.c, doc, e); break;
        case 'link':
          e = doc.createElement('a');
          e.className = 'fmt-link';
          e.href = n.href;
          e.rel = 'noopener noreferrer';
          e.target = '_blank';
          e.textContent = n.v;
          break;
        case 'mention':
          e = doc.createElement('span');
          e.className = 'fmt-mention' + (n.me ? ' is-me' : '');
          e.textContent = n.v;
          break;
        default: continue;
      }
      parent.appendChild(e);
    }
  }

  function render(blocks, doc) {
    const frag = doc.createDocumentFragment();
    blocks.forEach((b, k) => {
      if (b.type === 'code') {
        const pre = doc.createElement('pre');
        pre.className = 'fmt-pre';
        const code = doc.createElement('code');
        code.textContent = b.text;
        pre.appendChild(code);
        frag.appendChild(pre);
      } else {
        const span = doc.createElement('span');
        span.className = 'fmt-text';
        renderInline(b.inlines, doc, span);
        frag.appendChild(span);
      }
      // blocks are separated by a line break, as the text had it
      if (k < blocks.length - 1 && b.type !== 'code' && blocks[k + 1].type !== 'code') {
        frag.appendChild(doc.createTextNode('\n'));
      }
    });
    return frag;
  }

  function isLong(text) {
    let n = 0;
    let lines = 1;
    for (const ch of String(text)) {
      n++;
      if (ch === '\n') lines++;
      if (n > FOLD_CHARS || lines > FOLD_LINES) return true;
    }
    return false;
  }

  const api = { parse, render, mentions, isLong, FOLD_CHARS, FOLD_LINES };
  if (typeof module === 'object' && module && module.exports) module.exports = api;
  else root.ParleyFormat = api;
})(typeof self !== 'undefined' ? self : this);
