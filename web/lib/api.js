// Client for the nimdeck REST API (/api/v1), the same API the CLI uses.
// The browser sends the HttpOnly session cookie by itself; the embed page
// has no session and sets a bearer token with setToken instead.

// An HTTP error from the API: status, the `code` and `message` of the
// error object, and `field` when one configuration key is at fault.
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

let bearer = null;
const unauthorizedHandlers = new Set();

// Send `Authorization: Bearer TOKEN` on every later request (null: stop).
export function setToken(token) {
  bearer = token || null;
}

// Call fn(error) whenever a request gets 401, e.g. to show the login page.
// Returns a function that removes the handler.
export function onUnauthorized(fn) {
  unauthorizedHandlers.add(fn);
  return () => unauthorizedHandlers.delete(fn);
}

// Build the full path: "/apps" and "apps" mean "/api/v1/apps"; a path that
// already starts with "/api/" is used as given.
export function apiPath(path) {
  if (path.startsWith('/api/')) return path;
  return `/api/v1/${path.replace(/^\/+/, '')}`;
}

// fetch() an API path with the credentials of this page; returns the raw
// Response (for CSV downloads and the like) without checking its status.
export function apiFetch(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (bearer) headers.set('Authorization', `Bearer ${bearer}`);
  // The server accepts a state-changing request with the session cookie
  // only with this header (or a JSON body), which a form on another site
  // cannot send: a defence against cross-site request forgery.
  headers.set('X-Requested-With', 'nimdeck');
  return fetch(apiPath(path), { credentials: 'same-origin', cache: 'no-store', ...options, headers });
}

// Call the API and return the parsed JSON body (null for an empty body).
// Throws ApiError for any non-2xx status, and for network failures with
// status 0 and code "network".
export async function api(method, path, body) {
  const options = { method };
  if (body !== undefined) {
    options.body = JSON.stringify(body);
    options.headers = { 'Content-Type': 'application/json' };
  }

  let res;
  try {
    res = await apiFetch(path, options);
  } catch (err) {
    throw new ApiError(0, 'network', `the server at ${location.origin} does not respond (${err.message}); it may have stopped`);
  }

  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.ok) return data;

  const error = data && data.error ? data.error : {};
  const apiError = new ApiError(res.status, error.code || `http_${res.status}`,
    error.message || `${method} ${apiPath(path)} failed with HTTP ${res.status}`, error.field);
  if (res.status === 401) {
    for (const fn of unauthorizedHandlers) fn(apiError);
  }
  throw apiError;
}
