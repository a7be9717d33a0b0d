// Landing: what TaxiHub is, with links to log in and sign up.

import { h } from '../dom.js';

export function render(outlet) {
  outlet.append(h('section', { class: 'landing', id: 'landing' },
    h('div', { class: 'hero' },
      h('h1', {}, 'Rides, in real time.'),
      h('p', { class: 'lead' }, 'Request a ride and watch your driver arrive on the map, or drive and pick up trips near you.'),
      h('div', { class: 'actions' },
        h('a', { href: '#/signup', id: 'nav-signup', class: 'button primary' }, 'Sign up'),
        h('a', { href: '#/login', id: 'nav-login', class: 'button' }, 'Log in'))),
    h('ul', { class: 'features' },
      h('li', {}, h('strong', {}, 'Riders'), ' request a trip from where they are and follow the car live.'),
      h('li', {}, h('strong', {}, 'Drivers'), ' get nearby requests first and share their position as they drive.'),
      h('li', {}, h('strong', {}, 'Operators'), ' watch every car and trip on one live dashboard.'))));
}
