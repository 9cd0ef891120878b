// The Cafe24 OAuth module's public surface: start it once with startCafe24(settings), mount its
// routers, and use `cafe24.client.mall(mallId)` (the Admin API) or `cafe24.tokens` from the
// app's own code. docs: README.md.

export { Cafe24, startCafe24 } from './runtime.js';
export { oauthRouter } from './oauth.js';
export { healthRouter } from './health.js';
export { proxyRouter } from './proxy.js';
export { errorHandler, notFound, requestLimits, HttpError } from './errors.js';
export {
  Cafe24ApiError,
  Cafe24Deadline,
  Cafe24Refused,
  Cafe24Unreachable,
  InvalidApiRequest,
  MalformedAnswer,
  NoProgress,
} from './cafe24-client.js';
export { NeedsReauth, NotInstalled, Revoked, TokenError, TokenUnavailable } from './token-manager.js';
export { Secret } from './secret.js';
export { generateKeyEntry } from './crypto.js';
