// Conversions between an instance configuration (the JSON of POST
// /api/v1/apps and of exports) and the launch form's plain values, and the
// clone edits between two configurations. No DOM here, so node can test it.

export const defaultHealthPath = '/v1/health/ready';

// Keys the form has a field for. Any other key of an imported configuration
// is kept as it is and sent along, so the server names it if it is wrong.
const formKeys = new Set(['version', 'name', 'project', 'image', 'runtime', 'command', 'queue', 'route',
  'idle_time_limit_hours', 'env', 'tags', 'gpus', 'port', 'health_path', 'docker']);
export const dockerKeys = ['shm_size', 'cache', 'user', 'network', 'publish_address', 'pull'];

// Environment variable names whose values are secrets (as the server
// decides): the name contains one of these words, in any case.
const secretWords = ['KEY', 'TOKEN', 'SECRET', 'PASSWORD', 'CREDENTIAL'];

export function isSecretName(name) {
  const upper = String(name).toUpperCase();
  return secretWords.some((word) => upper.includes(word));
}

// Split "repo/name:tag" into image and tag. A colon before the last slash
// is a registry port, and a digest ("@sha256:…") stays in the image.
export function splitImage(reference) {
  const value = reference || '';
  const slash = value.lastIndexOf('/');
  const colon = value.lastIndexOf(':');
  if (colon <= slash || value.includes('@')) return { image: value, tag: '' };
  return { image: value.slice(0, colon), tag: value.slice(colon + 1) };
}

export function joinImage(image, tag) {
  const name = image.trim();
  const version = tag.trim();
  return version ? `${name}:${version}` : name;
}

// The command as text: one argument per line, or a JSON array when an
// argument is empty or contains a newline, or the first starts with "[",
// because those would not survive the one-per-line form.
export function commandToText(command) {
  if (!Array.isArray(command) || command.length === 0) return '';
  const needsJson = command.some((arg) => typeof arg !== 'string' || arg === '' || arg.includes('\n')) ||
    command[0].startsWith('[');
  return needsJson ? JSON.stringify(command) : command.join('\n');
}

// Parse the command text back into an argv array (null when empty).
// Throws an Error naming the problem when JSON text is not an array of
// strings.
export function textToCommand(text) {
  const trimmed = text.trim();
  if (!trimmed) return null;
  if (trimmed.startsWith('[')) {
    let parsed;
    try {
      parsed = JSON.parse(trimmed);
    } catch (err) {
      throw new Error(`the command starts with "[" but is not valid JSON: ${err.message}`);
    }
    if (!Array.isArray(parsed) || !parsed.every((arg) => typeof arg === 'string')) {
      throw new Error('a JSON command must be an array of strings');
    }
    return parsed;
  }
  return text.replace(/\r\n/g, '\n').replace(/\n+$/, '').split('\n');
}

// The form's GPU choice: mode "none", "all", "count" or "ids", with the
// count or the comma-separated device ids as text.
export function gpusToForm(gpus) {
  if (gpus === 'all') return { mode: 'all', value: '' };
  if (typeof gpus === 'number' && gpus > 0) return { mode: 'count', value: String(gpus) };
  if (Array.isArray(gpus) && gpus.length > 0) return { mode: 'ids', value: gpus.join(',') };
  return { mode: 'none', value: '' };
}

// True for a `gpus` value the form can show: absent, null, "all", a count
// of 0 or more, or an array of device ids.
function isGpusValue(gpus) {
  if (gpus === undefined || gpus === null || gpus === 'all') return true;
  if (typeof gpus === 'number') return Number.isInteger(gpus) && gpus >= 0;
  return Array.isArray(gpus) && gpus.every((id) => typeof id === 'string' || typeof id === 'number');
}

// Back from the form to the configuration value. A count that is not a
// whole number is passed on as text so the server's check names it.
export function formToGpus(mode, value) {
  if (mode === 'all') return 'all';
  if (mode === 'count') {
    const count = Number(value.trim());
    return Number.isInteger(count) && value.trim() !== '' ? count : value.trim();
  }
  if (mode === 'ids') return value.split(',').map((id) => id.trim()).filter(Boolean);
  return 0;
}

function numberOrNull(text) {
  const trimmed = String(text ?? '').trim();
  if (!trimmed) return null;
  const value = Number(trimmed);
  return Number.isNaN(value) ? trimmed : value;
}

