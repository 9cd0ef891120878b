// A fresh PostgreSQL database per test file, created from CAFE24_TEST_DATABASE_URL (a superuser
// URL) and dropped at the end.

import { randomBytes } from 'node:crypto';

import pg from 'pg';

/** The superuser URL, or a failure that says what to set. */
export function adminUrl() {
  const url = process.env.CAFE24_TEST_DATABASE_URL;
  if (!url) {
    throw new Error(
      'CAFE24_TEST_DATABASE_URL is not set: point it at a PostgreSQL superuser URL ' +
        '(e.g. postgres://postgres@127.0.0.1:5432/postgres); each test file creates and drops its own database',
    );
  }
  return url;
}

/**
 * @param {string} url
 * @param {string} sql
 */
async function run(url, sql) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** @returns {Promise<{ url: string, drop(): Promise<void> }>} */
export async function createTestDatabase() {
  const admin = adminUrl();
  const name = `cafe24_node_${process.pid}_${randomBytes(4).toString('hex')}`;
  await run(admin, `CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => run(admin, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}
