// Sign up: multipart/form-data POST /api/sign_up/ (with an optional photo), then log in.

import { h, fieldError } from '../dom.js';

const FIELDS = ['username', 'first_name', 'last_name', 'password1', 'password2', 'group', 'photo'];

export function render(outlet, ctx) {
  const input = (name, label, attrs = {}) => h('div', { class: 'field', dataset: { field: name } },
    h('label', { for: `signup-${name}` }, label),
    h('input', { id: `signup-${name}`, name, ...attrs }));
  const groupField = h('fieldset', { class: 'field choice', dataset: { field: 'group' } },
    h('legend', {}, 'I want to'),
    h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'group', value: 'rider', checked: true }), ' ride'),
    h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'group', value: 'driver' }), ' drive'));
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Sign up');
  const general = h('div', { class: 'form-general' });
  const form = h('form', { id: 'signup-form', class: 'card form', novalidate: true, enctype: 'multipart/form-data' },
    h('h1', {}, 'Sign up'),
    input('username', 'Username', { type: 'text', autocomplete: 'username', required: true, autocapitalize: 'none', spellcheck: 'false', maxlength: 150 }),
    h('div', { class: 'field-row' },
      input('first_name', 'First name', { type: 'text', autocomplete: 'given-name', maxlength: 150 }),
      input('last_name', 'Last name', { type: 'text', autocomplete: 'family-name', maxlength: 150 })),
    input('password1', 'Password', { type: 'password', autocomplete: 'new-password', required: true }),
    input('password2', 'Password again', { type: 'password', autocomplete: 'new-password', required: true }),
    groupField,
    input('photo', 'Photo (optional)', { type: 'file', accept: 'image/png,image/jpeg,image/gif,image/webp' }),
    general,
    h('div', { class: 'form-actions' }, submit),
    h('p', { class: 'muted' }, 'Already have an account? ', h('a', { href: '#/login' }, 'Log in')));
  outlet.append(h('section', { class: 'narrow' }, form));

  const fieldBox = (name) => form.querySelector(`[data-field="${name}"]`) || general;
  const clearErrors = () => {
    for (const el of form.querySelectorAll('.form-error')) el.remove();
  };

  let alive = true;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors();
    const data = new FormData(form);
    const errors = {};
    for (const f of ['username', 'password1', 'password2']) {
      if (!String(data.get(f) || '').trim()) errors[f] = 'This field is required.';
    }
    if (!errors.password1 && !errors.password2 && data.get('password1') !== data.get('password2')) {
      errors.password2 = 'Passwords must match.';
    }
    const photo = data.get('photo');
    if (!(photo instanceof File) || photo.size === 0) data.delete('photo');
    if (Object.keys(errors).length) {
      for (const [f, m] of Object.entries(errors)) fieldError(fieldBox(f), m);
      return;
    }
    submit.disabled = true;
    try {
      await ctx.api.signUp(data);
      if (!alive) return;
      // Log straight in with the new account.
      try {
        const user = await ctx.api.logIn(String(data.get('username')).trim(), String(data.get('password1')));
        if (alive) ctx.loggedIn(user);
      } catch {
        if (alive) { ctx.api.setFlash('Your account is ready; please log in.'); ctx.navigate('#/login'); }
      }
    } catch (err) {
      if (!alive) return;
      submit.disabled = false;
      const body = err.body;
      if (err.status === 400 && body && typeof body === 'object' && !body.detail) {
        for (const [f, msgs] of Object.entries(body)) {
          const text = Array.isArray(msgs) ? msgs.join(' ') : String(msgs);
          fieldError(FIELDS.includes(f) ? fieldBox(f) : general, text);
        }
      } else {
        fieldError(general, err.message);
      }
    }
  });
  return () => { alive = false; };
}
