// A branded waiting page (README "Branding the waiting page"): the example
// template of examples/waiting-page/, rendered by `urr-operator page-preview`
// (the operator's and the queue's own checker and renderer), served here with
// the page's CSP. It must show its colours and logo, pass axe-core at WCAG 2.1
// AA, and raise no CSP violation; a bad template is refused by the command.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join, extname, normalize } from 'node:path';
import { axeViolations, browser } from './harness.mjs';
import { SECURITY } from './fake-queue.mjs';

const root = new URL('../../../', import.meta.url).pathname;
const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.json': 'application/json; charset=utf-8' };
let out, server, base;

function preview(args) {
  return spawnSync('cargo', ['run', '--quiet', '-p', 'urr-operator', '--', 'page-preview', ...args],
    { cwd: root, encoding: 'utf8', timeout: 900000 });
}

before(async () => {
  out = mkdtempSync(join(tmpdir(), 'urr-branding-'));
  const built = preview(['--config-map', 'examples/waiting-page/configmap.yaml', '--state', 'waiting', '--lang', 'ko', '--out', join(out, 'waiting')]);
  assert.equal(built.status, 0, built.stderr);
  server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname)).replace(/^(\.\.[/\\])+/, '');
    try {
      const body = readFileSync(join(out, path.endsWith('/') ? `${path}index.html` : path));
      res.writeHead(200, { 'content-type': TYPES[extname(path) || '.html'], ...SECURITY });
      res.end(body);
    } catch { res.writeHead(404); res.end(); }
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(() => { server?.close(); if (out) rmSync(out, { recursive: true, force: true }); });

test('the branded page shows its colours and logo, passes axe-core and the CSP', { timeout: 60000 }, async () => {
  const context = await browser.newContext({ locale: 'ko-KR', viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const violations = [];
  page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
  await page.addInitScript(() => document.addEventListener('securitypolicyviolation', (e) => console.error(`Content Security Policy: ${e.violatedDirective} ${e.blockedURI}`)));
  await page.goto(`${base}/waiting/`);
  await page.waitForFunction(() => document.querySelector('[data-urr="position"]')?.textContent.trim() === '1,234');
  assert.equal((await page.locator('.brand-name').textContent()).trim(), 'Aurora World Tour, Seoul');
  assert.match(await page.locator('[data-urr="eta"]').textContent(), /분/, 'the live ETA, in Korean');
  // The logo (a data: image) loaded, and brand.css set the accent.
  assert.ok(await page.locator('img.brand-mark').evaluate((img) => img.complete && img.naturalWidth > 0), 'logo loaded');
  const accent = await page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--accent').trim());
  assert.equal(accent, '#b4235a');
  assert.equal(await page.locator('.dot').evaluate((e) => getComputedStyle(e).backgroundColor), 'rgb(180, 35, 90)');
  const html = await page.content();
  assert.ok(!html.includes('{{'), 'no raw template variable reaches the browser');
  assert.deepEqual(await axeViolations(page), []);
  assert.deepEqual(violations, []);
  await context.close();
});

test('page-preview refuses a bad template with the condition\'s words', { timeout: 900000 }, () => {
  const bad = join(out, 'bad.html');
  writeFileSync(bad, readFileSync(join(root, 'examples/waiting-page/template.html'), 'utf8')
    .replace('</head>', '<script src="https://cdn.example.com/x.js"></script></head>'));
  const refused = preview(['--template', bad, '--set', 'logoUrl=/l.svg', '--out', join(out, 'bad')]);
  assert.notEqual(refused.status, 0);
  assert.match(refused.stderr, /<script src="https:\/\/cdn\.example\.com\/x\.js">.*the page runs only its own scripts/);
  const unknown = preview(['--template', bad.replace('bad', 'unknown'), '--out', join(out, 'u')]);
  assert.notEqual(unknown.status, 0, 'a missing file is an error too');
});
