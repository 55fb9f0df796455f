// The theme toggle: System → Light → Dark → System. "System" follows prefers-color-scheme;
// the choice is remembered in localStorage.

const KEY = 'faramesh.theme';
const ORDER = ['system', 'light', 'dark'];
const NAMES = { system: 'System', light: 'Light', dark: 'Dark' };

function current() {
  const t = document.documentElement.dataset.theme;
  return t === 'light' || t === 'dark' ? t : 'system';
}

function apply(theme) {
  if (theme === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  try {
    if (theme === 'system') localStorage.removeItem(KEY); else localStorage.setItem(KEY, theme);
  } catch { /* storage unavailable: the choice lasts for this page */ }
}

export function initThemeToggle(button) {
  const label = () => {
    const theme = current();
    const next = ORDER[(ORDER.indexOf(theme) + 1) % ORDER.length];
    button.textContent = `Theme: ${NAMES[theme]}`;
    button.setAttribute('aria-label', `Colour theme: ${NAMES[theme]}. Switch to ${NAMES[next]}`);
  };
  button.addEventListener('click', () => {
    const theme = current();
    apply(ORDER[(ORDER.indexOf(theme) + 1) % ORDER.length]);
    label();
  });
  label();
}
