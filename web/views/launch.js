// Launch page (#/launch, or #/launch?clone=ID pre-filled from an instance):
// the configuration form with import and export of configuration files.
import { api } from '../lib/api.js';
import { download, h, readFileText, replace } from '../lib/dom.js';
import { cloneEdits, configToForm, emptyForm, formToConfig, withoutSecrets } from '../lib/launch-config.js';
import { createLaunchForm } from './launch-form.js';

// Everything the form offers to choose from, loaded in parallel. The vault
// list is only for the NGC_API_KEY hint, so its failure is not fatal.
async function loadChoices() {
  const [queues, routes, projects, vault] = await Promise.all([
    api('GET', '/api/v1/queues'),
    api('GET', '/api/v1/routes'),
    api('GET', '/api/v1/projects'),
    api('GET', '/api/v1/vault').catch(() => ({ entries: [] })),
  ]);
  return {
    queues: queues.queues || [],
    routes: routes.routes || [],
    projects: projects.projects || [],
    vaultNames: new Set((vault.entries || []).map((entry) => entry.name)),
  };
}

function configFilename(config) {
  return `${String(config.name || 'configuration').replace(/[^A-Za-z0-9._-]+/g, '_')}.json`;
}

export default async function render(root, ctx) {
  const cloneId = ctx.query.clone || null;
  const [choices, source] = await Promise.all([
    loadChoices(),
    cloneId ? Promise.all([
      api('GET', `/api/v1/apps/${encodeURIComponent(cloneId)}`),
      api('GET', `/api/v1/apps/${encodeURIComponent(cloneId)}/export`),
    ]) : null,
  ]);
  if (!ctx.isCurrent()) return;
  const [sourceApp, sourceConfig] = source || [null, null];

  const form = createLaunchForm({ ...choices, admin: ctx.user.admin, cloneOf: cloneId });
  const generalError = h('div', { class: 'notice error', role: 'alert', id: 'launch-error', hidden: true });
  const importNotice = h('div', { class: 'notice', role: 'status', id: 'launch-import-notice', hidden: true });
  const fileInput = h('input', { type: 'file', id: 'launch-import-file', accept: '.json,application/json', hidden: true });
  const submit = h('button', { type: 'submit', id: 'launch-submit' }, cloneId ? 'Launch clone' : 'Launch');

  function showImportNotice(parts, tone) {
    importNotice.className = `notice ${tone}`;
    replace(importNotice, parts);
    importNotice.hidden = false;
  }

  function showGeneralError(message) {
    replace(generalError, message);
    generalError.hidden = false;
    generalError.scrollIntoView({ block: 'nearest' });
  }

  // Fill the form from a configuration, reporting keys that did not fit.
  // Anything but a JSON object leaves the form as it is.
  function applyConfig(config, origin) {
    if (config === null || typeof config !== 'object' || Array.isArray(config)) {
      showImportNotice(`${origin} is not a configuration: it must hold one JSON object, such as a file saved by "Export configuration". The form is unchanged.`, 'error');
      return;
    }
    const { values, problems } = configToForm(config);
    form.setValues(values);
    form.clearErrors();
    generalError.hidden = true;
    const unplaced = problems.filter((p) => !form.showFieldError(p.field, p.message));
    if (problems.length === 0) {
      showImportNotice(`Filled the form from ${origin}.`, 'ok');
    } else {
      showImportNotice([`Filled the form from ${origin}, except:`,
        h('ul', {}, (unplaced.length ? unplaced : problems).map((p) => h('li', {}, p.message)))], 'warn');
    }
  }

  // The form as a configuration; a field error is shown and null returned
  // when a field cannot be turned into a value.
  function readConfig() {
    form.clearErrors();
    generalError.hidden = true;
    try {
      return formToConfig(form.getValues());
    } catch (err) {
      if (!form.showFieldError(err.field, err.message)) showGeneralError(err.message);
      return null;
    }
  }

  async function onImport() {
    const file = fileInput.files[0];
    fileInput.value = '';
    if (!file) return;
    let config;
    try {
      config = JSON.parse(await readFileText(file));
    } catch (err) {
      showImportNotice(`${file.name} is not a JSON configuration: ${err.message}`, 'error');
      return;
    }
    applyConfig(config, file.name);
  }

  // Like the server's export, the file contains each secret as null, so a
  // value typed into the form never lands in a file on disk. On import, a
  // null is taken from the vault.
  function onExport() {
    const config = readConfig();
    if (!config) return;
    const blanked = withoutSecrets(config);
    download(configFilename(config), `${JSON.stringify(config, null, 2)}\n`);
    const note = blanked.length === 0 ? ''
      : ` The secret ${blanked.length === 1 ? 'value' : 'values'} of ${blanked.join(', ')} ${blanked.length === 1 ? 'is' : 'are'} written as null: an import takes ${blanked.length === 1 ? 'it' : 'them'} from the vault.`;
    showImportNotice(`Saved the configuration as ${configFilename(config)}.${note}`, 'ok');
  }

  async function onSubmit(event) {
    event.preventDefault();
    const config = readConfig();
    if (!config) return;
    submit.disabled = true;
    try {
      // A clone goes through the clone endpoint with the edits only, so the
      // source's secrets (null in the export) carry over unchanged.
      const app = cloneId
        ? await api('POST', `/api/v1/apps/${encodeURIComponent(cloneId)}/clone`, { edits: cloneEdits(sourceConfig, config) })
        : await api('POST', '/api/v1/apps', config);
      ctx.navigate(`#/apps/${encodeURIComponent(app.id)}`);
    } catch (err) {
      if (err.status === 401) {
        // The session-ended dialog is open; the form stays as it is.
        showGeneralError(`Not launched: the session ended. Log in again, then press "${submit.textContent}" once more.`);
        return;
      }
      let shown = form.showFieldError(err.field, err.message);
      if (!shown && err.status === 409 && /route/i.test(err.message)) shown = form.showFieldError('route', err.message);
      // A missing permission is about the project the instance goes to.
      if (!shown && err.status === 403 && /project/i.test(err.message)) shown = form.showFieldError('project', err.message);
      if (!shown) showGeneralError(err.message);
    } finally {
      submit.disabled = false;
    }
  }

  fileInput.addEventListener('change', onImport);

  const heading = cloneId
    ? h('h1', {}, 'Clone ', h('a', { href: `#/apps/${encodeURIComponent(cloneId)}` }, `${sourceApp.name} (${cloneId})`))
    : h('h1', {}, 'Launch an instance');

  root.append(
    h('form', { class: 'launch-page', id: 'launch-form', onsubmit: onSubmit, novalidate: true },
      h('div', { class: 'page-head' }, heading, h('span', { class: 'spacer' }),
        h('div', { class: 'toolbar' },
          h('button', { type: 'button', class: 'secondary', id: 'launch-import', onclick: () => fileInput.click() }, 'Import configuration'),
          h('button', { type: 'button', class: 'secondary', id: 'launch-export', onclick: onExport }, 'Export configuration'),
          fileInput)),
      importNotice,
      cloneId ? h('p', { class: 'muted' }, 'The form holds the source instance\'s configuration. What you change is applied to a copy; its secrets are kept.') : null,
      form.element,
      generalError,
      h('div', { class: 'toolbar' }, submit, h('a', { class: 'button secondary', href: '#/apps' }, 'Cancel'))));

  if (sourceConfig) {
    form.setValues(configToForm(sourceConfig).values);
  } else {
    form.setValues(emptyForm());
  }
  document.getElementById('launch-name').focus();
}
