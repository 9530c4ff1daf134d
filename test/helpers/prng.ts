// One seeded PRNG for everything that must replay from a printed seed: the
// crash suite's kill plan, the fuzzer and generated bad inputs, and the bench
// data seeder. mulberry32: 32-bit state, fast, and good enough for test data.
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
