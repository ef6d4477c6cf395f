// Shows every <time datetime="..."> of the page in the reader's own time zone. The server
// renders the time in UTC as a fallback (no JavaScript, or a date the browser cannot read).
'use strict';
document.addEventListener('DOMContentLoaded', () => {
  for (const t of document.querySelectorAll('time[datetime]')) {
    const d = new Date(t.dateTime);
    if (Number.isNaN(d.getTime())) continue;
    t.title = t.textContent;
    // dateStyle/timeStyle cannot be combined with timeZoneName (ECMA-402): components instead
    t.textContent = d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric',
      hour: 'numeric', minute: '2-digit', timeZoneName: 'short' });
  }
});

// A form's hidden tz field gets the reader's IANA zone, so a datetime-local value (which has
// no offset) is read in the zone the person typed it in.
document.addEventListener('DOMContentLoaded', () => {
  let zone = '';
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch { /* keep UTC */ }
  if (!zone) return;
  for (const f of document.querySelectorAll('input[type="hidden"][name="tz"]')) f.value = zone;
});

// An edit form shows stored times as UTC wall clock (data-utc, the tz field says UTC). With
// JavaScript the fields show the reader's wall clock instead and the tz field their zone.
document.addEventListener('DOMContentLoaded', () => {
  let zone = '';
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ''; } catch { /* keep UTC */ }
  if (!zone) return;
  const pad = (n) => String(n).padStart(2, '0');
  for (const input of document.querySelectorAll('input[type="datetime-local"][data-utc]')) {
    const d = new Date(input.dataset.utc);
    if (!input.dataset.utc || Number.isNaN(d.getTime())) continue;
    input.value = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
  }
});
