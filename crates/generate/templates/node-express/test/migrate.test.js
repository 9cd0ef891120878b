// The schema is the contract's migration files, byte for byte, recorded with the contract's
// names and checksums under the contract's lock (docs/contract.md §6.1) — against a real
// PostgreSQL.

import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import pg from 'pg';

import { MigrationError, knownMigrations, migrate } from '../auth/migrate.js';
import { createTestDatabase } from './support/database.js';

const CHECKSUMS = [
  [1, 'initial', '18cb46d3f7efbed3ca05ad6f638325331e4797f33399ee7bedecda577a8c476e'],
  [2, 'lifecycle', '34e1344f1f079b81ab199b95df1cab2e85b62d07cc4a57c910a4c68561bdcc2c'],
  [3, 'webhooks', 'c8b374513672ac21548d3399fb19b3222710ecaae8a31361f6cd98b15af7307d'],
  [4, 'reliability', 'ab06bfd0e8739d5ec8f57f221f98b52f04331084570b7a3c7d2f8201bcc9bfcb'],
  [5, 'fleet', 'da9f590c9a8a90b2589e1ee6b23f72520e71b6452a723ed618def516dbc3f314'],
];

/** @type {{ url: string, drop(): Promise<void> }} */
let database;

/**
 * Runs `fn` on a session of its own.
 * @template T
 * @param {(client: pg.Client) => Promise<T>} fn
 * @returns {Promise<T>}
 */
async function session(fn) {
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

before(async () => {
  database = await createTestDatabase();
});
after(async () => {
  await database?.drop();
});

describe('migrations (contract §6.1)', () => {
  it('ships the four files byte for byte', async () => {
    const known = await knownMigrations();
    assert.deepEqual(
      known.map((m) => [m.version, m.name, m.checksum]),
      CHECKSUMS,
    );
  });

  it('applies every migration once, concurrently from three sessions, recording the contract checksums', async () => {
    const applied = await Promise.all([1, 2, 3].map(() => session((client) => migrate(client))));
    assert.deepEqual(applied.flat().sort(), [1, 2, 3, 4, 5]);
    const { rows } = await session((client) =>
      client.query('SELECT version, name, checksum FROM cafe24.schema_migrations ORDER BY version'),
    );
    assert.deepEqual(
      rows.map((r) => [Number(r.version), r.name, r.checksum]),
      CHECKSUMS,
    );
  });

  it('is a no-op the second time', async () => {
    assert.deepEqual(await session((client) => migrate(client)), []);
  });

  it('creates the tables, the trigger and the unique state index', async () => {
    const tables = await session((client) =>
      client.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'cafe24' ORDER BY table_name",
      ),
    );
    assert.deepEqual(
      tables.rows.map((r) => r.table_name),
      ['api_budgets', 'authorization_codes', 'mall_events', 'schema_migrations', 'tokens', 'webhook_events'],
    );
    const notified = await session(async (client) => {
      await client.query('LISTEN cafe24_authorization_codes');
      const heard = new Promise((resolve) => client.once('notification', resolve));
      await client.query("INSERT INTO cafe24.authorization_codes (code, state) VALUES ('c', 's-1')");
      await assert.rejects(
        client.query("INSERT INTO cafe24.authorization_codes (code, state) VALUES ('c', 's-1')"),
        /authorization_codes_state_key/,
      );
      return heard;
    });
    assert.ok(notified);
  });

  it('refuses a migration applied with different contents', async () => {
    await session((client) => client.query("UPDATE cafe24.schema_migrations SET checksum = 'x' WHERE version = 3"));
    await assert.rejects(
      session((client) => migrate(client)),
      (error) => error instanceof MigrationError && /migration 3/.test(error.message),
    );
    await session((client) =>
      client.query('UPDATE cafe24.schema_migrations SET checksum = $1 WHERE version = 3', [CHECKSUMS[2][2]]),
    );
  });

  it('refuses a database migrated by a newer contract version', async () => {
    await session((client) =>
      client.query("INSERT INTO cafe24.schema_migrations (version, name, checksum) VALUES (99, 'future', 'f')"),
    );
    await assert.rejects(
      session((client) => migrate(client)),
      /newer schema \(version 99\)/,
    );
    // The lock was released on the way out: another session can take it at once.
    const free = await session((client) => client.query('SELECT pg_try_advisory_lock(3405652992) AS got'));
    assert.equal(free.rows[0].got, true);
  });
});
