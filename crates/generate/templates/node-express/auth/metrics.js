// Prometheus/OpenMetrics counters (docs/contract.md §3.7): the callback outcomes under the
// runtime's name, requests per route template (never the raw path, which holds values), and
// which budget paced each Admin API attempt (§6.8), under the runtime's names.

/** @import { RequestHandler } from 'express' */

export const CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

const FAMILIES = {
  cafe24_oauth_http_requests: 'HTTP requests answered, by route template, method and status.',
  cafe24_oauth_callback_outcomes: 'Answers of /oauth/callback, by outcome.',
  cafe24_api_paced:
    "Admin API attempts by the budget that paced them (shared: the mall's fleet-wide budget in " +
    "PostgreSQL; fallback: this process's share while that did not answer).",
};

/** @typedef {keyof typeof FAMILIES} Family */

/** @param {string} value */
function escapeLabel(value) {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** @param {Record<string, string>} labels */
function labelKey(labels) {
  return Object.entries(labels)
    .map(([name, value]) => `${name}="${escapeLabel(value)}"`)
    .join(',');
}

/** The process's counters; one per runtime, never a global registry. */
export class Metrics {
  /** @type {Map<Family, Map<string, number>>} */
  #samples = new Map();

  /**
   * @param {Family} family
   * @param {Record<string, string>} labels
   */
  inc(family, labels) {
    const key = labelKey(labels);
    let samples = this.#samples.get(family);
    if (samples === undefined) {
      samples = new Map();
      this.#samples.set(family, samples);
    }
    samples.set(key, (samples.get(key) ?? 0) + 1);
  }

  /**
   * A counter's current value (0 until counted).
   * @param {Family} family
   * @param {Record<string, string>} labels in the order they were counted with
   */
  value(family, labels) {
    return this.#samples.get(family)?.get(labelKey(labels)) ?? 0;
  }

  /**
   * @param {string} outcome saved, denied, bad_request, missing_parameter, invalid_code,
   *   invalid_state, state_expired, state_replayed, too_many_pending, database_unavailable,
   *   internal_error
   */
  callbackOutcome(outcome) {
    this.inc('cafe24_oauth_callback_outcomes', { outcome });
  }

  /**
   * One Admin API attempt, by the budget that paced it.
   * @param {'shared' | 'fallback'} budget
   */
  paced(budget) {
    this.inc('cafe24_api_paced', { budget });
  }

  /** Counts every answered request by its route template. @returns {RequestHandler} */
  middleware() {
    return (req, res, next) => {
      res.once('finish', () => {
        const route = req.route ? `${req.baseUrl}${req.route.path}` : 'unmatched';
        this.inc('cafe24_oauth_http_requests', { route, method: req.method, status: String(res.statusCode) });
      });
      next();
    };
  }

  /** The exposition text. */
  render() {
    const lines = [];
    for (const [family, help] of Object.entries(FAMILIES)) {
      lines.push(`# TYPE ${family} counter`, `# HELP ${family} ${help}`);
      for (const [labels, value] of this.#samples.get(/** @type {Family} */ (family)) ?? []) {
        lines.push(`${family}_total{${labels}} ${value}`);
      }
    }
    lines.push('# EOF', '');
    return lines.join('\n');
  }
}
