// Log in: POST /api/log_in/, then go to the user's dashboard.

import { h, fieldError } from '../dom.js';

export function render(outlet, ctx) {
  const flash = ctx.api.takeFlash();
  const message = h('p', { id: 'login-message', class: 'notice', role: 'status', hidden: !flash }, flash || '');
  const username = h('input', { id: 'login-username', name: 'username', type: 'text', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false' });
  const password = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Log in');
  const form = h('form', { id: 'login-form', class: 'card form', novalidate: true },
    h('h1', {}, 'Log in'),
    message,
    h('div', { class: 'field' }, h('label', { for: 'login-username' }, 'Username'), username),
    h('div', { class: 'field' }, h('label', { for: 'login-password' }, 'Password'), password),
    h('div', { class: 'form-actions' }, submit),
    h('p', { class: 'muted' }, 'No account yet? ', h('a', { href: '#/signup' }, 'Sign up')));
  outlet.append(h('section', { class: 'narrow' }, form));

  let alive = true;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    fieldError(form, null);
    if (!username.value.trim() || !password.value) {
      fieldError(form, 'Enter your username and password.');
      return;
    }
    submit.disabled = true;
    try {
      const user = await ctx.api.logIn(username.value.trim(), password.value);
      if (alive) ctx.loggedIn(user);
    } catch (err) {
      if (!alive) return;
      fieldError(form, err.status === 401 ? 'Wrong username or password.' : err.message);
      submit.disabled = false;
    }
  });
  return () => { alive = false; };
}
