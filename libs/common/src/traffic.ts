/** One target of an alias's traffic split: a version number and its share (weights sum to 100). */
export interface WeightedVersion {
  version: number;
  weight: number;
}

/**
 * Picks one version of a traffic split by weight. `random` is a number in [0, 1): each version
 * owns a slice of that interval as wide as its share, so over many calls each is picked in
 * proportion to its weight. The API picks per sync request, the worker per async job.
 */
export function pickByWeight(targets: readonly WeightedVersion[], random = Math.random()): number {
  const total = targets.reduce((s, t) => s + t.weight, 0);
  let x = random * total;
  for (const t of targets) {
    x -= t.weight;
    if (x < 0) return t.version;
  }
  return targets[targets.length - 1].version;
}
