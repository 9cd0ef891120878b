// The app's settings, read once at start-up (server.js) and passed in. This file is the app's:
// `cafe24-oauth generate` writes it once and never touches it again, so add the app's own
// settings here. The Cafe24 module's settings — the contract's names and rules — are read by
// auth/settings.js, which is regenerated with the module.

export { ConfigError, loadSettings } from '../auth/settings.js';

/** @typedef {import('../auth/settings.js').Settings} Settings */
