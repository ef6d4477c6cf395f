// Parley chat page. Builds the whole chat UI inside <main id="chat" data-room ...> and talks
// to the chat daemon over /ws (protocol: docs/ and ARCHITECTURE.md "Chat WebSocket at /ws").
//
// Rules this file keeps:
// * Everything that came from the network is inserted with textContent / createTextNode,
//   never innerHTML, so a message like <img src=x onerror=...> is shown as text.
// * No inline styles or scripts (the Content-Security-Policy forbids them): state is shown
//   with classes and attributes that chat.css styles.
// * Every limit and delay is a named constant below.
'use strict';

(function () {
  const MAX_TEXT = 4000;             // server limit, in Unicode code points
  const COUNTER_FROM = 3500;         // show the length counter from this many code points
  const TYPING_SEND_EVERY_MS = 3000; // send {"type":"typing"} at most this often
  const TYPING_SHOW_MS = 4000;       // how long "X is typing..." stays after the last signal
  const TYPING_FADE_MS = 800;        // its fade-out (chat.css: 0.6 s) before the text is dropped
  const BACKOFF_BASE_MS = 500;       // reconnect delay: random(0, min(cap, base * 2^attempt))
  const BACKOFF_CAP_MS = 30000;
  const TOKEN_TIMEOUT_MS = 15000;    // give up on a hanging token request and retry
  const OPEN_TIMEOUT_MS = 20000;     // give up on a WebSocket that never says welcome
  const AT_BOTTOM_PX = 48;           // "at the bottom" tolerance for auto-scroll
  const GROUP_GAP_MS = 5 * 60 * 1000; // consecutive messages of one author within this are grouped
  const REJOIN_QUIET_MS = 30000;     // after a reconnect, no "X joined" for who was there before
  const MAX_RENDERED = 2000;         // oldest messages are dropped from the page beyond this
  const SEND_PER_SEC = 4;            // messages sent per second at most, after a burst of
  const SEND_BURST = 10;             // ...this many (the server allows 5/s, bursts of 20)

  const root = document.getElementById('chat');
  if (!root || !root.dataset.room) return;

  const room = root.dataset.room;
  const roomTitle = root.dataset.roomTitle || room;
  const meta = document.querySelector('meta[name="csrf-token"]');
  const csrf = root.dataset.csrf || (meta ? meta.getAttribute('content') : '') || '';
  const me = {
    email: (root.dataset.userEmail || '').toLowerCase(),
    name: root.dataset.userName || '',
  };

  // ---- small DOM helpers (text only) ----
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
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
  function sameEmail(a, b) {
    return typeof a === 'string' && typeof b === 'string' && a.toLowerCase() === b.toLowerCase();
  }
  function userOf(frame) {
    const u = frame && typeof frame.user === 'object' && frame.user ? frame.user : {};
    const email = typeof u.email === 'string' ? u.email : '';
    const name = typeof u.name === 'string' && u.name ? u.name : email || 'someone';
    return { email, name };
  }

  // ---- build the UI ----
  root.classList.add('chat-ready');
  for (const n of Array.from(root.children)) {
    if (n.tagName !== 'NOSCRIPT') n.remove();
  }

  const head = el('header', 'chat-head');
  const titleBox = el('div', 'chat-titlebox');
  const h1 = el('h1', 'chat-title', roomTitle);
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

  const membersToggle = el('button', 'chat-members-toggle');
  membersToggle.type = 'button';
  membersToggle.setAttribute('aria-expanded', 'false');
  membersToggle.setAttribute('aria-controls', 'chat-members');
  head.append(titleBox, status, membersToggle);

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
  const empty = el('li', 'chat-empty', 'New messages appear here. Say hello!');
  log.append(empty);
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
  input.placeholder = 'Message #' + room;
  input.setAttribute('autocomplete', 'off');
  input.setAttribute('aria-describedby', 'chat-hint chat-counter chat-error');
  input.enterKeyHint = 'send';
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
  form.append(label, input, send, metaRow, error);

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
  let bucket = SEND_BURST;  // client-side send tokens (see takeSendToken)
  let bucketAt = Date.now();
  let stopped = false;      // logged out, banned, room gone: no more reconnects
  let everOnline = false;
  let lastTypingSent = 0;
  const online = new Map(); // email(lowercase) -> name
  let wasOnline = new Set(); // who was here when the connection dropped (see onJoin)
  let wasOnlineTimer = null;
  const typers = new Map(); // email(lowercase) -> {name, timer}
  let typingFadeTimer = null;
  // Server message ids already shown on this connection. The chat daemon numbers messages per
  // room and process, so after a restart ids start again at 1: the set starts afresh with
  // every welcome.
  const seenIds = new Set();
  const pending = new Map(); // client_id -> {text, li, sent}
  const restored = new Map(); // client_id -> text put back into the box after an error
  const outbox = [];        // client_ids waiting for a connection, in order

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
    if (s !== 'reconnecting') statusCountdown.textContent = '';
    updateSendable();
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
    const s = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
    statusCountdown.textContent = s > 0 ? ' in ' + s + ' s' : '';
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
    countdownTimer = setInterval(tickCountdown, 1000);
    retryTimer = setTimeout(connect, delay);
  }

  function stop(text, link, linkText) {
    stopped = true;
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    clearTimeout(openTimer);
    generation++;
    if (ws) {
      try { ws.close(1000, 'stopped'); } catch (e) { /* already closed */ }
      ws = null;
    }
    online.clear();
    renderMembers();
    setState('stopped');
    showBanner(text, link, linkText);
    updateSendable();
  }

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
    if (res.ok && data && typeof data.token === 'string' && data.token) {
      return { token: data.token, data };
    }
    const msg = data && typeof data.message === 'string' ? data.message : '';
    const code = data && typeof data.error === 'string' ? data.error : '';
    if (res.status === 401) {
      return { fatal: true, text: 'You are logged out, so the chat stopped.',
        link: '/login', linkText: 'Log in again' };
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
    const url = (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host +
      '/ws?access_token=' + encodeURIComponent(t.token);
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

  function lostConnection(code) {
    clearTimeout(flushTimer);
    clearTimeout(wasOnlineTimer);
    for (const k of online.keys()) wasOnline.add(k);
    online.clear();
    renderMembers();
    clearTypers();
    // Messages sent but not echoed may not have reached the server: send them again on
    // reconnect (the echo's client_id de-duplicates them here).
    const inflight = [];
    for (const [cid, p] of pending) {
      if (p.sent) {
        p.sent = false;
        markPending(p, true);
        inflight.push(cid);
      }
    }
    outbox.unshift(...inflight.filter((c) => !outbox.includes(c)));
    if (code === 1008) showError('The server closed the connection because of too many messages.');
    if (stopped) return;
    scheduleReconnect();
  }

  // ---- frames ----
  function handleFrame(f) {
    switch (f.type) {
      case 'welcome': return onWelcome(f);
      case 'join': return onJoin(f);
      case 'leave': return onLeave(f);
      case 'message': return onMessage(f);
      case 'typing': return onTyping(f);
      case 'error': return onError(f);
      default: return undefined;
    }
  }

  function onWelcome(f) {
    clearTimeout(openTimer);
    if (f.you && typeof f.you.email === 'string') {
      me.email = f.you.email.toLowerCase();
      if (typeof f.you.name === 'string' && f.you.name) me.name = f.you.name;
    }
    seenIds.clear();
    online.clear();
    if (Array.isArray(f.members)) {
      for (const m of f.members) {
        if (m && typeof m.email === 'string') {
          const name = typeof m.name === 'string' && m.name ? m.name : m.email;
          online.set(m.email.toLowerCase(), name);
        }
      }
    }
    if (me.email) online.set(me.email, me.name || me.email);
    renderMembers();
    if (everOnline) {
      notice('Reconnected. Messages sent while you were away are not shown.');
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
    flushOutbox();
  }

  function onJoin(f) {
    const u = userOf(f);
    if (!u.email) return;
    const k = u.email.toLowerCase();
    const had = online.has(k);
    online.set(k, u.name);
    renderMembers();
    if (!had && k !== me.email && !wasOnline.delete(k)) notice(u.name + ' joined');
  }

  function onLeave(f) {
    const u = userOf(f);
    if (!u.email) return;
    const k = u.email.toLowerCase();
    if (k === me.email) return;
    const had = online.delete(k);
    stopTyping(k);
    renderMembers();
    if (had) notice(u.name + ' left');
  }

  function onTyping(f) {
    const u = userOf(f);
    const k = u.email.toLowerCase();
    if (!k || k === me.email) return;
    const old = typers.get(k);
    if (old) clearTimeout(old.timer);
    typers.set(k, { name: u.name, timer: setTimeout(() => stopTyping(k), TYPING_SHOW_MS) });
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
    let text = '';
    if (names.length === 1) text = names[0] + ' is typing\u2026';
    else if (names.length === 2) text = names[0] + ' and ' + names[1] + ' are typing\u2026';
    else if (names.length > 2) text = 'Several people are typing\u2026';
    if (text) {
      typing.textContent = text;
      typing.classList.add('is-visible');
    } else {
      // keep the last text while it fades out (the class drives the CSS transition), then drop
      // it, or screen readers would still find it
      typing.classList.remove('is-visible');
      clearTimeout(typingFadeTimer);
      typingFadeTimer = setTimeout(() => {
        if (!typing.classList.contains('is-visible')) typing.textContent = '';
      }, TYPING_FADE_MS);
    }
  }

  function renderMembers() {
    clear(membersList);
    const list = Array.from(online, ([email, name]) => ({ email, name }));
    list.sort((a, b) => (a.email === me.email ? -1 : b.email === me.email ? 1 :
      a.name.localeCompare(b.name)));
    for (const m of list) {
      const li = el('li', 'chat-member');
      li.dataset.email = m.email;
      const dot = el('span', 'chat-member-dot');
      dot.setAttribute('aria-hidden', 'true');
      li.append(dot, el('span', 'chat-member-name', m.name));
      if (m.email === me.email) {
        li.classList.add('is-me');
        li.append(el('span', 'chat-member-you', '(you)'));
      }
      membersList.append(li);
    }
    if (!list.length) {
      membersList.append(el('li', 'chat-member-none',
        wsOpen() ? 'Nobody' : 'Not connected'));
    }
    const n = list.length;
    membersToggle.textContent = state === 'online' || n ? n + ' online' : 'Members';
    membersHead.textContent = 'Online now' + (n ? ' (' + n + ')' : '');
  }

  function errorText(code, message) {
    switch (code) {
      case 'too_long':
        return 'That message is too long for the server. Shorten it, then send again.';
      case 'rate_limited':
        return 'You are sending messages too fast. Wait a moment, then send again.';
      case 'bad_request':
        return 'The server did not accept that message' + (message ? ': ' + message : '.');
      default:
        return message ? sentence(message) : 'Something went wrong (' + (code || 'error') + ').';
    }
  }

  // Which message did an error frame refuse? The server answers the frames of one connection
  // in order, but sends its errors ahead of the room's broadcasts, so an error can overtake
  // the echo of an earlier message that was accepted. An error that names a client_id refuses
  // that message; one that does not (bad JSON, a typing frame, a message without a valid
  // client_id) refuses the oldest message not yet echoed; its bubble goes and its text goes back into the box. If that message's echo
  // comes after all, the error was about a later message (or a typing signal): the message
  // is shown, its text taken out of the box again, and the error passed on to the next
  // message still waiting. Nothing is lost, shown twice, or left "sending" for ever.
  function onError(f) {
    const code = typeof f.code === 'string' ? f.code : '';
    const message = typeof f.message === 'string' ? f.message : '';
    const named = typeof f.client_id === 'string' && pending.has(f.client_id) ? f.client_id : null;
    refuse(named);
    showError(errorText(code, message));
  }

  // Refuses message `cid`, or the oldest sent and not yet echoed one. Returns false if none.
  function refuse(cid) {
    if (!cid) {
      for (const [k, p] of pending) {
        if (p.sent) { cid = k; break; }
      }
    }
    if (!cid) return false;
    const p = pending.get(cid);
    pending.delete(cid);
    if (p.li) removeMessageLi(p.li);
    // Appended, so several refused messages come back in the order they were written.
    const cur = input.value;
    input.value = cur.trim() ? cur + '\n' + p.text : p.text;
    restored.set(cid, p.text);
    updateCounter();
    return true;
  }

  // The echo of a message we had taken as refused arrived: undo the refusal.
  function unrefuse(cid) {
    const text = restored.get(cid);
    restored.delete(cid);
    const cur = input.value;
    // the restored text as a whole block of lines: alone, first, last, or in the middle
    let next = null;
    if (cur === text) next = '';
    else if (cur.startsWith(text + '\n')) next = cur.slice(text.length + 1);
    else if (cur.endsWith('\n' + text)) next = cur.slice(0, cur.length - text.length - 1);
    else if (cur.includes('\n' + text + '\n')) next = cur.replace('\n' + text + '\n', '\n');
    if (next !== null) {
      input.value = next;
      updateCounter();
    }
    if (!refuse(null) && next === '') clearError();
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
  // Adds an item to the log. Own messages still waiting for the server stay at the very end
  // (in the order they were written), so everything confirmed goes in before the first of
  // them; a pending message itself goes last.
  function append(li, forceScroll) {
    const stick = atBottom();
    if (empty.parentNode) empty.remove();
    const firstPending = li.classList.contains('msg-pending') ? null
      : log.querySelector('.msg-pending');
    log.insertBefore(li, firstPending);
    regroup(li);
    if (li.nextElementSibling) regroup(li.nextElementSibling);
    while (log.children.length > MAX_RENDERED) log.firstElementChild.remove();
    if (stick || forceScroll) scrollToBottom();
    else newBelow.hidden = false;
  }

  // A message right after one of the same author, a few minutes apart at most, is shown as
  // part of the same group (no repeated name and time).
  function regroup(li) {
    if (!li.classList.contains('msg')) return;
    const prev = li.previousElementSibling;
    const ts = Number(li.dataset.ts);
    const grouped = !!prev && prev.classList.contains('msg') &&
      sameEmail(prev.dataset.author, li.dataset.author) &&
      ts - Number(prev.dataset.ts) < GROUP_GAP_MS && ts >= Number(prev.dataset.ts);
    li.classList.toggle('msg-cont', grouped);
  }

  function notice(text) {
    const li = el('li', 'chat-notice', text);
    append(li, false);
  }

  function fmtTime(d) {
    const now = new Date();
    const sameDay = d.toDateString() === now.toDateString();
    const opts = sameDay ? { hour: '2-digit', minute: '2-digit' }
      : { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' };
    return d.toLocaleString([], opts);
  }

  function buildMessage(m) {
    const own = sameEmail(m.email, me.email);
    const li = el('li', 'msg ' + (own ? 'msg-own' : 'msg-other'));
    const d = new Date(typeof m.ts === 'number' && isFinite(m.ts) ? m.ts : Date.now());
    const metaLine = el('div', 'msg-meta');
    const who = el('span', 'msg-author', own ? 'You' : m.name);
    if (own) who.setAttribute('aria-label', 'You (' + m.name + ')');
    const time = el('time', 'msg-time', fmtTime(d));
    time.dateTime = d.toISOString();
    time.title = d.toLocaleString();
    metaLine.append(who, time);
    const text = el('div', 'msg-text', m.text);
    li.append(metaLine, text);
    if (m.id) li.dataset.id = m.id;
    if (m.clientId) li.dataset.clientId = m.clientId;
    li.dataset.author = m.email;
    li.dataset.ts = String(d.getTime());
    return li;
  }

  function removeMessageLi(li) {
    const next = li.nextElementSibling;
    li.remove();
    if (next) regroup(next);
    if (!log.querySelector('.msg, .chat-notice')) log.append(empty);
  }

  function markPending(p, waiting) {
    if (!p.li) return;
    p.li.classList.add('msg-pending');
    let s = p.li.querySelector('.msg-state');
    if (!s) {
      s = el('span', 'msg-state');
      p.li.append(s);
    }
    if (!waiting) s.textContent = 'Sending\u2026';
    else if (state === 'online') s.textContent = 'Waiting to send\u2026';
    else s.textContent = 'Not sent yet \u2014 will send when reconnected';
  }

  function onMessage(f) {
    if (typeof f.text !== 'string') return;
    const id = typeof f.id === 'string' || typeof f.id === 'number' ? String(f.id) : '';
    if (id && seenIds.has(id)) return;
    if (id) seenIds.add(id);
    const u = userOf(f);
    const cid = typeof f.client_id === 'string' ? f.client_id : '';
    stopTyping(u.email.toLowerCase());
    const m = { id, clientId: cid, email: u.email, name: u.name, text: f.text, ts: f.ts };
    if (cid && restored.has(cid)) unrefuse(cid);
    const p = cid ? pending.get(cid) : null;
    if (p) {
      // Our own message came back: the server's order is the truth, so it moves to the end.
      pending.delete(cid);
      if (p.li) removeMessageLi(p.li);
      append(buildMessage(m), true);
      return;
    }
    append(buildMessage(m), sameEmail(u.email, me.email));
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

  function transmit(cid) {
    const p = pending.get(cid);
    if (!p) return false;
    if (!wsOpen()) return false;
    try {
      ws.send(JSON.stringify({ type: 'message', text: p.text, client_id: cid }));
    } catch (e) {
      return false;
    }
    p.sent = true;
    markPending(p, false);
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

  // Sends what waits in the outbox, oldest first, as fast as the bucket allows.
  function flushOutbox() {
    clearTimeout(flushTimer);
    flushTimer = null;
    while (outbox.length && wsOpen()) {
      const cid = outbox[0];
      if (pending.has(cid)) {
        if (!takeSendToken()) {
          flushTimer = setTimeout(flushOutbox, Math.ceil(1000 / SEND_PER_SEC));
          return;
        }
        if (!transmit(cid)) break;
      }
      outbox.shift();
    }
  }

  function submit() {
    const text = input.value.trim();
    if (!text || stopped) return;
    if (codePoints(text) > MAX_TEXT) {
      showError('That message is too long: the limit is ' + MAX_TEXT + ' characters.');
      return;
    }
    clearError();
    const cid = newClientId();
    const li = buildMessage({ clientId: cid, email: me.email, name: me.name, text,
      ts: Date.now() });
    const p = { text, li, sent: false };
    pending.set(cid, p);
    outbox.push(cid);
    markPending(p, true);
    append(li, true);
    flushOutbox();
    input.value = '';
    lastTypingSent = 0;
    updateCounter();
  }

  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submit();
    input.focus();
  });
  input.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && !ev.altKey && !ev.ctrlKey &&
        !ev.metaKey) {
      ev.preventDefault();
      submit();
    }
  });
  input.addEventListener('input', () => {
    updateCounter();
    if (error.classList.contains('is-visible')) clearError();
    const now = Date.now();
    if (input.value.trim() && wsOpen() && now - lastTypingSent >= TYPING_SEND_EVERY_MS) {
      lastTypingSent = now;
      try { ws.send(JSON.stringify({ type: 'typing' })); } catch (e) { /* closing */ }
    }
  });

  // ---- scrolling, members toggle ----
  log.addEventListener('scroll', () => {
    if (atBottom()) newBelow.hidden = true;
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
    if (stopped || document.visibilityState !== 'visible') return;
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
  updateCounter();
  setState('connecting');
  if (window.matchMedia && window.matchMedia('(pointer: fine)').matches) input.focus();
  connect();
})();
