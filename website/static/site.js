// Parley's small enhancements for every page (loaded by layout.html; the pages work without it):
// * Forms with errors: each field whose error text is shown gets aria-invalid="true", and the
//   focus moves to the first of them; a duplicate email on the register form offers
//   "Log in instead".
// * Destructive actions (forms with data-confirm: delete a room, ban, unban, make admin) ask
//   first in a <dialog>, naming what they act on, and after the action the next page says
//   what was done (a role=status line). Without JavaScript the forms post at once, as before.
// Nothing here uses innerHTML or inline styles (the CSP forbids them).
'use strict';

(function () {
  const FLASH_KEY = 'parley.flash';
  const FLASH_MAX_AGE_MS = 60000;

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // ---- forms with errors ----
  function markErrors() {
    let first = null;
    for (const form of document.querySelectorAll('form.form')) {
      const formError = form.querySelector('.form-error');
      const whole = formError && formError.textContent.trim() !== '';
      for (const field of form.querySelectorAll('.field')) {
        const input = field.querySelector('input, textarea, select');
        if (!input) continue;
        const err = field.querySelector('.error');
        const bad = (err && err.textContent.trim() !== '') || whole;
        if (!bad) continue;
        input.setAttribute('aria-invalid', 'true');
        if (whole && formError.id) input.setAttribute('aria-describedby', formError.id);
        input.addEventListener('input', () => input.removeAttribute('aria-invalid'), { once: true });
        // on the login form (one error for both fields) the email is kept: go to the password
        if (!first && !(whole && input.value && input.type !== 'password')) first = input;
      }
    }
    if (first) first.focus();
    const emailError = document.getElementById('email-error');
    if (emailError && /already exists/i.test(emailError.textContent)) {
      const p = el('p', 'error-action');
      const a = el('a', 'login-instead', 'Log in instead');
      a.href = '/login';
      p.append(a);
      emailError.after(p);
    }
  }

  // ---- confirmation of destructive actions ----
  // The thing acted on: the row's name cell (admin tables) or the room card's title.
  function subjectOf(form) {
    const row = form.closest('tr');
    if (row) {
      const name = row.querySelector('td[data-label="Name"] bdi') ||
        row.querySelector('td[data-label="Name"]');
      const email = row.querySelector('td[data-label="Email"]');
      const n = name ? name.textContent.trim() : '';
      const e = email ? email.textContent.trim() : '';
      return n && e ? n + ' (' + e + ')' : n || e;
    }
    const card = form.closest('.room');
    const title = card && card.querySelector('.room-title');
    return title ? title.textContent.trim() : '';
  }

  let dialog = null;
  function confirmDialog(text, action, onYes) {
    if (typeof HTMLDialogElement !== 'function') {
      onYes();
      return;
    }
    if (!dialog) {
      dialog = el('dialog', 'confirm-dialog');
      dialog.setAttribute('aria-labelledby', 'confirm-text');
      document.body.append(dialog);
    }
    while (dialog.firstChild) dialog.firstChild.remove();
    const p = el('p', 'confirm-text', text);
    p.id = 'confirm-text';
    const row = el('p', 'actions');
    const no = el('button', 'secondary confirm-no', 'Cancel');
    no.type = 'button';
    const yes = el('button', 'danger confirm-yes', action);
    yes.type = 'button';
    row.append(no, yes);
    dialog.append(p, row);
    no.addEventListener('click', () => dialog.close());
    yes.addEventListener('click', () => {
      dialog.close();
      onYes();
    });
    dialog.showModal();
    no.focus(); // the safe choice is the default
  }

  function fill(template, subject) {
    return template.replace('{subject}', subject || 'this');
  }

  document.addEventListener('submit', (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
    if (form.dataset.confirmed === '1') return;
    ev.preventDefault();
    const subject = subjectOf(form);
    const submitter = form.querySelector('[type="submit"]');
    confirmDialog(fill(form.dataset.confirm, subject),
      submitter ? submitter.textContent.trim() : 'Yes', () => {
        try {
          sessionStorage.setItem(FLASH_KEY, JSON.stringify({ text: fill(form.dataset.done || 'Done.',
            subject), at: Date.now() }));
        } catch (e) { /* no storage: no message afterwards */ }
        form.dataset.confirmed = '1';
        form.submit();
      });
  });

  // After the action: say what was done, unless the server answered with an error page.
  function showFlash() {
    let f = null;
    try {
      f = JSON.parse(sessionStorage.getItem(FLASH_KEY) || 'null');
      sessionStorage.removeItem(FLASH_KEY);
    } catch (e) { f = null; }
    if (!f || typeof f.text !== 'string' || !(Date.now() - f.at < FLASH_MAX_AGE_MS)) return;
    const main = document.querySelector('main');
    if (!main || document.querySelector('.error-message')) return;
    const p = el('p', 'flash', f.text);
    p.setAttribute('role', 'status');
    const h1 = main.querySelector('h1');
    if (h1) h1.after(p);
    else main.prepend(p);
  }

  markErrors();
  showFlash();
})();
