// node --test suite for the tagsmith Node binding: every function, the error mapping
// (err.code === Rust code()), the shared policy vectors, the docs' examples, and a dry run
// on examples/gitops.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const tagsmith = require('../index.js')
const { selectLatest, explain, ImagePolicy, rewriteString, rewriteTree, scan, run, timeSelectNative, errorKinds, runConfigSchema } = tagsmith

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..')
const cases = JSON.parse(fs.readFileSync(path.join(ROOT, 'testdata/policy/cases.json'), 'utf8')).cases
const MARKED = 'image: reg.example.com/app:1.0.0 # {"$imagepolicy": "flux-system:app"}\n'

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'tagsmith-node-'))

function options(c) {
  const o = {}
  for (const k of ['semver', 'alphabetical', 'numerical', 'pattern', 'extract']) if (k in c) o[k] = c[k]
  if (c.skip_non_numeric) o.skipNonNumeric = true
  return o
}

test('long tag arrays (read in one crossing) answer like short ones', () => {
  // 600 tags take the joined path, 5 the element-by-element one; same answers.
  const many = Array.from({ length: 600 }, (_, i) => `1.${i % 50}.${i}`)
  assert.equal(selectLatest(many, { semver: '^1' }), '1.49.599')
  assert.equal(new ImagePolicy({ semver: '<1.2.0' }).select(many), '1.1.551')
  assert.equal(explain(many, { semver: '^1' }, 1).counts.seen, 600)
  // A tag holding the join separator: the pieces do not add up, so the array is read
  // element by element and the tag comes back as written.
  const odd = [...many, '9.9.9\nx']
  assert.equal(selectLatest(odd, { alphabetical: 'asc' }), '9.9.9\nx')
  // Non-ASCII tags survive the round trip.
  assert.equal(selectLatest([...many, 'ä'], { alphabetical: 'asc' }), 'ä')
  // Empty tags at both ends are the first and last pieces of the joined text.
  const edged = ['', ...many, '']
  assert.equal(explain(edged, { alphabetical: 'desc' }, 1).counts.seen, 602)
  assert.equal(selectLatest(edged, { alphabetical: 'desc' }), '')
  assert.equal(selectLatest(['', ...many, 'zz'], { alphabetical: 'asc' }), 'zz')
})

test('long arrays in a worker thread (each Node environment keeps its own join helper)', async () => {
  const { Worker } = await import('node:worker_threads')
  const { once } = await import('node:events')
  const index = require.resolve('../index.js')
  const source = `
    const { parentPort } = require('node:worker_threads')
    const { selectLatest } = require(${JSON.stringify(index)})
    const many = Array.from({ length: 600 }, (_, i) => '1.' + (i % 50) + '.' + i)
    parentPort.postMessage([selectLatest(many, { semver: '^1' }), selectLatest(many, { semver: '<1.2.0' })])`
  for (let round = 0; round < 2; round++) {
    const worker = new Worker(source, { eval: true })
    const [answers] = await once(worker, 'message')
    assert.deepEqual(answers, ['1.49.599', '1.1.551'])
    await worker.terminate()
  }
})

test('tags must be strings, short or long arrays alike', () => {
  for (const tags of [['1.0.0', 2], [...Array(600).fill('1.0.0'), 2, '1.0.1']]) {
    const index = tags.indexOf(2)
    assert.throws(() => selectLatest(tags, { semver: '*' }), (err) => err instanceof Error && err.message.includes(`tags[${index}] must be a string`))
    assert.throws(() => new ImagePolicy({ semver: '*' }).explain(tags), /must be a string/)
  }
})

for (const c of cases) {
  test(`policy vector: ${c.name}`, () => {
    if ('expected' in c) {
      assert.equal(selectLatest(c.tags, options(c)), c.expected)
      assert.equal(new ImagePolicy(options(c)).select(c.tags), c.expected)
    } else {
      assert.throws(() => selectLatest(c.tags, options(c)), (err) => err instanceof Error && err.code === c.error)
    }
  })
}

test('selectLatest: one-call form and errors with code and location', () => {
  assert.equal(selectLatest(['1.0.0', '1.4.2', '2.0.0'], { semver: '>=1.0.0 <2.0.0' }), '1.4.2')
  assert.equal(selectLatest(['3', '20', '100'], { numerical: 'asc' }), '100')
  assert.throws(() => selectLatest(['latest', '2.0.0'], { semver: '^1' }), (err) => {
    assert.equal(err.code, 'no_match')
    assert.equal(err.policy, 'semver range "^1"')
    assert.match(err.message, /2 tags seen/)
    return true
  })
  assert.throws(() => selectLatest(['1.0.0'], { semver: '*', pattern: '(' }), (err) =>
    err.code === 'invalid_regex' && err.field === 'filterTags.pattern' && err.pattern === '(')
  assert.throws(() => selectLatest(['a'], { alphabetical: 'up' }), (err) => err.code === 'invalid_order' && err.order === 'up')
  assert.throws(() => new ImagePolicy({ semver: '>>1' }), (err) => err.code === 'invalid_range' && err.range === '>>1')
  assert.throws(() => selectLatest(['1.0.0'], {}), (err) => err.code === 'invalid_argument')
  assert.throws(() => selectLatest([], { semver: '*' }), (err) => err.code === 'empty_tags')
})

