// Apply the saved or preferred colour theme before the first paint. This is
// a classic script loaded in <head> (no inline scripts under the CSP), so
// the page never flashes in the wrong theme.
(function applyTheme() {
  let theme = null;
  try {
    theme = localStorage.getItem('nimdeck-theme');
  } catch {
    theme = null;
  }
  if (theme !== 'light' && theme !== 'dark') {
    theme = window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  }
  document.documentElement.dataset.theme = theme;
})();
