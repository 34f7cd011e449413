// The package as published (no server needed): the typed usage file type-checks against
// the declarations, the committed `dist/` is exactly what `src/` compiles to (so nobody has
// to build before using or testing it), and the main entry point is safe for browsers.

import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')

async function tsc(...args) {
  assert.ok(existsSync(TSC), 'TypeScript is not installed: run `npm ci --prefix clients/js`')
  try {
    await run(process.execPath, [TSC, ...args], { cwd: ROOT })
  } catch (error) {
    assert.fail(`tsc ${args.join(' ')} failed:\n${error.stdout}${error.stderr}`)
  }
}

test('the typed usage file type-checks against the declarations', async () => {
  await tsc('--noEmit', '-p', 'test/types/tsconfig.json')
})

test('dist/ is what src/ compiles to (run `npm run build` after editing src/)', async () => {
  const out = await mkdtemp(join(tmpdir(), 'pasture-js-dist-'))
  try {
    await tsc('-p', 'tsconfig.json', '--outDir', out)
    const built = (await readdir(out)).sort()
    assert.deepEqual((await readdir(join(ROOT, 'dist'))).sort(), built)
    for (const name of built) {
      assert.equal(
        await readFile(join(ROOT, 'dist', name), 'utf8'),
        await readFile(join(out, name), 'utf8'),
        `dist/${name} is stale`,
      )
    }
  } finally {
    await rm(out, { recursive: true, force: true })
  }
})

test('the package version matches package.json', async () => {
  const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'))
  const { VERSION } = await import('pasture')
  assert.equal(VERSION, version)
})

test('the main entry point imports nothing Node-only, so it runs in browsers', async () => {
  const seen = new Set()
  const visit = async (name) => {
    if (seen.has(name)) return
    seen.add(name)
    const source = await readFile(join(ROOT, 'dist', name), 'utf8')
    const statements =
      /^(?:import|export)\b[^;'"]*?\bfrom\s*['"]([^'"]+)['"]|^import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]/gm
    const specifiers = [...source.matchAll(statements)].map((m) => m[1] ?? m[2] ?? m[3])
    for (const specifier of specifiers) {
      assert.ok(specifier.startsWith('./'), `dist/${name} imports ${specifier}`)
      await visit(specifier.slice(2))
    }
  }
  await visit('index.js')
  assert.ok(seen.has('client.js') && seen.has('stream.js'))
  assert.ok(!seen.has('node.js'))
})