test('explain: counts and top candidates', () => {
  const why = explain(['1.0.0', '1.4.2', '2.0.0', 'latest'], { semver: '^1' }, 1)
  assert.equal(why.latest, '1.4.2')
  assert.equal(why.counts.seen, 4)
  assert.equal(why.counts.outOfRange, 1)
  assert.deepEqual(why.top, [{ tag: '1.4.2', value: '1.4.2' }])
  const p = new ImagePolicy({ alphabetical: 'asc', pattern: '^main-(?P<ts>\\d+)$', extract: '$ts' })
  assert.equal(p.explain(['main-1', 'main-3', 'dev-9']).counts.filteredOut, 1)
  assert.equal(p.spec.filterTags.extract, '$ts')
})

test('rewriteString: in memory, warnings, errors', () => {
  const out = rewriteString(MARKED, { 'flux-system:app': 'reg.example.com/app:1.4.2' })
  assert.equal(out.changed, true)
  assert.equal(out.content, MARKED.replace('1.0.0', '1.4.2'))
  const change = out.objects[0].changes[0]
  assert.deepEqual([change.line, change.oldValue, change.newValue], [1, 'reg.example.com/app:1.0.0', 'reg.example.com/app:1.4.2'])
  const none = rewriteString(MARKED, { 'flux-system:other': 'reg.example.com/x:1' }, 'd.yaml')
  assert.equal(none.content, null)
  assert.equal(none.warnings[0].code, 'unknown_policy')
  assert.throws(() => rewriteString(MARKED, { nocolon: 'reg.example.com/app:1' }), (err) => err.code === 'invalid_policy_key' && err.key === 'nocolon')
  assert.throws(() => rewriteString(MARKED, { 'flux-system:app': 'Not A Ref' }), (err) => err.code === 'invalid_image_ref')
})

test('rewriteTree: dry run, then write', () => {
  const root = tmp()
  fs.mkdirSync(path.join(root, 'apps'))
  const file = path.join(root, 'apps', 'deploy.yaml')
  fs.writeFileSync(file, MARKED)
  const policies = { 'flux-system:app': 'reg.example.com/app:1.4.2' }
  const plan = rewriteTree(root, policies, { dryRun: true })
  assert.equal(plan.dryRun, true)
  assert.deepEqual(plan.written, [])
  assert.match(plan.diff, /\+image: reg.example.com\/app:1.4.2/)
  assert.equal(plan.files[0].path, 'apps/deploy.yaml')
  assert.equal(fs.readFileSync(file, 'utf8'), MARKED)
  const done = rewriteTree(root, policies)
  assert.equal(done.written.length, 1)
  assert.equal(fs.readFileSync(file, 'utf8'), MARKED.replace('1.0.0', '1.4.2'))
  assert.throws(() => rewriteTree(path.join(root, 'missing'), policies), (err) => err.code === 'invalid_root' && err.path.endsWith('missing'))
})

test('scan: Promise from a snapshot, coded rejections', async () => {
  const dir = tmp()
  const snapshot = path.join(dir, 'tags.yaml')
  fs.writeFileSync(snapshot, "reg.example.com/app: ['1.0.0', '1.4.2', 'sha256-abc.sig']\n")
  const pending = scan('reg.example.com/app', { snapshot })
  assert.ok(pending instanceof Promise)
  const result = await pending
  // In Flux's stored order: descending by bytes, as image-reflector-controller keeps them.
  assert.deepEqual(result.tags, ['1.4.2', '1.0.0'])
  assert.equal(result.excludedCount, 1)
  assert.deepEqual(result.latestTags, ['1.4.2', '1.0.0'])
  assert.equal((await scan('reg.example.com/app', { snapshot, exclusions: [] })).tagCount, 3)
  await assert.rejects(scan('reg.example.com/other', { snapshot }), (err) => err.code === 'not_in_snapshot' && err.image === 'reg.example.com/other')
  await assert.rejects(scan('reg.example.com/app', { snapshot: path.join(dir, 'none.yaml') }), (err) => err.code === 'config')
  await assert.rejects(scan('reg.example.com/app', { snapshot, exclusions: ['('] }), (err) => err.code === 'invalid_regex')
})

function exampleRepo() {
  const src = path.join(ROOT, 'examples', 'gitops')
  if (!fs.existsSync(src)) return null
  const repo = path.join(tmp(), 'repo')
  fs.cpSync(src, repo, { recursive: true })
  const git = (...args) => execFileSync('git', args, { cwd: repo })
  git('init', '-q', '-b', 'main')
  git('add', '-A')
  git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'init')
  return repo
}

function yamlBytes(root) {
  return fs.readdirSync(root, { recursive: true }).filter((f) => f.endsWith('.yaml')).sort()
    .map((f) => [f, fs.readFileSync(path.join(root, f), 'utf8')])
}

