// Runs before the page paints: the theme chosen earlier (localStorage), else the system's.
(function () {
  const chosen = window.localStorage.getItem("gql-jobs:theme");
  if (chosen === "light" || chosen === "dark") document.documentElement.dataset.theme = chosen;
})();
