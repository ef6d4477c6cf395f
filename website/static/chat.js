// Parley chat page. Builds the whole chat UI inside <main id="chat" data-room ...> and talks
// to the chat daemon over /ws (docs/protocol.md: token cookie, welcome, history, resume).
//
// Rules this file keeps:
// * Everything that came from the network is inserted with textContent / createTextNode
//   (formatting: format.js builds elements, never HTML), so <img src=x onerror=...> is text.
// * Users are known by their public id (frames carry {id, name}); nobody's email but the
//   reader's own ever reaches the page, and the page shows none.
// * Every message and name is direction-isolated (dir="auto", <bdi>), so right-to-left text or
//   a stray U+202E cannot reorder the words around it.
// * No inline styles or scripts (the Content-Security-Policy forbids them): state is shown
//   with classes and attributes that chat.css styles.
// * Messages are kept by seq (the room's sequence number): each seq is shown once, in order;
//   own messages waiting for the server are kept by client_id and confirmed by the stored
//   frame with the same client_id.
// * Every limit and delay is a named constant below.
'use strict';

(function () {
  const F = window.ParleyFormat;
  const MAX_TEXT = 4000;             // server limit, in Unicode code points
  const COUNTER_FROM = 3500;         // show the length counter from this many code points
  const TYPING_SEND_EVERY_MS = 3000; // send {"type":"typing"} at most this often
  const TYPING_SHOW_MS = 4000;       // how long "X is typing..." stays after the last signal
  const TYPING_FADE_MS = 800;        // its fade-out (chat.css: 0.6 s) before the text is dropped
  const BACKOFF_BASE_MS = 500;       // reconnect delay: random(0, min(cap, base * 2^attempt))
  const BACKOFF_CAP_MS = 15000;
  const RETRY_NOW_FROM_MS = 1500;    // offer "Retry now" when the next attempt is further away
  const TOKEN_TIMEOUT_MS = 15000;    // give up on a hanging token request and retry
  const OPEN_TIMEOUT_MS = 20000;     // give up on a WebSocket that never says welcome
  const ACK_TIMEOUT_MS = 20000;      // a sent message unconfirmed this long: reconnect, re-send
  const REFUSED_RETRY_MS = 1200;     // re-send a message refused as rate_limited/unavailable...
  const REFUSED_RETRY_CAP_MS = 15000; // ...backing off up to this
  const AT_BOTTOM_PX = 48;           // "at the bottom" tolerance for auto-scroll
  const OLDER_AT_PX = 120;           // load older messages when this close to the top
  const PAGE_LIMIT = 50;             // messages per older-history request (server: 1..100)
  const RESUME_LIMIT = 100;          // messages per "after" request while catching up
  const GROUP_GAP_MS = 5 * 60 * 1000; // consecutive messages of one author within this are grouped
  const REJOIN_QUIET_MS = 30000;     // after a reconnect, no "X joined" for who was there before
  const MAX_RENDERED = 3000;         // oldest messages are dropped from the page beyond this
  const SEND_PER_SEC = 4;            // messages sent per second at most, after a burst of
  const SEND_BURST = 8;              // ...this many (the server's default: 5/s, bursts of 20)
  const COMPLETE_MAX = 8;            // names offered by the @mention completion
  const NOTIFY_BODY_MAX = 160;       // characters of a message shown in a notification
  const SEEN_KEY = 'parley.seen.';   // localStorage: + room name -> last seq the reader saw
  const NOTIFY_KEY = 'parley.notify'; // localStorage: 'mentions' | 'all' | 'off'

  const root = document.getElementById('chat');
  if (!root || !root.dataset.room || !F) return;

  const room = root.dataset.room;
  const roomTitle = root.dataset.roomTitle || room;
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = root.dataset.csrf || (meta ? meta.getAttribute('content') : '') || '';
  const me = { id: root.dataset.userId || '', name: root.dataset.userName || '' };
  const baseTitle = document.title;
  const myIds = new Set(me.id ? [me.id] : []); // the reader's public id
  function isMe(id) {
    return !!id && myIds.has(id);
  }

  // ---- small helpers (text only) ----
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  // A name, isolated from the text around it.
  function bdi(name, cls) {
    const b = el('bdi', cls, name);
    b.dir = 'auto';
    return b;
  }
  function clear(e) {
    while (e.firstChild) e.removeChild(e.firstChild);
  }
  function codePoints(s) {
    let n = 0;
    for (const _ of s) n++; // eslint-disable-line no-unused-vars
    return n;
  }
  function newClientId() {
    // crypto.randomUUID needs a secure context; getRandomValues works on plain http too.
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  }
  function sentence(s) {
    return /[.!?]$/.test(s) ? s : s + '.';
  }
  function userOf(frame) {
    const u = frame && typeof frame.user === 'object' && frame.user ? frame.user : {};
    const id = typeof u.id === 'string' || typeof u.id === 'number' ? String(u.id) : '';
    const name = typeof u.name === 'string' && u.name ? u.name : 'someone';
    return { id, name };
  }
  function seqOf(f) {
    return typeof f.seq === 'number' && Number.isSafeInteger(f.seq) && f.seq > 0 ? f.seq : 0;
  }
  function store(key, value) {
    try {
      if (value === null) localStorage.removeItem(key);
      else localStorage.setItem(key, String(value));
    } catch (e) { /* private mode, quota: the feature just forgets */ }
  }
  function load(key) {
    try { return localStorage.getItem(key); } catch (e) { return null; }
  }
  function hidden() {
    return document.visibilityState === 'hidden';
  }

  // ---- build the UI ----
  root.classList.add('chat-ready');
  for (const n of Array.from(root.children)) {
    if (n.tagName !== 'NOSCRIPT') n.remove();
  }

  const head = el('header', 'chat-head');
  const titleBox = el('div', 'chat-titlebox');
  const h1 = el('h1', 'chat-title');
  h1.append(bdi(roomTitle));
  const roomName = el('span', 'chat-roomname', '#' + room);
  titleBox.append(h1, roomName);

  const status = el('p', 'chat-status');
  status.setAttribute('role', 'status');
  const statusDot = el('span', 'chat-status-dot');
  statusDot.setAttribute('aria-hidden', 'true');
  const statusText = el('span', 'chat-status-text');
  const statusCountdown = el('span', 'chat-status-countdown');
  statusCountdown.setAttribute('aria-hidden', 'true');
  status.append(statusDot, statusText, statusCountdown);
  const retryNow = el('button', 'chat-retry', 'Retry now');
  retryNow.type = 'button';
  retryNow.hidden = true;

  const notifyBtn = el('button', 'chat-notify');
  notifyBtn.type = 'button';
  notifyBtn.setAttribute('aria-live', 'polite');

  const membersToggle = el('button', 'chat-members-toggle');
  membersToggle.type = 'button';
  membersToggle.setAttribute('aria-expanded', 'false');
  membersToggle.setAttribute('aria-controls', 'chat-members');
  head.append(titleBox, status, retryNow, notifyBtn, membersToggle);

  const banner = el('div', 'chat-banner');
  banner.setAttribute('role', 'alert');
  banner.hidden = true;

  const body = el('div', 'chat-body');
  const logWrap = el('section', 'chat-logwrap');
  logWrap.setAttribute('aria-label', 'Messages');
  const log = el('ol', 'chat-log');
  log.id = 'chat-log';
  log.setAttribute('role', 'log');
  log.setAttribute('aria-live', 'polite');
  log.setAttribute('aria-relevant', 'additions');
  log.setAttribute('aria-label', 'Messages in ' + roomTitle);
  log.tabIndex = 0;
  const top = el('li', 'chat-top');
  top.setAttribute('aria-live', 'off');
  const empty = el('li', 'chat-empty', 'Loading the conversation\u2026');
  log.append(top, empty);
  const newBelow = el('button', 'chat-newbelow', 'New messages \u2193');
  newBelow.type = 'button';
  newBelow.hidden = true;
  logWrap.append(log, newBelow);

  const members = el('aside', 'chat-members');
  members.id = 'chat-members';
  members.setAttribute('aria-label', 'Online now');
  const membersHead = el('h2', 'chat-members-head', 'Online now');
  const membersList = el('ul', 'chat-members-list');
  members.append(membersHead, membersList);
  body.append(logWrap, members);

  const form = el('form', 'chat-compose');
  form.noValidate = true;
  const label = el('label', 'visually-hidden', 'Message');
  label.htmlFor = 'chat-input';
  const input = el('textarea', 'chat-input');
  input.id = 'chat-input';
  input.name = 'text';
  input.rows = 1;
  input.dir = 'auto';
  input.placeholder = 'Message #' + room;
  input.setAttribute('autocomplete', 'off');
  input.setAttribute('aria-describedby', 'chat-hint chat-counter chat-error');
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-controls', 'chat-complete');
  input.setAttribute('aria-expanded', 'false');
  input.enterKeyHint = 'send';
  const complete = el('ul', 'chat-complete');
  complete.id = 'chat-complete';
  complete.setAttribute('role', 'listbox');
  complete.setAttribute('aria-label', 'People to mention');
  complete.hidden = true;
  const send = el('button', 'chat-send', 'Send');
  send.type = 'submit';
  const metaRow = el('div', 'chat-compose-meta');
  const typing = el('p', 'chat-typing');
  typing.setAttribute('aria-live', 'polite');
  const hint = el('span', 'chat-hint', 'Enter to send \u00b7 Shift+Enter for a new line');
  hint.id = 'chat-hint';
  const counter = el('span', 'chat-counter');
  counter.id = 'chat-counter';
  counter.setAttribute('aria-live', 'polite');
  metaRow.append(typing, hint, counter);
  const error = el('p', 'chat-error');
  error.id = 'chat-error';
  error.setAttribute('role', 'alert');
  form.append(label, complete, input, send, metaRow, error);

  root.append(head, banner, body, form);

  // ---- state ----
  let ws = null;
  let generation = 0;       // bumps on every connect attempt; stale sockets are ignored
  let attempt = 0;          // consecutive failed attempts, for backoff
  let state = 'connecting'; // connecting | online | reconnecting | offline | stopped
  let retryTimer = null;
  let countdownTimer = null;
  let retryAt = 0;
  let openTimer = null;
  let flushTimer = null;
  let ackTimer = null;
  let bucket = SEND_BURST;  // client-side send tokens (see takeSendToken)
  let bucketAt = Date.now();
  let stopped = false;      // logged out, banned, room gone: no more reconnects
  let everOnline = false;
  let lastTypingSent = 0;
  const online = new Map(); // user id -> name (only while connected: see renderMembers)
  let wasOnline = new Set(); // who was here when the connection dropped (see onJoin)
  let wasOnlineTimer = null;
  const typers = new Map(); // user id -> {name, timer}
  let typingFadeTimer = null;
  const known = new Map();  // user id -> display name of everyone seen (for @mentions)

  // The conversation: one <li> per seq, in seq order, own unconfirmed messages after them.
  const bySeq = new Map();  // seq -> li
  let oldestSeq = 0;        // smallest seq shown (0: none)
  let newestSeq = 0;        // largest seq shown: resume from here after a reconnect
  let hasOlder = false;     // the server said older messages exist
  let loadingOlder = false;
  let historyReady = false; // the first history frame of this connection has been handled
  let catchingUp = false;   // an "after" request of the resume is outstanding
  let resumeSince = 0;      // the since= of this connection (0: none)

  // Own messages not yet confirmed, in the order they were written.
  const pending = new Map(); // client_id -> {text, li, sent, refusals}
  const outbox = [];        // client_ids waiting to be sent, in order
  let refusedUntil = 0;     // after rate_limited/unavailable: send nothing before this

  // Unread and attention.
  let unread = 0;           // messages of others that arrived while the tab was hidden
  let unreadMention = false;
  let dividerArmed = false; // the next message of someone else gets the "new messages" line
  let seenSeq = Number(load(SEEN_KEY + room)) || 0; // last seq the reader saw, from last time
  const divider = el('li', 'chat-divider');
  divider.setAttribute('role', 'separator');
  divider.append(el('span', 'chat-divider-text', 'New messages'));
  let notifyMode = load(NOTIFY_KEY) || 'mentions';

  // ---- connection state badge ----
  function setState(s, text) {
    state = s;
    root.dataset.state = s;
    status.dataset.state = s;
    const labels = {
      connecting: 'Connecting\u2026',
      online: 'Online',
      reconnecting: 'Reconnecting\u2026',
      offline: 'Offline',
      stopped: 'Disconnected',
    };
    statusText.textContent = text || labels[s] || s;
    if (s !== 'reconnecting') {
      statusCountdown.textContent = '';
      retryNow.hidden = true;
    }
    renderMembers();
    updateSendable();
    for (const p of pending.values()) markPending(p);
  }

  function showBanner(text, link, linkText) {
    clear(banner);
    banner.append(el('span', 'chat-banner-text', text));
    if (link) {
      banner.append(' ');
      const a = el('a', 'chat-banner-link', linkText);
      a.href = link;
      banner.append(a);
    }
    banner.hidden = false;
  }
  function hideBanner() {
    banner.hidden = true;
    clear(banner);
  }

  function tickCountdown() {
    const left = retryAt - Date.now();
    const s = Math.max(0, Math.ceil(left / 1000));
    statusCountdown.textContent = s > 0 ? ' in ' + s + ' s' : '';
    retryNow.hidden = !(state === 'reconnecting' && left > RETRY_NOW_FROM_MS);
  }

  // Full-jitter exponential backoff (AWS architecture blog, "Exponential Backoff And Jitter").
  function scheduleReconnect() {
    if (stopped) return;
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    if (navigator.onLine === false) {
      setState('offline', 'Offline \u2014 waiting for the network');
      return;
    }
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * Math.pow(2, attempt));
    const delay = Math.floor(Math.random() * ceiling);
    attempt++;
    retryAt = Date.now() + delay;
    setState('reconnecting');
    tickCountdown();
    countdownTimer = setInterval(tickCountdown, 500);
    retryTimer = setTimeout(connect, delay);
  }

  function stop(text, link, linkText) {
    stopped = true;
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    clearTimeout(openTimer);
    clearTimeout(ackTimer);
    generation++;
    if (ws) {
      try { ws.close(1000, 'stopped'); } catch (e) { /* already closed */ }
      ws = null;
    }
    online.clear();
    setState('stopped');
    showBanner(text, link, linkText);
    updateSendable();
  }

  // POST /api/rooms/NAME/token sets the HttpOnly cookie parley_ws_NAME (Path=/ws) that the
  // WebSocket handshake carries, and answers ws_url. The token in the JSON is not used here:
  // it never goes into a URL (it would end up in logs).
  async function fetchToken(gen) {
    const ctl = new AbortController();
    const t = setTimeout(() => ctl.abort(), TOKEN_TIMEOUT_MS);
    let res;
    try {
      res = await fetch('/api/rooms/' + encodeURIComponent(room) + '/token', {
        method: 'POST',
        credentials: 'same-origin',
        cache: 'no-store',
        headers: { 'X-CSRF-Token': csrf, Accept: 'application/json' },
        signal: ctl.signal,
      });
    } catch (e) {
      return { retry: true };
    } finally {
      clearTimeout(t);
    }
    if (gen !== generation) return { stale: true };
    let data = null;
    try { data = await res.json(); } catch (e) { data = null; }
    if (res.ok && data) {
      const wsUrl = typeof data.ws_url === 'string' && /^\/ws\?room=[a-z0-9-]+$/.test(data.ws_url)
        ? data.ws_url : '/ws?room=' + encodeURIComponent(room);
      return { wsUrl };
    }
    const msg = data && typeof data.message === 'string' ? data.message : '';
    const code = data && typeof data.error === 'string' ? data.error : '';
    if (res.status === 401) {
      return { fatal: true, text: 'You are logged out, so the chat stopped.',
        link: '/login?next=' + encodeURIComponent(location.pathname), linkText: 'Log in again' };
    }
    if (res.status === 403) {
      if (/csrf/i.test(code)) {
        return { fatal: true, text: 'Your session changed in another tab, so the chat stopped.',
          link: location.pathname, linkText: 'Reload the page' };
      }
      return { fatal: true,
        text: (msg ? sentence(msg) : 'Your account is banned.') + ' You cannot chat here.',
        link: '/rooms', linkText: 'Back to rooms' };
    }
    if (res.status === 404) {
      return { fatal: true, text: 'This room no longer exists.', link: '/rooms',
        linkText: 'See the other rooms' };
    }
    return { retry: true };
  }

  async function connect() {
    if (stopped) return;
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    clearTimeout(openTimer);
    const gen = ++generation;
    if (ws) {
      try { ws.close(1000, 'reconnecting'); } catch (e) { /* ignore */ }
      ws = null;
    }
    if (navigator.onLine === false) {
      setState('offline', 'Offline \u2014 waiting for the network');
      return;
    }
    setState(everOnline ? 'reconnecting' : 'connecting');
    retryNow.hidden = true;
    const t = await fetchToken(gen);
    if (gen !== generation || stopped || t.stale) return;
    if (t.fatal) {
      stop(t.text, t.link, t.linkText);
      return;
    }
    if (t.retry) {
      scheduleReconnect();
      return;
    }
    // Resume after the newest message shown; a fresh page asks for the latest ones.
    resumeSince = newestSeq;
    historyReady = false;
    catchingUp = false;
    loadingOlder = false;
    const url = (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host +
      t.wsUrl + (resumeSince > 0 ? '&since=' + resumeSince : '');
    let sock;
    try {
      sock = new WebSocket(url);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    openTimer = setTimeout(() => {
      if (gen === generation && state !== 'online') {
        try { sock.close(); } catch (e) { /* ignore */ }
      }
    }, OPEN_TIMEOUT_MS);
    sock.onmessage = (ev) => {
      if (gen !== generation) return;
      let f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (f && typeof f === 'object') handleFrame(f);
    };
    sock.onclose = (ev) => {
      if (gen !== generation) return;
      clearTimeout(openTimer);
      ws = null;
      lostConnection(ev.code);
    };
    sock.onerror = () => { /* onclose follows and handles it */ };
  }

  // Moderation (docs/protocol.md "Close codes"): each of these ends the chat for good on this
  // page, with a banner that says why; never a reconnect (a new token would be refused too).
  function moderationStop(code) {
    const login = '/login?next=' + encodeURIComponent(location.pathname);
    switch (code) {
      case 4001: case 'logged_out':
        return ['You logged out, so the chat stopped.', login, 'Log in again'];
      case 4003: case 'banned':
        return ['Your account is banned. You cannot chat here.', '/rooms', 'Back to rooms'];
      case 4004: case 'room_deleted':
        return ['This room no longer exists: it was deleted.', '/rooms', 'See the other rooms'];
      case 4005: case 'removed':
        return ['You were removed from this room, so you cannot chat here any more.', '/rooms',
          'Back to rooms'];
      default:
        return null;
    }
  }

  function lostConnection(code) {
    const mod = moderationStop(code);
    if (mod) {
      clearTimeout(flushTimer);
      clearTypers();
      stop(mod[0], mod[1], mod[2]);
      return;
    }
    clearTimeout(flushTimer);
    clearTimeout(ackTimer);
    clearTimeout(wasOnlineTimer);
    for (const k of online.keys()) wasOnline.add(k);
    online.clear();
    clearTypers();
    // A message sent but not confirmed may or may not have been stored: it goes back to the
    // front of the queue and is sent again with the same client_id after the resume, which
    // either shows it (stored before: the server answers with the stored frame) or stores it.
    requeueInflight();
    if (code === 1008) showError('The server closed the connection because of too many messages.');
    if (stopped) return;
    scheduleReconnect();
  }

  function requeueInflight() {
    const inflight = [];
    for (const [cid, p] of pending) {
      if (p.sent) {
        p.sent = false;
        inflight.push(cid);
      }
      markPending(p);
    }
    outbox.unshift(...inflight.filter((c) => !outbox.includes(c)));
    sortOutbox();
  }

  // The outbox keeps the order in which messages were written (pending's insertion order).
  function sortOutbox() {
    const order = Array.from(pending.keys());
    outbox.sort((a, b) => order.indexOf(a) - order.indexOf(b));
  }

  // ---- frames ----
  function handleFrame(f) {
    switch (f.type) {
      case 'welcome': return onWelcome(f);
      case 'history': return onHistory(f);
      case 'join': return onJoin(f);
      case 'leave': return onLeave(f);
      case 'message': return onLive(f);
      case 'typing': return onTyping(f);
      case 'error': return onError(f);
      default: return undefined;
    }
  }

  function onWelcome(f) {
    clearTimeout(openTimer);
    if (f.you && typeof f.you === 'object') {
      if (typeof f.you.id === 'string' || typeof f.you.id === 'number') me.id = String(f.you.id);
      if (me.id) myIds.add(me.id);
      if (typeof f.you.name === 'string' && f.you.name) me.name = f.you.name;
    }
    online.clear();
    if (Array.isArray(f.members)) {
      for (const m of f.members) {
        const u = userOf({ user: m });
        if (u.id) {
          online.set(u.id, u.name);
          known.set(u.id, u.name);
        }
      }
    }
    if (me.id) {
      online.set(me.id, me.name);
      known.set(me.id, me.name);
    }
    if (everOnline) {
      // The others reconnect too, each announced by the server as a join: stay quiet about
      // those who were here before, for a while.
      for (const k of online.keys()) wasOnline.delete(k);
      clearTimeout(wasOnlineTimer);
      wasOnlineTimer = setTimeout(() => { wasOnline = new Set(); }, REJOIN_QUIET_MS);
    }
    everOnline = true;
    attempt = 0;
    hideBanner();
    setState('online');
    // A server without history (no history frame follows) must not hold the outbox forever.
    const last = typeof f.last_seq === 'number' && f.last_seq >= 0 ? f.last_seq : null;
    if (last === null) {
      historyReady = true;
      renderTop();
      flushOutbox();
    }
  }

  // The history frame right after welcome (no before/after), an older page (before), or the
  // next page of a resume (after).
  function onHistory(f) {
    const list = Array.isArray(f.messages) ? f.messages.filter((m) => m && typeof m === 'object')
      : [];
    const more = f.more === true;
    if (typeof f.before === 'number') {
      loadingOlder = false;
      hasOlder = more;
      keepPlace(() => {
        for (const m of list) addMessage(m, { history: true });
        renderTop();
      });
      fillUp();
      return;
    }
    const first = !historyReady;
    const initial = first && resumeSince === 0;
    const wasBottom = atBottom();
    for (const m of list) addMessage(m, { history: true });
    if (initial) {
      hasOlder = more;
      placeDividerOnOpen();
    }
    historyReady = true;
    if (more && !initial) {
      // more missed messages than one frame holds: continue after the newest we have
      catchingUp = true;
      sendFrame({ type: 'history', after: newestSeq, limit: RESUME_LIMIT });
    } else {
      catchingUp = false;
    }
    renderTop();
    if (initial) scrollOnOpen();
    else if (wasBottom) scrollToBottom();
    if (initial) fillUp();
    markSeen();
    if (!catchingUp) flushOutbox();
  }

  function onLive(f) {
    addMessage(f, { history: false });
  }

  function onJoin(f) {
    const u = userOf(f);
    if (!u.id) return;
    const had = online.has(u.id);
    online.set(u.id, u.name);
    known.set(u.id, u.name);
    renderMembers();
    if (!had && !isMe(u.id) && !wasOnline.delete(u.id)) personNotice(u.name, ' joined');
  }

  function onLeave(f) {
    const u = userOf(f);
    if (!u.id || isMe(u.id)) return;
    const had = online.delete(u.id);
    stopTyping(u.id);
    renderMembers();
    if (had) personNotice(u.name, ' left');
  }

  function onTyping(f) {
    const u = userOf(f);
    if (!u.id || isMe(u.id)) return;
    const old = typers.get(u.id);
    if (old) clearTimeout(old.timer);
    typers.set(u.id, { name: u.name, timer: setTimeout(() => stopTyping(u.id), TYPING_SHOW_MS) });
    renderTyping();
  }

  function stopTyping(k) {
    const t = typers.get(k);
    if (!t) return;
    clearTimeout(t.timer);
    typers.delete(k);
    renderTyping();
  }
  function clearTypers() {
    for (const t of typers.values()) clearTimeout(t.timer);
    typers.clear();
    renderTyping();
  }

  function renderTyping() {
    const names = Array.from(typers.values(), (t) => t.name);
    if (names.length) {
      clear(typing);
      if (names.length === 1) typing.append(bdi(names[0]), ' is typing\u2026');
      else if (names.length === 2) typing.append(bdi(names[0]), ' and ', bdi(names[1]), ' are typing\u2026');
      else typing.append('Several people are typing\u2026');
      typing.classList.add('is-visible');
    } else {
      // keep the last text while it fades out (the class drives the CSS transition), then drop
      // it, or screen readers would still find it
      typing.classList.remove('is-visible');
      clearTimeout(typingFadeTimer);
      typingFadeTimer = setTimeout(() => {
        if (!typing.classList.contains('is-visible')) clear(typing);
      }, TYPING_FADE_MS);
    }
  }

  // The member list shows who is here only while the badge says online; otherwise it says
  // that it does not know (so the two never disagree).
  function renderMembers() {
    clear(membersList);
    const connected = state === 'online';
    const list = connected ? Array.from(online, ([id, name]) => ({ id, name })) : [];
    list.sort((a, b) => (isMe(a.id) ? -1 : isMe(b.id) ? 1 :
      a.name.localeCompare(b.name)));
    for (const m of list) {
      const li = el('li', 'chat-member');
      li.dataset.userId = m.id;
      const dot = el('span', 'chat-member-dot');
      dot.setAttribute('aria-hidden', 'true');
      li.append(dot, bdi(m.name, 'chat-member-name'));
      if (isMe(m.id)) {
        li.classList.add('is-me');
        li.append(el('span', 'chat-member-you', '(you)'));
      }
      membersList.append(li);
    }
    if (!list.length) {
      membersList.append(el('li', 'chat-member-none', connected ? 'Nobody' : 'Not connected'));
    }
    const n = list.length;
    membersToggle.textContent = connected ? n + ' online' : 'Members';
    membersHead.textContent = connected ? 'Online now (' + n + ')' : 'Online now';
  }

  function errorText(code, message) {
    switch (code) {
      case 'too_long':
        return 'That message is too long for the server. Shorten it, then send again.';
      case 'rate_limited':
        return 'You are sending messages quickly: the rest follow in a moment.';
      case 'unavailable':
        return 'The server cannot store messages right now: yours are kept and sent when it can.';
      case 'bad_request':
        return 'The server did not accept that' + (message ? ': ' + message : '.');
      default:
        return message ? sentence(message) : 'Something went wrong (' + (code || 'error') + ').';
    }
  }

  // An error frame. One that names a client_id concerns that message; one that does not
  // concerns the message in flight (only one is in flight at a time, see flushOutbox) or,
  // with none in flight, a history request.
  // * rate_limited / unavailable: the message stays queued ("Not sent yet") and is sent again,
  //   as itself and in its place, a little later: never merged with another.
  // * any other refusal (too long, bad request): its bubble goes and its text goes back into
  //   the box, since sending it again would fail again.
  function onError(f) {
    const code = typeof f.code === 'string' ? f.code : '';
    const message = typeof f.message === 'string' ? f.message : '';
    const mod = moderationStop(code);
    if (mod) {
      // (the pending messages stay on screen, marked, so their text is not lost)
      stop(mod[0], mod[1], mod[2]);
      return;
    }
    let cid = typeof f.client_id === 'string' && pending.has(f.client_id) ? f.client_id : null;
    if (!cid) {
      for (const [k, p] of pending) {
        if (p.sent) { cid = k; break; }
      }
    }
    if (!cid) {
      if (loadingOlder || catchingUp) {
        // a history request was refused (a busy server): try again shortly
        const older = loadingOlder;
        loadingOlder = false;
        setTimeout(() => {
          if (older) maybeLoadOlder();
          else if (catchingUp && wsOpen()) {
            sendFrame({ type: 'history', after: newestSeq, limit: RESUME_LIMIT });
          }
        }, REFUSED_RETRY_MS);
        return;
      }
      if (code === 'rate_limited' || code === 'unavailable') return; // (a typing signal)
      showError(errorText(code, message));
      return;
    }
    const p = pending.get(cid);
    clearTimeout(ackTimer);
    if (code === 'rate_limited' || code === 'unavailable') {
      p.sent = false;
      p.refusals = (p.refusals || 0) + 1;
      if (!outbox.includes(cid)) outbox.unshift(cid);
      sortOutbox();
      markPending(p, code);
      bucket = 0;
      const wait = Math.min(REFUSED_RETRY_CAP_MS, REFUSED_RETRY_MS * Math.pow(2, p.refusals - 1));
      refusedUntil = Date.now() + wait;
      if (code === 'unavailable') showError(errorText(code, message));
      clearTimeout(flushTimer);
      flushTimer = setTimeout(flushOutbox, wait);
      return;
    }
    pending.delete(cid);
    const i = outbox.indexOf(cid);
    if (i >= 0) outbox.splice(i, 1);
    if (p.li) removeMessageLi(p.li);
    const cur = input.value;
    input.value = cur.trim() ? cur + '\n' + p.text : p.text;
    updateCounter();
    showError(errorText(code, message));
    flushOutbox();
  }

  function showError(text) {
    error.textContent = text;
    error.classList.add('is-visible');
  }
  function clearError() {
    error.textContent = '';
    error.classList.remove('is-visible');
  }

  // ---- the message log ----
  function atBottom() {
    return log.scrollHeight - log.scrollTop - log.clientHeight <= AT_BOTTOM_PX;
  }
  function scrollToBottom() {
    log.scrollTop = log.scrollHeight;
    newBelow.hidden = true;
  }
  function scrollOnOpen() {
    if (divider.parentNode) {
      log.scrollTop = Math.max(0, divider.offsetTop - log.offsetTop - log.clientHeight / 3);
      newBelow.hidden = atBottom();
    } else {
      scrollToBottom();
    }
  }

  function renderTop() {
    clear(top);
    top.className = 'chat-top';
    if (!historyReady && !bySeq.size) return;
    if (loadingOlder) {
      top.classList.add('is-loading');
      top.append('Loading older messages\u2026');
    } else if (hasOlder) {
      const b = el('button', 'chat-older', 'Show older messages');
      b.type = 'button';
      b.addEventListener('click', maybeLoadOlder);
      top.append(b);
    } else if (bySeq.size) {
      top.classList.add('is-start');
      top.append('This is the beginning of the conversation.');
    }
    if (historyReady && empty.parentNode) {
      if (log.querySelector('.msg, .chat-notice')) empty.remove();
      else empty.textContent = 'No messages yet. Say hello!';
    }
  }

  // The reader is at the top (or the log does not fill the screen): load the next older page.
  function fillUp() {
    requestAnimationFrame(() => {
      if (log.scrollTop <= OLDER_AT_PX) maybeLoadOlder();
    });
  }

  function maybeLoadOlder() {
    if (!hasOlder || loadingOlder || !historyReady || catchingUp || !wsOpen() || !oldestSeq) {
      return;
    }
    loadingOlder = true;
    keepPlace(renderTop);
    sendFrame({ type: 'history', before: oldestSeq, limit: PAGE_LIMIT });
  }

  // Older messages go in above what is shown, and the reader's view does not move: what is
  // below the change keeps its distance from the bottom of the log.
  function keepPlace(fn) {
    const before = log.scrollHeight - log.scrollTop;
    fn();
    log.scrollTop = log.scrollHeight - before;
  }

  // Where a confirmed message with `seq` goes: before the shown message with the next larger
  // seq, else before the first pending one (own messages not confirmed stay last), else last.
  function placeFor(seq) {
    let after = null;
    let afterSeq = Infinity;
    for (const s of bySeq.keys()) {
      if (s > seq && s < afterSeq) {
        afterSeq = s;
        after = bySeq.get(s);
      }
    }
    return after || log.querySelector('.msg-pending');
  }

  // A stored message (live or from history), shown once by seq; an own pending message with
  // its client_id is the same message, confirmed.
  function addMessage(f, { history }) {
    if (typeof f.text !== 'string') return;
    const seq = seqOf(f);
    const u = userOf(f);
    if (u.id) known.set(u.id, u.name);
    const cid = typeof f.client_id === 'string' ? f.client_id : '';
    const p = cid ? pending.get(cid) : null;
    // A frame with the client_id of an own pending message is that message (client_ids are
    // random 128-bit values only this page knows until the server stores them).
    if (p) {
      confirm(cid, p);
    }
    if (!history) stopTyping(u.id);
    if (seq && bySeq.has(seq)) return;
    const own = isMe(u.id);
    const li = buildMessage({ seq, id: f.id, clientId: cid, userId: u.id, name: u.name,
      text: f.text, ts: f.ts, own });
    const stick = atBottom();
    if (empty.parentNode) empty.remove();
    const beforeNode = seq ? placeFor(seq) : log.querySelector('.msg-pending');
    log.insertBefore(li, beforeNode);
    if (seq) {
      bySeq.set(seq, li);
      if (!oldestSeq || seq < oldestSeq) oldestSeq = seq;
      if (seq > newestSeq) newestSeq = seq;
    }
    regroup(li);
    if (li.nextElementSibling) regroup(li.nextElementSibling);
    trim();
    if (history) return;
    // live
    if (!own) attention(li, f, u);
    if (stick || own) scrollToBottom();
    else newBelow.hidden = false;
    markSeen();
  }

  function confirm(cid, p) {
    pending.delete(cid);
    const i = outbox.indexOf(cid);
    if (i >= 0) outbox.splice(i, 1);
    if (p.li) removeMessageLi(p.li);
    if (p.sent) {
      clearTimeout(ackTimer);
      // the next message may go
      clearTimeout(flushTimer);
      flushTimer = setTimeout(flushOutbox, 0);
    }
    if (!pending.size && error.classList.contains('is-visible') &&
        /quickly|cannot store/.test(error.textContent)) clearError();
  }

  function trim() {
    while (bySeq.size > MAX_RENDERED) {
      const li = bySeq.get(oldestSeq);
      bySeq.delete(oldestSeq);
      if (li) li.remove();
      hasOlder = true;
      let next = Infinity;
      for (const s of bySeq.keys()) if (s < next) next = s;
      oldestSeq = next === Infinity ? 0 : next;
    }
  }

  // A message right after one of the same author, a few minutes apart at most, is shown as
  // part of the same group (no repeated name and time).
  function regroup(li) {
    if (!li.classList.contains('msg')) return;
    const prev = li.previousElementSibling;
    const ts = Number(li.dataset.ts);
    const grouped = !!prev && prev.classList.contains('msg') &&
      prev.dataset.author === li.dataset.author && !!li.dataset.author &&
      ts - Number(prev.dataset.ts) < GROUP_GAP_MS && ts >= Number(prev.dataset.ts);
    li.classList.toggle('msg-cont', grouped);
  }

  // "X joined" / "X left": the name is isolated, so its direction cannot leak into the words.
  function personNotice(name, rest) {
    const li = el('li', 'chat-notice');
    li.append(bdi(name, 'chat-notice-name'), rest);
    appendNotice(li);
  }
  function appendNotice(li) {
    const stick = atBottom();
    if (empty.parentNode) empty.remove();
    log.insertBefore(li, log.querySelector('.msg-pending'));
    if (stick) scrollToBottom();
  }

  function fmtTime(d) {
    const now = new Date();
    const sameDay = d.toDateString() === now.toDateString();
    const opts = sameDay ? { hour: '2-digit', minute: '2-digit' }
      : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' };
    return d.toLocaleString([], opts);
  }

  function mentionNames() {
    return Array.from(new Set(known.values()));
  }

  function buildMessage(m) {
    const li = el('li', 'msg ' + (m.own ? 'msg-own' : 'msg-other'));
    const d = new Date(typeof m.ts === 'number' && isFinite(m.ts) ? m.ts : Date.now());
    const metaLine = el('div', 'msg-meta');
    const who = m.own ? el('span', 'msg-author', 'You') : bdi(m.name, 'msg-author');
    if (m.own) who.setAttribute('aria-label', 'You (' + m.name + ')');
    const time = el('time', 'msg-time', fmtTime(d));
    time.dateTime = d.toISOString();
    time.title = d.toLocaleString();
    metaLine.append(who, time);
    const text = el('div', 'msg-text');
    text.dir = 'auto';
    const blocks = F.parse(m.text, { names: mentionNames(), me: me.name });
    text.append(F.render(blocks, document));
    li.append(metaLine, text);
    if (!m.own && F.mentions(blocks).some((x) => x.me)) li.classList.add('msg-mention');
    if (F.isLong(m.text)) {
      li.classList.add('msg-long', 'is-folded');
      const more = el('button', 'msg-more', 'Show more');
      more.type = 'button';
      more.setAttribute('aria-expanded', 'false');
      more.addEventListener('click', () => {
        const folded = li.classList.toggle('is-folded');
        more.textContent = folded ? 'Show more' : 'Show less';
        more.setAttribute('aria-expanded', folded ? 'false' : 'true');
      });
      li.append(more);
    }
    if (m.seq) li.dataset.seq = String(m.seq);
    if (m.id !== undefined && m.id !== null) li.dataset.id = String(m.id);
    if (m.clientId) li.dataset.clientId = m.clientId;
    li.dataset.author = m.userId || '';
    li.dataset.ts = String(d.getTime());
    return li;
  }

  function removeMessageLi(li) {
    const next = li.nextElementSibling;
    li.remove();
    if (next) regroup(next);
    if (historyReady && !log.querySelector('.msg, .chat-notice')) {
      empty.textContent = 'No messages yet. Say hello!';
      log.append(empty);
    }
  }

  // An own message not confirmed yet says what is happening to it.
  function markPending(p, why) {
    if (!p.li) return;
    p.li.classList.add('msg-pending');
    let s = p.li.querySelector('.msg-state');
    if (!s) {
      s = el('span', 'msg-state');
      p.li.append(s);
    }
    if (why) p.why = why;
    if (stopped) s.textContent = 'Not sent';
    else if (p.sent) s.textContent = 'Sending\u2026';
    else if (state !== 'online') s.textContent = 'Not sent yet \u2014 will send when reconnected';
    else if (p.why === 'unavailable') s.textContent = 'Not sent yet \u2014 the server is busy, trying again';
    else if (p.why === 'rate_limited') s.textContent = 'Not sent yet \u2014 sending in a moment';
    else s.textContent = 'Waiting to send\u2026';
  }

  // ---- unread, divider, notifications ----
  function markSeen() {
    if (hidden() || !newestSeq) return;
    if (newestSeq !== seenSeq || load(SEEN_KEY + room) === null) {
      seenSeq = newestSeq;
      store(SEEN_KEY + room, seenSeq);
    }
    reportRead();
  }

  // The server keeps a member's read marker for the unread counts on /rooms
  // (POST /api/rooms/NAME/read {"seq"}; it never moves backwards). At most one request in
  // flight and one every READ_REPORT_MS; a non-member's 404 ends the reports for this page.
  const READ_REPORT_MS = 2000;
  let readSent = 0, readBusy = false, readTimer = null, readOff = false;
  function reportRead() {
    if (readOff || readBusy || seenSeq <= readSent) return;
    const wait = READ_REPORT_MS - (Date.now() - (reportRead.at || 0));
    if (wait > 0) {
      if (!readTimer) readTimer = setTimeout(() => { readTimer = null; reportRead(); }, wait);
      return;
    }
    const seq = seenSeq;
    readBusy = true;
    reportRead.at = Date.now();
    fetch('/api/rooms/' + encodeURIComponent(room) + '/read', {
      method: 'POST',
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'X-CSRF-Token': csrf, 'Content-Type': 'application/json' },
      body: JSON.stringify({ seq: seq }),
    }).then((res) => {
      if (res.ok) readSent = Math.max(readSent, seq);
      else if (res.status === 404) readOff = true;
    }).catch(() => {}).finally(() => {
      readBusy = false;
      if (seenSeq > readSent && !readOff) reportRead();
    });
  }

  // On open: the line goes before the first message of someone else that the reader has not
  // seen (by the seq stored last time). A stored seq beyond the room's is from a deleted room
  // of the same name: ignored.
  function placeDividerOnOpen() {
    if (seenSeq > newestSeq) seenSeq = 0; // (then markSeen stores this room's)
    if (!seenSeq || seenSeq === newestSeq) return;
    const seqs = Array.from(bySeq.keys()).sort((a, b) => a - b);
    for (const s of seqs) {
      const li = bySeq.get(s);
      if (s > seenSeq && !li.classList.contains('msg-own')) {
        putDivider(li);
        return;
      }
    }
  }
  function putDivider(li) {
    log.insertBefore(divider, li);
    regroup(li); // (the line ends a group: the name shows again)
  }

  function attention(li, f, u) {
    const mention = li.classList.contains('msg-mention');
    if (hidden()) {
      if (dividerArmed) {
        dividerArmed = false;
        putDivider(li);
      }
      unread++;
      if (mention) unreadMention = true;
      renderTitle();
    }
    notify(f, u, mention);
  }

  function renderTitle() {
    document.title = unread ? '(' + unread + (unreadMention ? '!' : '') + ') ' + baseTitle
      : baseTitle;
  }

  function notifySupported() {
    return typeof window.Notification === 'function';
  }
  function renderNotify() {
    const perm = notifySupported() ? Notification.permission : 'unsupported';
    notifyBtn.hidden = perm === 'unsupported';
    notifyBtn.dataset.mode = perm === 'granted' ? notifyMode : perm;
    if (perm === 'denied') {
      notifyBtn.textContent = 'Notifications blocked';
      notifyBtn.title = 'Allow notifications for this site in the browser settings.';
    } else if (perm !== 'granted') {
      notifyBtn.textContent = 'Turn on notifications';
      notifyBtn.title = 'Get a desktop notification when someone mentions you.';
    } else {
      const labels = { mentions: 'Notify: mentions', all: 'Notify: every message',
        off: 'Notify: off' };
      notifyBtn.textContent = labels[notifyMode] || labels.mentions;
      notifyBtn.title = 'Change which messages notify you (mentions, every message, off).';
    }
  }
  // The permission is asked for only here, after a click. Later clicks cycle the choice.
  notifyBtn.addEventListener('click', async () => {
    if (!notifySupported()) return;
    if (Notification.permission === 'default') {
      let r = 'default';
      try { r = await Notification.requestPermission(); } catch (e) { r = 'denied'; }
      if (r === 'granted') notifyMode = 'mentions';
    } else if (Notification.permission === 'granted') {
      notifyMode = { mentions: 'all', all: 'off', off: 'mentions' }[notifyMode] || 'mentions';
    }
    store(NOTIFY_KEY, notifyMode);
    renderNotify();
  });

  function notify(f, u, mention) {
    if (!notifySupported() || Notification.permission !== 'granted') return;
    if (!(notifyMode === 'all' || (notifyMode === 'mentions' && mention))) return;
    if (!hidden() && document.hasFocus()) return;
    let text = f.text.replace(/\s+/g, ' ').trim();
    if (codePoints(text) > NOTIFY_BODY_MAX) text = Array.from(text).slice(0, NOTIFY_BODY_MAX).join('') + '\u2026';
    try {
      const n = new Notification((mention ? u.name + ' mentioned you in ' : u.name + ' in ') +
        roomTitle, { body: text, tag: 'parley-' + room + '-' + (seqOf(f) || ''), lang: '',
        dir: 'auto' });
      n.onclick = () => { window.focus(); n.close(); };
    } catch (e) { /* e.g. Android Chrome wants a service worker: no notification */ }
  }

  // ---- sending ----
  function updateCounter() {
    const n = codePoints(input.value);
    counter.classList.toggle('is-visible', n >= COUNTER_FROM);
    counter.classList.toggle('is-over', n > MAX_TEXT);
    if (n > MAX_TEXT) {
      counter.textContent = (n - MAX_TEXT) + ' characters too many (' + n + ' / ' + MAX_TEXT + ')';
    }
    else if (n >= COUNTER_FROM) counter.textContent = n + ' / ' + MAX_TEXT;
    else counter.textContent = '';
    updateSendable();
    return n;
  }

  function updateSendable() {
    const n = codePoints(input.value);
    const hasText = input.value.trim().length > 0;
    send.disabled = stopped || !hasText || n > MAX_TEXT;
    input.disabled = stopped;
    input.placeholder = stopped ? 'The chat has stopped' : 'Message #' + room;
  }

  function wsOpen() {
    return ws && ws.readyState === WebSocket.OPEN && state === 'online';
  }
  function sendFrame(obj) {
    if (!wsOpen()) return false;
    try {
      ws.send(JSON.stringify(obj));
      return true;
    } catch (e) {
      return false;
    }
  }

  function transmit(cid) {
    const p = pending.get(cid);
    if (!p) return false;
    if (!sendFrame({ type: 'message', text: p.text, client_id: cid })) return false;
    p.sent = true;
    markPending(p);
    clearTimeout(ackTimer);
    ackTimer = setTimeout(() => {
      // no answer: the connection is not working; a new one re-sends it (same client_id)
      if (p.sent && ws) {
        try { ws.close(4000, 'no answer'); } catch (e) { /* ignore */ }
      }
    }, ACK_TIMEOUT_MS);
    return true;
  }

  // Client-side token bucket, below the server's flood limit, so sending fast queues
  // messages here (shown as "waiting") instead of having the server refuse them.
  function takeSendToken() {
    const now = Date.now();
    bucket = Math.min(SEND_BURST, bucket + ((now - bucketAt) / 1000) * SEND_PER_SEC);
    bucketAt = now;
    if (bucket < 1) return false;
    bucket -= 1;
    return true;
  }

  // Sends the oldest waiting message, one at a time: the next goes when this one is confirmed
  // (or refused), so messages are stored in the order they were written and a refused one is
  // sent again before those written after it. Nothing is sent until the history of this
  // connection is in, so a message stored before a disconnect is recognised, not re-sent.
  function flushOutbox() {
    clearTimeout(flushTimer);
    flushTimer = null;
    if (!wsOpen() || !historyReady || catchingUp) return;
    for (const p of pending.values()) if (p.sent) return; // one in flight
    while (outbox.length && !pending.has(outbox[0])) outbox.shift();
    if (!outbox.length) return;
    const wait = refusedUntil - Date.now();
    if (wait > 0) {
      flushTimer = setTimeout(flushOutbox, wait);
      return;
    }
    if (!takeSendToken()) {
      flushTimer = setTimeout(flushOutbox, Math.ceil(1000 / SEND_PER_SEC));
      return;
    }
    transmit(outbox[0]);
  }

  function submit() {
    const text = input.value.trim();
    if (!text || stopped) return;
    if (codePoints(text) > MAX_TEXT) {
      showError('That message is too long: the limit is ' + MAX_TEXT + ' characters.');
      return;
    }
    clearError();
    closeComplete();
    const cid = newClientId();
    const li = buildMessage({ clientId: cid, userId: me.id, name: me.name, text,
      ts: Date.now(), own: true });
    const p = { text, li, sent: false, refusals: 0 };
    pending.set(cid, p);
    outbox.push(cid);
    markPending(p);
    if (empty.parentNode) empty.remove();
    log.append(li);
    regroup(li);
    scrollToBottom();
    input.value = '';
    lastTypingSent = 0; // the next message's typing shows at once (typing has its own budget)
    updateCounter();
    flushOutbox();
  }

  // ---- @mention completion ----
  let completeItems = [];
  let completeIndex = -1;
  let completeFrom = -1;  // index of the '@' in the box

  function mentionQuery() {
    const pos = input.selectionStart;
    if (pos !== input.selectionEnd) return null;
    const before = input.value.slice(0, pos);
    const m = /(^|[\s(])@([^\s@]{0,32})$/u.exec(before);
    if (!m) return null;
    return { from: pos - m[2].length - 1, q: m[2].toLowerCase() };
  }
  function updateComplete() {
    const mq = mentionQuery();
    if (!mq) return closeComplete();
    const names = [];
    const add = (n) => { if (n && n !== me.name && !names.includes(n)) names.push(n); };
    for (const n of online.values()) add(n);
    for (const n of known.values()) add(n);
    const q = mq.q;
    const hits = names.filter((n) => {
      const l = n.toLowerCase();
      return l.startsWith(q) || l.split(/\s+/).some((w) => w.startsWith(q));
    }).slice(0, COMPLETE_MAX);
    if (!hits.length) return closeComplete();
    completeItems = hits;
    completeFrom = mq.from;
    completeIndex = 0;
    clear(complete);
    hits.forEach((n, i) => {
      const li = el('li', 'chat-complete-item');
      li.id = 'chat-complete-' + i;
      li.setAttribute('role', 'option');
      li.append('@', bdi(n));
      li.addEventListener('mousedown', (ev) => { ev.preventDefault(); pickComplete(i); });
      complete.append(li);
    });
    complete.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    highlightComplete();
  }
  function highlightComplete() {
    Array.from(complete.children).forEach((li, i) => {
      li.setAttribute('aria-selected', i === completeIndex ? 'true' : 'false');
    });
    input.setAttribute('aria-activedescendant', completeIndex >= 0 ? 'chat-complete-' + completeIndex : '');
  }
  function closeComplete() {
    completeItems = [];
    completeIndex = -1;
    complete.hidden = true;
    clear(complete);
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
  }
  function pickComplete(i) {
    const name = completeItems[i];
    if (!name) return;
    const pos = input.selectionStart;
    const v = input.value;
    const insert = '@' + name + ' ';
    input.value = v.slice(0, completeFrom) + insert + v.slice(pos);
    const caret = completeFrom + insert.length;
    input.setSelectionRange(caret, caret);
    closeComplete();
    updateCounter();
    input.focus();
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
    input.focus();
  });
  input.addEventListener('keydown', (ev) => {
    if (!complete.hidden && completeItems.length) {
      if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
        ev.preventDefault();
        const n = completeItems.length;
        completeIndex = (completeIndex + (ev.key === 'ArrowDown' ? 1 : n - 1)) % n;
        highlightComplete();
        return;
      }
      if ((ev.key === 'Enter' || ev.key === 'Tab') && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        pickComplete(completeIndex);
        return;
      }
      if (ev.key === 'Escape') {
        ev.preventDefault();
        closeComplete();
        return;
      }
    }
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && !ev.altKey && !ev.ctrlKey &&
        !ev.metaKey) {
      ev.preventDefault();
      submit();
    }
  });
  input.addEventListener('input', () => {
    updateCounter();
    updateComplete();
    if (error.classList.contains('is-visible')) clearError();
    // Typing signals are throttled (one per TYPING_SEND_EVERY_MS while typing one message) and
    // never sent while a message waits (the server counts them in a budget of their own).
    const now = Date.now();
    if (input.value.trim() && wsOpen() && now - lastTypingSent >= TYPING_SEND_EVERY_MS &&
        !outbox.length) {
      lastTypingSent = now;
      sendFrame({ type: 'typing' });
    }
  });
  input.addEventListener('blur', closeComplete);
  input.addEventListener('click', updateComplete);

  // ---- scrolling, members toggle ----
  log.addEventListener('scroll', () => {
    if (atBottom()) newBelow.hidden = true;
    if (log.scrollTop <= OLDER_AT_PX) maybeLoadOlder();
  });
  // at the very top a wheel or a swipe scrolls nothing, so no scroll event comes
  log.addEventListener('wheel', (ev) => {
    if (ev.deltaY < 0 && log.scrollTop <= OLDER_AT_PX) maybeLoadOlder();
  }, { passive: true });
  log.addEventListener('touchmove', () => {
    if (log.scrollTop <= OLDER_AT_PX) maybeLoadOlder();
  }, { passive: true });
  log.addEventListener('keydown', (ev) => {
    if ((ev.key === 'PageUp' || ev.key === 'Home' || ev.key === 'ArrowUp') &&
        log.scrollTop <= OLDER_AT_PX) maybeLoadOlder();
  });
  newBelow.addEventListener('click', () => {
    scrollToBottom();
    log.focus();
  });
  membersToggle.addEventListener('click', () => {
    const open = !root.classList.contains('members-open');
    root.classList.toggle('members-open', open);
    membersToggle.setAttribute('aria-expanded', open ? 'true' : 'false');
  });
  retryNow.addEventListener('click', () => {
    attempt = 0;
    connect();
  });

  // ---- network and visibility events ----
  window.addEventListener('offline', () => {
    if (stopped) return;
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    setState('offline', 'Offline \u2014 waiting for the network');
  });
  window.addEventListener('online', () => {
    if (stopped) return;
    if (!wsOpen()) {
      attempt = 0;
      connect();
    }
  });
  document.addEventListener('visibilitychange', () => {
    if (hidden()) {
      // the next message of someone else is the first one the reader has not seen
      if (divider.parentNode) divider.remove();
      dividerArmed = true;
      return;
    }
    dividerArmed = false;
    unread = 0;
    unreadMention = false;
    renderTitle();
    markSeen();
    if (stopped) return;
    // Back from sleep or a background tab: do not wait for a long backoff timer.
    if (!ws && (state === 'reconnecting' || state === 'offline')) {
      attempt = 0;
      connect();
    }
  });
  // Leaving the page closes the socket at once (the others see us leave now, and the page
  // may go into the back/forward cache); coming back from that cache reconnects.
  window.addEventListener('pagehide', () => {
    generation++;
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    if (ws) {
      try { ws.close(1000, 'page closed'); } catch (e) { /* ignore */ }
      ws = null;
    }
  });
  window.addEventListener('pageshow', (ev) => {
    if (ev.persisted && !stopped) {
      attempt = 0;
      lostConnection(1001);
    }
  });

  renderMembers();
  renderNotify();
  updateCounter();
  setState('connecting');
  if (window.matchMedia && window.matchMedia('(pointer: fine)').matches) input.focus();
  connect();
})();
