// Builds the chat page into src/pasture/server/static/ui (committed, so a checkout or a pip
// install serves it without Node): one minified ES module (the page, Pasture's JS client,
// marked and DOMPurify) and one stylesheet, both named by a hash of their content so the
// server can let browsers cache them forever; index.html names them and is never cached.
// `node build.mjs DIR` writes the build to DIR instead (tests/integration/test_ui_build.py).
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const out = process.argv[2] ?? join(here, '..', '..', 'src', 'pasture', 'server', 'static', 'ui')

function hashed(name, ext, contents) {
  const hash = createHash('sha256').update(contents).digest('hex').slice(0, 12)
  return `${name}-${hash}.${ext}`
}

const bundled = await build({
  entryPoints: [join(here, 'src', 'main.js')],
  bundle: true, minify: true, format: 'esm', target: 'es2022', write: false,
  legalComments: 'eof', // keeps marked's and DOMPurify's licence notices in the bundle
})
const js = bundled.outputFiles[0].contents
const css = (await build({
  entryPoints: [join(here, 'src', 'style.css')], bundle: true, minify: true, write: false,
})).outputFiles[0].contents

const names = { js: hashed('app', 'js', js), css: hashed('style', 'css', css) }
const html = readFileSync(join(here, 'src', 'index.html'), 'utf8')
  .replace('__JS__', names.js).replace('__CSS__', names.css)

rmSync(out, { recursive: true, force: true })
mkdirSync(out, { recursive: true })
writeFileSync(join(out, names.js), js)
writeFileSync(join(out, names.css), css)
writeFileSync(join(out, 'index.html'), html)
for (const [name, data] of [[names.js, js], [names.css, css], ['index.html', html]]) {
  console.log(`${name}: ${Buffer.byteLength(data)} bytes`)
}
