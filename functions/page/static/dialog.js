// A confirmation in a native modal <dialog>: it keeps focus inside, Escape cancels, and focus
// returns to the button that opened it.

import { h } from './dom.js';

/**
 * Ask before a destructive action. `action` runs on confirm; while it runs the dialog stays
 * open, and if it fails its message is shown there. Resolves true when the action succeeded.
 */
export function confirmAction({ title, body, confirmLabel, action }) {
  const opener = document.activeElement;
  const titleId = 'dialog-title';
  const message = h('p', { class: 'dialog-error', role: 'alert', hidden: true });
  const cancel = h('button', { type: 'button', class: 'btn' }, 'Cancel');
  const confirm = h('button', { type: 'button', class: 'btn btn-danger' }, confirmLabel);
  const dialog = h(
    'dialog',
    { class: 'dialog', 'aria-labelledby': titleId },
    h('h2', { id: titleId }, title),
    body,
    message,
    h('div', { class: 'dialog-actions' }, cancel, confirm),
  );
  document.body.append(dialog);

  return new Promise((resolve) => {
    let done = false;
    const finish = (result) => {
      done = true;
      dialog.close();
      dialog.remove();
      if (opener instanceof HTMLElement && opener.isConnected) opener.focus();
      resolve(result);
    };
    cancel.addEventListener('click', () => finish(false));
    dialog.addEventListener('cancel', (event) => {
      event.preventDefault(); // Escape: close through finish() so focus goes back
      if (!confirm.disabled) finish(false);
    });
    confirm.addEventListener('click', async () => {
      confirm.disabled = true;
      cancel.disabled = true;
      confirm.textContent = 'Working…';
      try {
        await action();
        finish(true);
      } catch (error) {
        if (done) return;
        message.textContent = error.message;
        message.hidden = false;
        confirm.disabled = false;
        cancel.disabled = false;
        confirm.textContent = confirmLabel;
        cancel.focus();
      }
    });
    dialog.showModal();
    cancel.focus(); // the safe choice has the focus
  });
}