// Form values from a configuration. Returns {values, problems}: problems
// lists what could not be shown in the form (wrong types), each
// {field, message}; those keys are left at their defaults.
export function configToForm(config) {
  const problems = [];
  const values = emptyForm();
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    return { values, problems: [{ field: null, message: 'the configuration must be a JSON object' }] };
  }

  const text = (key) => {
    const value = config[key];
    if (value === undefined || value === null) return '';
    if (typeof value === 'string' || typeof value === 'number') return String(value);
    problems.push({ field: key, message: `"${key}" must be a string, got ${JSON.stringify(value)}` });
    return '';
  };

  values.version = config.version ?? 1;
  values.name = text('name');
  values.project = text('project');
  Object.assign(values, splitImage(text('image')));
  values.runtime = text('runtime') || 'docker';
  values.queue = text('queue') || 'default';
  values.route = text('route');
  values.idleHours = config.idle_time_limit_hours === null || config.idle_time_limit_hours === undefined
    ? '' : String(config.idle_time_limit_hours);
  values.port = config.port === null || config.port === undefined ? '' : String(config.port);
  values.healthPath = config.health_path === undefined ? defaultHealthPath : text('health_path');

  if (config.command !== undefined && config.command !== null) {
    if (Array.isArray(config.command)) {
      values.command = commandToText(config.command);
    } else {
      problems.push({ field: 'command', message: '"command" must be an array of strings (one per argument)' });
    }
  }

  if (config.env !== undefined && config.env !== null) {
    if (typeof config.env === 'object' && !Array.isArray(config.env)) {
      values.env = Object.entries(config.env).map(([key, value]) => ({
        key,
        value: value === null ? '' : String(value),
        fromVault: value === null,
      }));
    } else {
      problems.push({ field: 'env', message: '"env" must be an object of NAME: value' });
    }
  }

  if (Array.isArray(config.tags)) {
    values.tags = config.tags.join(', ');
  } else if (config.tags !== undefined && config.tags !== null) {
    problems.push({ field: 'tags', message: '"tags" must be an array of strings' });
  }

  if (isGpusValue(config.gpus)) {
    Object.assign(values, { gpusMode: gpusToForm(config.gpus).mode, gpusValue: gpusToForm(config.gpus).value });
  } else {
    problems.push({ field: 'gpus', message: `"gpus" must be "all", a count, an array of device ids, or 0 or null for none, got ${JSON.stringify(config.gpus)}` });
  }

  if (config.docker !== undefined && config.docker !== null) {
    if (typeof config.docker === 'object' && !Array.isArray(config.docker)) {
      values.hasDocker = true;
      for (const [key, value] of Object.entries(config.docker)) {
        if (dockerKeys.includes(key)) {
          values.docker[key] = value === null ? '' : String(value);
        } else {
          values.dockerExtra[key] = value;
        }
      }
    } else {
      problems.push({ field: 'docker', message: '"docker" must be an object' });
    }
  }

  for (const [key, value] of Object.entries(config)) {
    if (!formKeys.has(key)) values.extra[key] = value;
  }
  return { values, problems };
}

// The values of a new, empty form.
export function emptyForm() {
  return {
    version: 1, name: '', project: '', image: '', tag: '', runtime: 'docker', command: '',
    queue: 'default', route: '', idleHours: '1', port: '', healthPath: defaultHealthPath,
    env: [], tags: '', gpusMode: 'none', gpusValue: '',
    docker: Object.fromEntries(dockerKeys.map((key) => [key, ''])), dockerExtra: {}, hasDocker: false,
    extra: {},
  };
}

// A configuration from form values, in the shape the server exports, so
// that an exported configuration imported and exported again is equal.
// Throws an Error with a `field` for text that cannot become a value.
export function formToConfig(values) {
  const config = { ...values.extra };
  config.version = values.version ?? 1;
  if (values.name.trim()) config.name = values.name.trim();
  if (values.project.trim()) config.project = values.project.trim();
  config.runtime = values.runtime;
  const image = joinImage(values.image, values.tag);
  if (image) config.image = image;

  let command;
  try {
    command = textToCommand(values.command);
  } catch (err) {
    err.field = 'command';
    throw err;
  }
  if (command) config.command = command;

  config.queue = values.queue || 'default';
  config.route = values.route || null;
  config.idle_time_limit_hours = numberOrNull(values.idleHours);
  config.env = {};
  for (const row of values.env) {
    const key = row.key.trim();
    if (!key) continue;
    config.env[key] = row.fromVault ? null : row.value;
  }
  config.tags = values.tags.split(',').map((tag) => tag.trim()).filter(Boolean);
  config.gpus = formToGpus(values.gpusMode, values.gpusValue);
  config.port = numberOrNull(values.port);
  config.health_path = values.healthPath.trim() || defaultHealthPath;

  const docker = { ...values.dockerExtra };
  for (const key of dockerKeys) {
    const value = (values.docker[key] || '').trim();
    if (value) docker[key] = value;
  }
  if (values.hasDocker || Object.keys(docker).length > 0) config.docker = docker;
  return config;
}

// Set every secret env value of config (a formToConfig result) to null, in
// place, as the server's export does. Returns the names it blanked.
export function withoutSecrets(config) {
  const blanked = [];
  for (const [key, value] of Object.entries(config.env || {})) {
    if (value !== null && isSecretName(key)) {
      config.env[key] = null;
      blanked.push(key);
    }
  }
  return blanked;
}

function sameJson(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// The clone edits (POST /api/v1/apps/ID/clone) that turn the exported
// configuration `from` into `to`. Nested objects (env, docker) are edited
// key by key, and a null env value that was null in the export stays
// untouched, so the source instance's secrets carry over to the clone.
export function cloneEdits(from, to) {
  const edits = [];
  const keys = new Set([...Object.keys(from), ...Object.keys(to)]);
  for (const key of keys) {
    const nested = key === 'env' || key === 'docker';
    const a = from[key];
    const b = to[key];
    if (nested && isObject(a) && isObject(b)) {
      for (const inner of new Set([...Object.keys(a), ...Object.keys(b)])) {
        if (!(inner in b)) {
          edits.push({ unset: `${key}.${inner}` });
        } else if (!(inner in a) || !sameJson(a[inner], b[inner])) {
          edits.push({ set: `${key}.${inner}`, value: b[inner] });
        }
      }
    } else if (!(key in to)) {
      edits.push({ unset: key });
    } else if (!(key in from) || !sameJson(a, b)) {
      edits.push({ set: key, value: b });
    }
  }
  return edits;
}

function isObject(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}
