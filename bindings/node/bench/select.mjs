// Semver selection over 100k tags: tagsmith (binding), the Rust path alone, and npm
// semver's maxSatisfying, in one process. Run: make bench-bindings.
import { createRequire } from 'node:module'
const require = createRequire(import.meta.url)
const { selectLatest, timeSelectNative } = require('../index.js')
const semver = require('semver')

const N = 100_000
const RANGE = '>=1.0.0 <2.0.0'
let seed = 7
const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % (n + 1) }
const tags = Array.from({ length: N }, () => `${rand(3)}.${rand(99)}.${rand(999)}`)

function best(fn, repeat = 5) {
  let min = Infinity, result
  for (let i = 0; i < repeat; i++) {
    const start = process.hrtime.bigint()
    result = fn()
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    if (ms < min) min = ms
  }
  return [min, result]
}

const [tBinding, chosen] = best(() => selectLatest(tags, { semver: RANGE }))
const tRust = Math.min(...timeSelectNative(tags, RANGE, 5))
const [tSemver, bySemver] = best(() => semver.maxSatisfying(tags, RANGE), 3)
console.log(`semver '${RANGE}' over ${N} tags (best of runs)`)
for (const [name, t, r] of [['tagsmith selectLatest (binding)', tBinding, chosen], ['Rust path (no conversion)', tRust, chosen], ['npm semver maxSatisfying', tSemver, bySemver]]) {
  console.log(`${name.padEnd(36)} ${t.toFixed(2).padStart(9)} ms  ${(t / tBinding).toFixed(2).padStart(6)}x binding  -> ${r}`)
}
console.log(`binding overhead over Rust: ${((tBinding / tRust - 1) * 100).toFixed(0)}%`)
if (bySemver !== chosen) throw new Error(`libraries disagree: ${bySemver} vs ${chosen}`)