test('run: dry run on examples/gitops writes nothing', async (t) => {
  const repo = exampleRepo()
  if (!repo) return t.skip('examples/gitops is not in this checkout')
  const before = yamlBytes(repo)
  const report = await run(repo, { dryRun: true, snapshot: path.join(ROOT, 'examples/tags.snapshot.yaml'), noCache: true })
  assert.equal(report.dryRun, true)
  assert.ok(report.policies.length > 0)
  const diffs = report.automations.map((a) => a.diff).filter(Boolean)
  assert.ok(diffs.some((d) => d.split('\n').some((l) => l.startsWith('+'))))
  assert.deepEqual(yamlBytes(repo), before)
})

test('run: an invalid object fails alone; what stops the run rejects with family and code', async () => {
  const bad = tmp()
  fs.writeFileSync(path.join(bad, 'policy.yaml'),
    "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImagePolicy\nmetadata: {name: p, namespace: ns}\n" +
    "spec:\n  imageRepositoryRef: {name: r}\n  policy: {semver: {range: '>>1'}}\n")
  const report = await run(bad, { dryRun: true, noCache: true })
  assert.equal(report.failures[0].error.code, 'invalid_range')
  assert.match(report.failures[0].error.message, /^policy\.yaml:6: spec\.policy\.semver\.range:/)
  await assert.rejects(run(path.join(bad, 'missing'), { dryRun: true, noCache: true }),
    (err) => err.code === 'config' && err.family === 'run')
})

test('error codes: the typings list every code the Rust enums define', () => {
  const kinds = JSON.parse(errorKinds())
  const dts = fs.readFileSync(path.join(ROOT, 'bindings/node/index.d.ts'), 'utf8')
  const union = dts.match(/export type ErrorCode =([^]*?)\n\/\*\*/)[1]
  const listed = new Set([...union.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]))
  for (const k of kinds) assert.ok(listed.has(k.code), `${k.family}:${k.code} is not in index.d.ts`)
  assert.ok(listed.has('invalid_argument'))
  const schema = JSON.parse(runConfigSchema())
  const iface = dts.match(/export interface RunOptions \{([^]*?)\n\}/)[1]
  const fields = new Set([...iface.matchAll(/^  (\w+)\?:/gm)].map((m) => m[1]))
  const camel = (s) => s.replace(/_(\w)/g, (_, c) => c.toUpperCase())
  const wanted = Object.keys(schema.properties).filter((k) => k !== 'root').map(camel)
  assert.deepEqual([...fields].sort(), wanted.sort())
})

test('run: on a clone of a URL, one commit pushed back to it', async (t) => {
  const repo = exampleRepo()
  if (!repo) return t.skip('examples/gitops is not in this checkout')
  const remote = path.join(tmp(), 'remote.git')
  execFileSync('git', ['clone', '-q', '--bare', repo, remote])
  const url = `file://${remote}`
  const snapshot = path.join(ROOT, 'examples/tags.snapshot.yaml')
  const gitIn = (...args) => execFileSync('git', args, { cwd: remote, encoding: 'utf8' })
  const dry = await run(null, { url, dryRun: true, snapshot, noCache: true })
  assert.ok(dry.automations.some((a) => a.diff))
  assert.equal(gitIn('rev-list', '--count', 'main').trim(), '1')
  const report = await run(null, { url, snapshot, noCache: true })
  assert.deepEqual(report.automations.map((a) => a.pushedBranch), ['main'])
  const log = gitIn('log', '--format=%s', 'main').trim().split('\n')
  assert.equal(log.length, 2)
  assert.match(log[0], /^Update images/)
  assert.match(gitIn('show', 'main:apps/checkout/deployment.yaml'), /checkout:1\.4\.2/)
})

test('run: a root or a url, and credentials that make a set', async () => {
  const dir = tmp()
  await assert.rejects(run(null, {}), (err) => err.code === 'invalid_argument' && /root or a url/.test(err.message))
  await assert.rejects(run(dir, { url: 'file:///nowhere' }), (err) => err.code === 'invalid_argument' && /not both/.test(err.message))
  await assert.rejects(run(dir, { dryRun: true, gitUsername: 'bot' }), (err) => err.code === 'credentials' && /go together/.test(err.message))
  await assert.rejects(run(dir, { dryRun: true, sshKey: path.join(dir, 'id') }), (err) => err.code === 'credentials' && /known hosts/.test(err.message))
})

test('timeSelectNative: times the Rust path', () => {
  const times = timeSelectNative(['1.0.0', '1.2.0'], '^1', 3)
  assert.equal(times.length, 3)
  assert.ok(times.every((t) => t >= 0))
})

test('docs/node.md examples run', async () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/node.md'), 'utf8')
  const blocks = [...doc.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1])
  assert.ok(blocks.length > 0, 'docs/node.md has no js examples')
  for (const block of blocks) {
    const fn = new Function('require', 'ROOT', `return (async () => {\n${block}\n})()`)
    await fn((name) => (name === 'tagsmith' ? tagsmith : require(name)), ROOT)
  }
})
