// Light and dark theme: the choice is stored in localStorage, the default
// follows prefers-color-scheme. Views that draw with colours (plots) listen
// for the `nimdeck-theme` event on window, whose detail is the new theme.

const storageKey = 'nimdeck-theme';

// The theme now shown: "light" or "dark".
export function currentTheme() {
  return document.documentElement.dataset.theme === 'dark' ? 'dark' : 'light';
}

// Show theme ("light" or "dark"), remember it, and tell listeners.
export function setTheme(theme) {
  const value = theme === 'dark' ? 'dark' : 'light';
  document.documentElement.dataset.theme = value;
  try {
    localStorage.setItem(storageKey, value);
  } catch {
    // Storage disabled (private mode): the choice lasts for this page only.
  }
  window.dispatchEvent(new CustomEvent('nimdeck-theme', { detail: value }));
}

// The computed value of a CSS variable of the theme, e.g. cssVar('--accent').
export function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}
