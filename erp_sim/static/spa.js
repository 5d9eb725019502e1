// The SPA flavour of erp_sim: every screen is drawn here from JSON calls to /api.
//
// All that is shown lives in `state`; render() throws the screen away and draws it
// anew from it (as a framework without DOM diffing would). While calls are under way
// #app has data-busy="1"; data-calls counts the calls that have finished, so a script
// can wait for "the answer to my click has been drawn".
(function () {
  'use strict';

  var app = document.getElementById('app');
  var nav = document.getElementById('nav');
  var firstRerender = parseInt(app.getAttribute('data-rerender-ms'), 10) || 0;

  var state = {
    view: 'loading', user: null, csrf: '',
    info: '', errors: [], banner: '', flash: '',
    login: {username: '', password: ''},
    search: {number: ''},
    sheet: null,
    dialog: null
  };
  var busy = 0, calls = 0, suggestionSeq = 0;

  // -- talking to the server ------------------------------------------------------------

  function setBusy(delta) {
    busy += delta;
    app.setAttribute('data-busy', busy > 0 ? '1' : '0');
  }

  // One JSON call. handle(status, data) gets every answer but a 5xx (the error banner)
  // and a lost session (the login screen); redraw() runs after it, then the call counts
  // as done.
  function call(method, path, body, handle, redraw) {
    setBusy(1);
    state.banner = '';
    var options = {method: method, credentials: 'same-origin',
                   headers: {'X-CSRF-Token': state.csrf, 'Accept': 'application/json'}};
    if (body !== undefined) {
      options.headers['Content-Type'] = 'application/json';
      options.body = JSON.stringify(body);
    }
    var fullRedraw = false;
    fetch(path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.status >= 500) {
          failed(data.error || (response.status + ' ' + response.statusText));
          fullRedraw = true;
        } else if (response.status === 401 && !data.errors) {
          loggedOut(data);
          fullRedraw = true;
        } else {
          handle(response.status, data);
        }
      });
    }).catch(function () {
      failed('no answer');
      fullRedraw = true;
    }).then(function () {
      (fullRedraw || !redraw ? render : redraw)();
      calls += 1;
      app.setAttribute('data-calls', String(calls));
      setBusy(-1);
    });
  }

  function failed(what) {
    state.banner = 'The ERP could not complete the request (' + what + '). Please try again.';
    if (state.dialog) { state.dialog.saving = false; }
  }

  function loggedOut(data) {
    state.user = null;
    state.csrf = data.csrf_token || '';
    state.info = data.expired ? data.error : '';
    state.view = 'login';
    state.sheet = null;
    state.dialog = null;
    state.errors = [];
  }

  // -- actions ----------------------------------------------------------------------------

  function start() {
    call('GET', '/api/session', undefined, function (status, data) {
      state.user = data.user;
      state.csrf = data.csrf_token;
      route();
    });
  }

  function route() {
    var match = /^#\/worksheets\/([^\/]+)$/.exec(location.hash);
    state.errors = [];
    if (match) {
      openSheet(decodeURIComponent(match[1]));
    } else {
      state.view = 'search';
      render();
    }
  }

  function logIn() {
    state.errors = [];
    call('POST', '/api/login', state.login, function (status, data) {
      if (data.csrf_token) { state.csrf = data.csrf_token; }
      if (status === 200) {
        state.user = data.user;
        state.login.password = '';
        state.info = '';
        route();
      } else {
        state.errors = data.errors || [];
        state.login.password = '';
      }
    });
  }

  function logOut() {
    call('POST', '/api/logout', undefined, function (status, data) {
      loggedOut({csrf_token: data.csrf_token});
      state.info = 'You have been logged out.';
    });
  }

  function searchSheet() {
    state.errors = [];
    state.flash = '';
    var number = state.search.number.trim();
    call('GET', '/api/worksheets?number=' + encodeURIComponent(number), undefined,
      function (status, data) {
        if (status === 200) {
          // pushState does not fire hashchange: the sheet is opened right here.
          history.pushState(null, '', '#/worksheets/' + data.number);
          openSheet(String(data.number));
        } else {
          state.errors = data.errors || [];
        }
      });
  }

  function openSheet(number) {
    call('GET', '/api/worksheets/' + encodeURIComponent(number), undefined,
      function (status, data) {
        if (status === 200) {
          state.sheet = data;
          state.view = 'worksheet';
          state.dialog = null;
        } else {
          state.view = 'search';
          state.search.number = number;
          state.errors = data.errors || [];
        }
      });
  }

  function deleteLine(id) {
    var number = state.sheet.number;
    state.flash = '';
    state.errors = [];
    call('DELETE', '/api/worksheets/' + number + '/lines/' + encodeURIComponent(id), undefined,
      function (status, data) {
        if (data.lines) { state.sheet = data; }
        if (status === 200) {
          state.flash = 'Line deleted';
        } else {
          state.errors = data.errors || [];
        }
      });
  }

  function openDialog() {
    state.flash = '';
    state.errors = [];
    state.dialog = {query: '', suggestions: null, suggestedFor: '', chosen: null,
                    amount: '', text: '', errors: [], saving: false};
    render();
  }

  function suggest() {
    var dialog = state.dialog, query = dialog.query.trim(), seq = ++suggestionSeq;
    dialog.chosen = null;
    if (!query) {
      dialog.suggestions = null;
      renderSuggestions();
      return;
    }
    call('GET', '/api/products?q=' + encodeURIComponent(query), undefined,
      function (status, data) {
        if (seq !== suggestionSeq || state.dialog !== dialog) { return; }  // an older answer
        dialog.suggestions = data.products || [];
        dialog.suggestedFor = query;
      }, renderSuggestions);
  }

  function choose(product) {
    var dialog = state.dialog;
    dialog.chosen = product;
    dialog.query = product.nr + ' ' + product.name;
    dialog.suggestions = null;
    suggestionSeq++;
    render();
  }

  function saveLine() {
    var dialog = state.dialog, number = state.sheet.number;
    dialog.saving = true;
    dialog.errors = [];
    render();
    call('POST', '/api/worksheets/' + number + '/lines', {
      product_nr: dialog.chosen ? String(dialog.chosen.nr) : '',
      amount: dialog.amount, text: dialog.text
    }, function (status, data) {
      if (data.lines) { state.sheet = data; }
      if (status === 201) {
        state.dialog = null;
        state.flash = 'Line added';
      } else {
        dialog.errors = data.errors || [];
        dialog.saving = false;
      }
    });
  }

  // -- drawing ------------------------------------------------------------------------------

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === null || value === undefined || value === false) { return; }
      if (name.slice(0, 2) === 'on') { node.addEventListener(name.slice(2), value); }
      else if (name === 'value') { node.value = value; }
      else { node.setAttribute(name, value === true ? '' : value); }
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) { return; }
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }

  function errorList(id, errors) {
    if (!errors || !errors.length) { return null; }
    return el('ul', {id: id, role: 'alert'}, errors.map(function (e) {
      return el('li', {'class': 'error'}, [e]);
    }));
  }

  function input(id, attrs, holder, key, oninput) {
    attrs.id = id;
    attrs.name = attrs.name || id;
    attrs.value = holder[key];
    attrs.oninput = function (event) {
      holder[key] = event.target.value;
      if (oninput) { oninput(); }
    };
    return el('input', attrs);
  }

  function onSubmit(action) {
    return function (event) { event.preventDefault(); action(); };
  }

  function loginView() {
    return [
      el('h1', {}, ['Log in']),
      state.info ? el('div', {id: 'flash'}, [el('p', {'class': 'flash flash-info'}, [state.info])]) : null,
      errorList('form-errors', state.errors),
      el('form', {id: 'login-form', onsubmit: onSubmit(logIn)}, [
        el('p', {}, [el('label', {'for': 'username'}, ['Username ']),
          input('username', {autocomplete: 'username'}, state.login, 'username')]),
        el('p', {}, [el('label', {'for': 'password'}, ['Password ']),
          input('password', {type: 'password', autocomplete: 'current-password'},
                state.login, 'password')]),
        el('p', {}, [el('button', {id: 'login-submit', type: 'submit'}, ['Log in'])])
      ])
    ];
  }

  function searchView() {
    return [
      el('h1', {}, ['Find worksheet']),
      errorList('form-errors', state.errors),
      el('form', {id: 'search-form', onsubmit: onSubmit(searchSheet)}, [
        el('p', {}, [el('label', {'for': 'number'}, ['Worksheet number ']),
          input('number', {inputmode: 'numeric'}, state.search, 'number'),
          el('button', {id: 'search-submit', type: 'submit'}, ['Open'])])
      ])
    ];
  }

  function sheetView() {
    var sheet = state.sheet;
    var takesLines = !sheet.closed_message && !sheet.locked_message;
    return [
      state.flash ? el('div', {id: 'flash', role: 'status'},
                       [el('p', {'class': 'flash flash-success'}, [state.flash])]) : null,
      el('section', {id: 'worksheet', 'data-number': String(sheet.number),
                     'data-status': sheet.status}, [
        el('h1', {id: 'worksheet-number'}, ['Worksheet ' + sheet.number]),
        el('dl', {}, [
          el('dt', {}, ['Customer']), el('dd', {id: 'customer'}, [sheet.customer]),
          el('dt', {}, ['Vehicle']), el('dd', {id: 'vehicle'}, [sheet.vehicle]),
          el('dt', {}, ['Status']), el('dd', {id: 'status'},
            [sheet.status === 'closed' ? 'Closed (invoiced)' : 'Open'])
        ]),
        sheet.closed_message ? el('p', {id: 'closed-banner', role: 'alert'}, [sheet.closed_message]) : null,
        sheet.locked_message ? el('p', {id: 'locked-banner', role: 'alert'}, [sheet.locked_message]) : null,
        errorList('form-errors', state.errors),
        el('table', {id: 'lines'}, [
          el('thead', {}, [el('tr', {}, ['Line', 'Product nr', 'Product', 'Amount', 'Text']
            .concat(takesLines ? [''] : []).map(function (h) { return el('th', {}, [h]); }))]),
          el('tbody', {}, sheet.lines.map(function (line) {
            var id = String(line.id);
            return el('tr', {'class': 'line', 'data-line-id': id}, [
              el('td', {'class': 'line-id'}, [id]),
              el('td', {'class': 'product-nr'}, [String(line.product_nr)]),
              el('td', {'class': 'product-name'}, [line.product_name]),
              el('td', {'class': 'amount'}, [line.amount]),
              el('td', {'class': 'text'}, [line.text]),
              takesLines ? el('td', {'class': 'actions'}, [
                el('button', {'class': 'delete-line', type: 'button', 'data-line-id': id,
                              onclick: function () { deleteLine(id); }}, ['Delete'])]) : null
            ]);
          }))
        ]),
        takesLines ? el('p', {}, [el('button', {id: 'add-line-open', type: 'button',
                                                 onclick: openDialog}, ['Add line'])]) : null
      ]),
      state.dialog ? dialogView() : null
    ];
  }

  function suggestionItems() {
    var dialog = state.dialog;
    if (!dialog.suggestions) { return []; }
    if (!dialog.suggestions.length) {
      var q = dialog.suggestedFor;
      return [el('li', {'class': 'no-match'},
        [/^\d+$/.test(q) ? 'Unknown product number ' + q : 'No product matches ' + q])];
    }
    return dialog.suggestions.map(function (product) {
      return el('li', {'class': 'suggestion', 'data-nr': String(product.nr), role: 'option',
                       onclick: function () { choose(product); }},
                [product.nr + ' ' + product.name]);
    });
  }

  function suggestionList() {
    var dialog = state.dialog;
    return el('ul', {id: 'product-suggestions', role: 'listbox',
                     'data-query': dialog.suggestions ? dialog.suggestedFor : null},
              suggestionItems());
  }

  function renderSuggestions() {
    var old = document.getElementById('product-suggestions');
    if (old && state.dialog) { old.parentNode.replaceChild(suggestionList(), old); }
  }

  function dialogView() {
    var dialog = state.dialog;
    return el('div', {'class': 'backdrop'}, [
      el('div', {id: 'add-line-dialog', role: 'dialog', 'aria-modal': 'true',
                 'data-state': dialog.saving ? 'saving' : 'editing'}, [
        el('h2', {}, ['Add line']),
        errorList('dialog-errors', dialog.errors),
        el('form', {id: 'add-line-form', onsubmit: onSubmit(saveLine)}, [
          el('p', {}, [el('label', {'for': 'product-search'}, ['Product ']),
            input('product-search', {autocomplete: 'off', placeholder: 'Number or name'},
                  dialog, 'query', suggest),
            dialog.chosen ? el('span', {id: 'product-chosen', 'data-nr': String(dialog.chosen.nr)},
                               [' ' + dialog.chosen.name]) : null]),
          suggestionList(),
          el('p', {}, [el('label', {'for': 'amount'}, ['Amount ']),
            input('amount', {inputmode: 'decimal'}, dialog, 'amount')]),
          el('p', {}, [el('label', {'for': 'text'}, ['Line text ']),
            input('text', {size: '60'}, dialog, 'text')]),
          el('p', {}, [
            el('button', {id: 'add-line-submit', type: 'submit', disabled: dialog.saving}, ['Save']),
            ' ',
            el('button', {id: 'add-line-cancel', type: 'button', onclick: function () {
              state.dialog = null; render();
            }}, ['Cancel'])
          ])
        ])
      ])
    ]);
  }

  var VIEWS = {login: loginView, search: searchView, worksheet: sheetView,
               loading: function () { return [el('p', {}, ['Loading...'])]; }};

  // Draw the screen from `state`. The element that had the focus gets it back (the
  // user keeps typing) -- except in a chaos re-render, which is the point of one.
  function render(chaos) {
    var focused = document.activeElement && document.activeElement.id;
    var children = VIEWS[state.view]();
    if (state.banner) {
      children.unshift(el('div', {id: 'error-banner', role: 'alert'}, [state.banner]));
    }
    app.replaceChildren.apply(app, children.filter(Boolean));
    app.setAttribute('data-view', state.view);
    app.setAttribute('data-dialog', state.dialog ? (state.dialog.saving ? 'saving' : 'open') : 'closed');
    nav.replaceChildren.apply(nav, state.user ? [
      el('a', {id: 'nav-search', href: '#/worksheets', onclick: function (event) {
        event.preventDefault();
        history.pushState(null, '', '#/worksheets');
        route();
      }}, ['Worksheets']),
      ' | ', el('span', {id: 'current-user'}, [state.user]), ' | ',
      el('a', {id: 'logout', href: '#', onclick: function (event) {
        event.preventDefault();
        logOut();
      }}, ['Log out'])
    ] : []);
    if (chaos === true) {
      document.body.setAttribute('data-rerendered', String(
        (parseInt(document.body.getAttribute('data-rerendered'), 10) || 0) + 1));
      return;
    }
    if (focused && document.getElementById(focused)) { document.getElementById(focused).focus(); }
    if (firstRerender) {
      // Chaos: draw the same screen again a moment later; held elements go stale.
      var delay = firstRerender;
      firstRerender = 20 + Math.floor(Math.random() * 280);
      setTimeout(function () { render(true); }, delay);
    }
  }

  window.addEventListener('hashchange', function () { if (state.user) { route(); } });
  start();
}());
