// Applies the `cafe24` schema (docs/contract.md §6.1): the runtime's migration files, byte for
// byte, recorded in cafe24.schema_migrations with the same names and checksums, under the same
// advisory lock, so this module and any other implementation migrate one database in any order.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';

import { silentLogger } from './logger.js';

/** @import pg from 'pg' */
/** @import { Logger } from './logger.js' */

export const MIGRATION_LOCK = 0xcafe2400;
const MIGRATIONS_DIR = new URL('../migrations/', import.meta.url);
const KNOWN = /** @type {const} */ ([
  [1, 'initial', '0001_initial.sql'],
  [2, 'lifecycle', '0002_lifecycle.sql'],
  [3, 'webhooks', '0003_webhooks.sql'],
  [4, 'reliability', '0004_reliability.sql'],
  [5, 'fleet', '0005_fleet.sql'],
]);
const BOOTSTRAP = `
CREATE SCHEMA IF NOT EXISTS cafe24;
CREATE TABLE IF NOT EXISTS cafe24.schema_migrations (
    version bigint PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())
`;

/** The database holds a schema this module cannot work with. */
export class MigrationError extends Error {
  name = 'MigrationError';
}

/** @typedef {{ version: number, name: string, sql: Buffer, checksum: string }} Migration */

/**
 * The migrations this module knows; the checksum is the lowercase hex SHA-256 of the file.
 * @returns {Promise<Migration[]>}
 */
export async function knownMigrations() {
  return Promise.all(
    KNOWN.map(async ([version, name, file]) => {
      const sql = await readFile(new URL(file, MIGRATIONS_DIR));
      return { version, name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

/**
 * Applies what is missing, each migration in one transaction, on `client` alone (a session of
 * its own, not a pooled connection another caller could use meanwhile).
 * @param {pg.ClientBase} client
 * @param {{ logger?: Logger }} [options]
 * @returns {Promise<number[]>} the versions applied now
 */
export async function migrate(client, { logger = silentLogger } = {}) {
  const known = await knownMigrations();
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK]);
  try {
    await client.query(BOOTSTRAP);
    const { rows } = await client.query('SELECT version, checksum FROM cafe24.schema_migrations');
    const applied = new Map(rows.map((row) => [Number(row.version), String(row.checksum)]));
    const newest = Math.max(...known.map((m) => m.version));
    const highest = Math.max(0, ...applied.keys());
    if (highest > newest) {
      throw new MigrationError(
        `the database holds a newer schema (version ${highest}); upgrade this module to the same contract version`,
      );
    }
    for (const m of known) {
      if (applied.has(m.version) && applied.get(m.version) !== m.checksum) {
        throw new MigrationError(`migration ${m.version} (${m.name}) was applied with different contents`);
      }
    }
    /** @type {number[]} */
    const done = [];
    for (const m of known.filter((m) => !applied.has(m.version))) {
      await client.query('BEGIN');
      try {
        // No parameters: the simple query protocol runs the file as one script.
        await client.query(m.sql.toString('utf8'));
        await client.query('INSERT INTO cafe24.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
          m.version,
          m.name,
          m.checksum,
        ]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
      logger.info({ version: m.version, name: m.name }, 'applied migration');
      done.push(m.version);
    }
    return done;
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {});
  }
}
