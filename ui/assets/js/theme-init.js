// Applies the remembered colour theme before the first paint (a classic script in <head>).
// Without a remembered choice the stylesheet follows the system's preference.
try {
  var theme = localStorage.getItem('faramesh.theme');
  if (theme === 'light' || theme === 'dark') document.documentElement.dataset.theme = theme;
} catch (e) { /* storage unavailable: follow the system */ }
