#!/usr/bin/env node
// A real Uppy Companion (standalone app, the one its `companion` binary runs) on loopback
// only, signing for one S3-compatible store. Used by tests/companion.rs and
// bench/presign.sh to hold reelup-server up against the real thing.
//
//   COMPANION_AWS_ENDPOINT=http://127.0.0.1:PORT COMPANION_AWS_BUCKET=reelup \
//   COMPANION_AWS_KEY=... COMPANION_AWS_SECRET=... node start.mjs [PORT]
//
// The port comes from the first argument, else COMPANION_PORT, else 0 (a free port).
// The region is us-east-1 and addressing path-style, as reelup-server --local's store wants.
// Once listening it prints exactly one line on stdout:
//   {"endpoint":"http://127.0.0.1:PORT","version":"6.x.y"}
// and everything Companion logs (including one line per request) goes to stderr.

import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Companion logs with console.log and morgan writes to process.stdout: send all of it to
// stderr so stdout carries nothing but the ready line.
const stdoutWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);

function fail(message) {
  process.stderr.write(`companion start.mjs: ${message}\n`);
  process.exit(2);
}

function required(name) {
  const value = process.env[name];
  if (!value) fail(`${name} is required (the store Companion signs for)`);
  return value;
}

const portArg = process.argv[2] ?? process.env.COMPANION_PORT ?? '0';
const port = Number.parseInt(portArg, 10);
if (!Number.isInteger(port) || port < 0 || port > 65535) fail(`bad port ${JSON.stringify(portArg)}`);

const store = {
  endpoint: required('COMPANION_AWS_ENDPOINT'),
  bucket: required('COMPANION_AWS_BUCKET'),
  key: required('COMPANION_AWS_KEY'),
  secret: required('COMPANION_AWS_SECRET'),
};

// What Companion insists on at startup. A data dir is only used for remote-provider
// downloads, but it must exist.
process.env.COMPANION_DATADIR ||= mkdtempSync(join(tmpdir(), 'companion-'));
process.env.COMPANION_SECRET ||= randomBytes(32).toString('hex');
process.env.COMPANION_CLIENT_ORIGINS ||= 'true';
process.env.COMPANION_HIDE_WELCOME ||= 'true';

const require = createRequire(import.meta.url);
const { version } = require('@uppy/companion/package.json');
// Imported after the stdout redirection above (static imports would run first).
const companion = await import('@uppy/companion');
const { default: standalone } = await import('@uppy/companion/standalone');

const server = http.createServer();
server.on('error', (err) => fail(`cannot listen on 127.0.0.1:${port}: ${err.message}`));
server.listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  process.env.COMPANION_DOMAIN ||= `127.0.0.1:${actual}`;
  process.env.COMPANION_PROTOCOL ||= 'http';
  const { app } = standalone({
    server: { host: process.env.COMPANION_DOMAIN, protocol: process.env.COMPANION_PROTOCOL },
    filePath: process.env.COMPANION_DATADIR,
    s3: {
      ...store,
      region: 'us-east-1',
      forcePathStyle: true,
      // A current AWS SDK otherwise signs x-amz-checksum-crc32 of an empty body into every
      // part URL, which stores then hold real parts against.
      awsClientOptions: { requestChecksumCalculation: 'WHEN_REQUIRED' },
    },
  });
  server.on('request', app);
  companion.socket(server);
  stdoutWrite(`${JSON.stringify({ endpoint: `http://127.0.0.1:${actual}`, version })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close();
    process.exit(0);
  });
}
