// The launch form's fields: building them, reading and writing their
// values (the plain values of lib/launch-config.js), and showing a field
// error beside the field the server named.
import { h, replace } from '../lib/dom.js';
import { dockerKeys, isSecretName } from '../lib/launch-config.js';

const dockerLabels = {
  shm_size: ['Shared memory size', 'e.g. 16g; NIMs with several GPUs need a large /dev/shm'],
  cache: ['Model cache', 'a volume name or an absolute host path, mounted as the NIM cache'],
  user: ['User', 'user or uid:gid the container runs as'],
  network: ['Network', null],
  publish_address: ['Publish address', 'host address the container port is published on'],
  pull: ['Pull policy', null],
};

// One labelled field with a hint and an error line, wired with
// aria-describedby so screen readers read both.
function field(id, label, input, hint) {
  const hintEl = hint ? h('div', { class: 'hint', id: `${id}-hint` }, hint) : null;
  const errorEl = h('div', { class: 'field-error', id: `${id}-error`, hidden: true });
  input.setAttribute('aria-describedby', [hintEl ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(' '));
  const wrapper = h('div', { class: 'field' }, h('label', { for: id }, label), input, hintEl, errorEl);
  return { wrapper, input, errorEl, hintEl };
}

function select(id, options) {
  return h('select', { id }, options.map(([value, label]) => h('option', { value }, label)));
}

// Build the form. options: {queues, routes, projects, vaultNames (Set),
// admin, cloneOf (instance id or null)}. Returns the element and methods.
export function createLaunchForm(options) {
  const fields = {};
  const add = (key, built) => { fields[key] = built; return built.wrapper; };

  // Model
  const name = add('name', field('launch-name', 'Name', h('input', { id: 'launch-name', placeholder: 'llama-3-8b', autocomplete: 'off' }),
    '1–64 letters, digits, dots, dashes or underscores.'));
  const projectList = h('datalist', { id: 'launch-projects' }, options.projects.map((p) => h('option', { value: p.name })));
  const project = add('project', field('launch-project', 'Project', h('input', { id: 'launch-project', list: 'launch-projects', autocomplete: 'off', required: true }),
    'Who may see and call the instance is set per project.'));
  const image = add('image', field('launch-image', 'Image', h('input', { id: 'launch-image', placeholder: 'nvcr.io/nim/meta/llama-3.1-8b-instruct', autocomplete: 'off', spellcheck: 'false' })));
  const tag = add('tag', field('launch-tag', 'Tag', h('input', { id: 'launch-tag', placeholder: 'latest', autocomplete: 'off', spellcheck: 'false' })));
  const runtimeSelect = h('select', { id: 'launch-runtime' },
    h('option', { value: 'docker' }, 'docker: the image in a container'),
    h('option', { value: 'process', disabled: !options.admin }, options.admin ? 'process: a command on the agent' : 'process: a command on the agent (admins only)'));
  const runtime = add('runtime', field('launch-runtime', 'Runtime', runtimeSelect,
    options.admin ? 'process runs the command as the agent\'s OS user, so only admins may use it.' : null));
  const command = add('command', field('launch-command', 'Command',
    // wrap=off: a long argument scrolls instead of wrapping, so that every
    // line seen is one argument.
    h('textarea', { id: 'launch-command', rows: 5, spellcheck: 'false', class: 'mono', wrap: 'off' }),
    ['One argument per line (or a JSON array). ', h('code', {}, '{port}'), ' becomes the instance\'s port. Required for process; for docker it replaces the image\'s command.']));
  const port = add('port', field('launch-port', 'Port', h('input', { id: 'launch-port', type: 'number', min: 1, max: 65535, step: 1, placeholder: 'chosen by the agent' })));
  const healthPath = add('healthPath', field('launch-health-path', 'Health path', h('input', { id: 'launch-health-path', spellcheck: 'false' })));
  const gpusMode = select('launch-gpus', [['none', 'None'], ['all', 'All of the agent\'s GPUs'], ['count', 'A number of GPUs'], ['ids', 'These device ids']]);
  const gpusValue = h('input', { id: 'launch-gpus-value', 'aria-label': 'GPU count or device ids', placeholder: '', autocomplete: 'off' });
  const gpus = add('gpus', field('launch-gpus', 'GPUs', gpusMode, null));
  fields.gpus.wrapper.insertBefore(gpusValue, fields.gpus.errorEl);

  // Placement
  const queueSelect = h('select', { id: 'launch-queue' });
  const queue = add('queue', field('launch-queue', 'Queue', queueSelect, 'An agent serving this queue starts the instance.'));
  const routeSelect = h('select', { id: 'launch-route' });
  const route = add('route', field('launch-route', 'Gateway route', routeSelect,
    'A fixed endpoint path made by an admin, or none for a random path that lives as long as the instance.'));
  const idle = add('idle', field('launch-idle', 'Idle time limit (hours)', h('input', { id: 'launch-idle', type: 'number', min: 0, step: 'any', placeholder: 'never stop' }),
    'Stopped after this long without requests; empty or 0 never stops it.'));
  const tags = add('tags', field('launch-tags', 'Tags', h('input', { id: 'launch-tags', placeholder: 'demo, team-a', autocomplete: 'off' }), 'Comma separated.'));

  // Environment
  const envRows = h('div', { class: 'env-rows', id: 'launch-env' });
  const envError = h('div', { class: 'field-error', id: 'launch-env-error', hidden: true });
  const vaultHint = h('div', { class: 'hint', id: 'launch-vault-hint', role: 'status' });
  const addEnv = h('button', { type: 'button', class: 'secondary small', id: 'launch-env-add' }, 'Add variable');
  fields.env = { wrapper: envRows, input: addEnv, errorEl: envError };

  // Docker options
  const dockerInputs = {};
  const dockerFields = dockerKeys.map((key) => {
    const id = `launch-docker-${key.replace(/_/g, '-')}`;
    let input;
    if (key === 'network') {
      input = select(id, [['', 'default (bridge)'], ['bridge', 'bridge'], ['host', 'host']]);
    } else if (key === 'pull') {
      input = select(id, [['', 'default (missing)'], ['missing', 'missing: pull when not present'], ['always', 'always']]);
    } else {
      input = h('input', { id, autocomplete: 'off', spellcheck: 'false' });
    }
    dockerInputs[key] = input;
    const built = field(id, dockerLabels[key][0], input, dockerLabels[key][1]);
    fields[`docker.${key}`] = built;
    return built.wrapper;
  });
  const dockerDetails = h('details', { id: 'launch-docker' },
    h('summary', {}, 'Docker options'),
    h('div', { class: 'field-row', style: { marginTop: '0.6rem' } }, dockerFields));

  const secretNote = options.cloneOf
    ? 'A ticked "keep" value is the source instance\'s secret, kept as it is.'
    : 'A ticked "vault" value comes from your vault entry of that name.';

  const element = h('div', { class: 'launch-form' },
    h('div', { class: 'grid-2' },
      h('fieldset', {}, h('legend', {}, 'Model'), name, project, projectList,
        h('div', { class: 'field-row' }, image, tag), runtime, command,
        h('div', { class: 'field-row' }, port, healthPath), gpus),
      h('fieldset', {}, h('legend', {}, 'Placement'), queue, route, idle, tags)),
    h('fieldset', {}, h('legend', {}, 'Environment variables'),
      h('p', { class: 'hint muted small' }, `Values of names containing KEY, TOKEN, SECRET, PASSWORD or CREDENTIAL are secrets: masked in logs and exported as null. ${secretNote}`),
      envRows, envError, h('div', { class: 'toolbar' }, addEnv), vaultHint),
    h('fieldset', {}, h('legend', {}, 'Docker'), dockerDetails));

  let hasDocker = false;
  let dockerExtra = {};
  let extra = {};
  let version = 1;

  function fillQueues(current) {
    const names = options.queues.map((q) => q.name);
    replace(queueSelect, options.queues.map((q) => h('option', { value: q.name },
      `${q.name} (${q.agents} agent${q.agents === 1 ? '' : 's'}, ${q.queued} queued)`)));
    if (current && !names.includes(current)) queueSelect.append(h('option', { value: current }, `${current} (not found)`));
    queueSelect.value = current || 'default';
  }

  function fillRoutes(current) {
    replace(routeSelect, h('option', { value: '' }, 'None: a random path for this instance'),
      options.routes.map((r) => {
        const held = Boolean(r.instance_id);
        return h('option', { value: r.name, disabled: held && r.name !== current },
          held ? `${r.name} (held by ${r.instance_id})` : r.name);
      }));
    if (current && !options.routes.some((r) => r.name === current)) {
      routeSelect.append(h('option', { value: current }, `${current} (not found)`));
    }
    routeSelect.value = current || '';
  }

  function updateRuntime() {
    const isProcess = runtimeSelect.value === 'process';
    fields.command.wrapper.querySelector('label').textContent = isProcess ? 'Command (required)' : 'Command (optional)';
  }

  function updateGpus() {
    const mode = gpusMode.value;
    gpusValue.hidden = mode === 'none' || mode === 'all';
    gpusValue.placeholder = mode === 'count' ? '1' : '0,1';
  }

  // Show what the vault contributes, and warn when an NVIDIA NIM image
  // would start without NGC_API_KEY.
  function updateVaultHint() {
    const rows = readEnv();
    const ngcRow = rows.find((row) => row.key.trim() === 'NGC_API_KEY');
    const parts = [];
    let tone = 'hint';
    // Only entries named like environment variables reach the instance.
    const vault = [...options.vaultNames].filter((n) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(n));
    let vaultShown = false;
    if (ngcRow && !ngcRow.fromVault) {
      // The form gives the key itself: nothing to say about the vault.
    } else if (options.vaultNames.has('NGC_API_KEY')) {
      parts.push(h('span', { id: 'launch-ngc-hint' }, 'NGC_API_KEY will come from your vault.'), ' ');
      vaultShown = true;
    } else if (ngcRow && ngcRow.fromVault && options.cloneOf) {
      parts.push(h('span', { id: 'launch-ngc-hint' }, 'NGC_API_KEY is kept from the source instance.'), ' ');
    } else if (ngcRow || fields.image.input.value.trim().startsWith('nvcr.io/nim/')) {
      tone = 'hint notice warn';
      parts.push(h('span', { id: 'launch-ngc-hint' }, 'Images under nvcr.io/nim/ need NGC_API_KEY: save it in the vault under ',
        h('a', { href: '#/settings?section=vault' }, 'Settings'), ', or add it here with a value.'), ' ');
    }
    const others = vaultShown ? vault.filter((n) => n !== 'NGC_API_KEY') : vault;
    if (others.length > 0) {
      parts.push(`Your vault ${vaultShown ? 'also sets' : 'sets'} ${others.join(', ')} in every instance; a variable here overrides it.`);
    }
    vaultHint.className = tone;
    replace(vaultHint, parts);
  }

  function envRow(row = { key: '', value: '', fromVault: false }) {
    const index = envRows.children.length;
    const keyInput = h('input', { class: 'env-key mono', value: row.key, 'aria-label': `Variable ${index + 1} name`, placeholder: 'NAME', autocomplete: 'off', spellcheck: 'false' });
    const valueInput = h('input', { class: 'env-value mono', value: row.value, 'aria-label': `Variable ${index + 1} value`, placeholder: 'value', autocomplete: 'off', spellcheck: 'false' });
    const vaultBox = h('input', { type: 'checkbox', class: 'env-vault', checked: row.fromVault, 'aria-label': `Variable ${index + 1}: ${options.cloneOf ? 'keep the source instance\'s value' : 'take the value from the vault'}` });
    const remove = h('button', { type: 'button', class: 'secondary small', 'aria-label': `Remove variable ${index + 1}` }, 'Remove');
    const error = h('div', { class: 'field-error env-error', hidden: true });
    const line = h('div', { class: 'env-row' }, keyInput, valueInput,
      h('label', { class: 'inline env-vault-label' }, vaultBox, options.cloneOf ? 'keep' : 'vault'), remove, error);

    function sync() {
      valueInput.disabled = vaultBox.checked;
      const keptText = options.cloneOf ? 'kept from the source instance' : 'from the vault';
      valueInput.placeholder = vaultBox.checked ? keptText : 'value';
      valueInput.type = isSecretName(keyInput.value) && !vaultBox.checked ? 'password' : 'text';
      updateVaultHint();
    }
    keyInput.addEventListener('input', sync);
    vaultBox.addEventListener('change', sync);
    remove.addEventListener('click', () => {
      line.remove();
      updateVaultHint();
      addEnv.focus();
    });
    envRows.append(line);
    sync();
    return keyInput;
  }

  function readEnv() {
    return [...envRows.querySelectorAll('.env-row')].map((line) => ({
      key: line.querySelector('.env-key').value,
      value: line.querySelector('.env-value').value,
      fromVault: line.querySelector('.env-vault').checked,
    }));
  }

  addEnv.addEventListener('click', () => envRow().focus());
  runtimeSelect.addEventListener('change', updateRuntime);
  gpusMode.addEventListener('change', updateGpus);
  fields.image.input.addEventListener('input', updateVaultHint);

  function setValues(values) {
    version = values.version;
    fields.name.input.value = values.name;
    fields.project.input.value = values.project;
    fields.image.input.value = values.image;
    fields.tag.input.value = values.tag;
    runtimeSelect.value = values.runtime;
    fields.command.input.value = values.command;
    fields.port.input.value = values.port;
    fields.healthPath.input.value = values.healthPath;
    gpusMode.value = values.gpusMode;
    gpusValue.value = values.gpusValue;
    fillQueues(values.queue);
    fillRoutes(values.route);
    fields.idle.input.value = values.idleHours;
    fields.tags.input.value = values.tags;
    envRows.replaceChildren();
    values.env.forEach((row) => envRow(row));
    for (const key of dockerKeys) dockerInputs[key].value = values.docker[key] || '';
    hasDocker = values.hasDocker;
    dockerExtra = values.dockerExtra;
    extra = values.extra;
    dockerDetails.open = dockerKeys.some((key) => values.docker[key]);
    updateRuntime();
    updateGpus();
    updateVaultHint();
  }

  function getValues() {
    return {
      version,
      name: fields.name.input.value,
      project: fields.project.input.value,
      image: fields.image.input.value,
      tag: fields.tag.input.value,
      runtime: runtimeSelect.value,
      command: fields.command.input.value,
      queue: queueSelect.value,
      route: routeSelect.value,
      idleHours: fields.idle.input.value,
      port: fields.port.input.value,
      healthPath: fields.healthPath.input.value,
      env: readEnv(),
      tags: fields.tags.input.value,
      gpusMode: gpusMode.value,
      gpusValue: gpusValue.value,
      docker: Object.fromEntries(dockerKeys.map((key) => [key, dockerInputs[key].value])),
      dockerExtra,
      hasDocker,
      extra,
    };
  }

  function clearErrors() {
    for (const built of Object.values(fields)) {
      built.errorEl.hidden = true;
      if (built.input) built.input.removeAttribute('aria-invalid');
    }
    for (const el of envRows.querySelectorAll('.env-error')) el.hidden = true;
    for (const el of envRows.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  }

  // Show message beside the field that the server's `field` names, such as
  // "env.NAME", "docker.shm_size", "command[2]" or "idle_time_limit_hours".
  // Focuses that field and returns true, or returns false when no field of
  // the form matches.
  function showFieldError(serverField, message) {
    if (!serverField) return false;
    const [head, ...rest] = serverField.split('.');
    const top = head.replace(/\[.*$/, '');

    if (top === 'env' && rest.length > 0) {
      const key = rest.join('.');
      const line = [...envRows.querySelectorAll('.env-row')].find((row) => row.querySelector('.env-key').value.trim() === key);
      if (line) {
        const error = line.querySelector('.env-error');
        replace(error, message);
        error.hidden = false;
        const input = line.querySelector('.env-vault').checked ? line.querySelector('.env-key') : line.querySelector('.env-value');
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        return true;
      }
    }
    if (top === 'docker' && rest.length > 0) {
      dockerDetails.open = true;
    }

    const keyMap = { idle_time_limit_hours: 'idle', health_path: 'healthPath', env: 'env', docker: 'docker.shm_size' };
    const key = top === 'docker' && rest.length > 0 ? `docker.${rest[0]}` : (keyMap[top] || top);
    const built = fields[key];
    if (!built) return false;
    if (key === 'docker.shm_size' && rest.length === 0) dockerDetails.open = true;
    replace(built.errorEl, message);
    built.errorEl.hidden = false;
    built.input.setAttribute('aria-invalid', 'true');
    built.input.focus();
    return true;
  }

  return { element, setValues, getValues, clearErrors, showFieldError };
}
