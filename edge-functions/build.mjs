// Writes dist/gate.js, the code CloudFront runs: gate.js without its comment
// lines, blank lines and indentation. CloudFront counts every byte of a
// function against its 10 KB limit, comments included, so the source keeps
// its comments and the deployed build drops them. `node build.mjs` rewrites
// dist/; test/gate.test.mjs fails when dist/ is not the build of gate.js and
// runs every vector against dist/ (what Terraform deploys).
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';

export const SOURCE = new URL('./gate.js', import.meta.url);
export const BUILT = new URL('./dist/gate.js', import.meta.url);

/** gate.js as deployed. Refuses what line-wise stripping could change:
 *  a template literal or block comment can span lines. */
export function build(source) {
  if (source.includes('`') || source.includes('/*')) {
    throw new Error('gate.js has a template literal or a block comment; build.mjs strips line by line and cannot keep them');
  }
  return source
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('//'))
    .join('\n') + '\n';
}

if (process.argv[1] && new URL(`file://${process.argv[1]}`).href === import.meta.url) {
  mkdirSync(new URL('./dist/', import.meta.url), { recursive: true });
  const built = build(readFileSync(SOURCE, 'utf8'));
  writeFileSync(BUILT, built);
  console.log(`dist/gate.js: ${built.length} bytes (limit 10240)`);
}
