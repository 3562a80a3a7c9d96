// Prettier for the Leads page's JavaScript (services/lifecycle/entrypoints/web/leads/*.js),
// pinned in package.json: `make format-js` formats it, `make test` checks it.
// The width is the Python's (ruff); the rest is the page's own style, written out.
export default {
  printWidth: 100,
  semi: true,
  singleQuote: false,
  trailingComma: "all",
  arrowParens: "always",
};
