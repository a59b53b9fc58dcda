export interface MetricFamily {
  type: string;
  help: string;
  /** The sample lines, as served. */
  samples: string[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (-?[0-9.e+-]+|[+-]Inf|NaN)$/;

/**
 * Reads Prometheus' text format strictly: every family is declared once (HELP, then TYPE), every
 * sample belongs to the family declared above it (with `_bucket`, `_sum`, `_count` for histograms), and
 * no other line appears. Throws on the first line that breaks a rule.
 */
export function metricFamilies(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  let current: { name: string; family: MetricFamily } | null = null;
  let help: { name: string; text: string } | null = null;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const declared = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
    if (declared?.[1] === 'HELP') {
      help = { name: declared[2], text: declared[3] };
    } else if (declared?.[1] === 'TYPE') {
      const name = declared[2];
      if (help?.name !== name) throw new Error(`TYPE without its HELP just above: ${line}`);
      if (families.has(name)) throw new Error(`family declared twice: ${name}`);
      current = { name, family: { type: declared[3], help: help.text, samples: [] } };
      families.set(name, current.family);
      help = null;
    } else {
      const sample = SAMPLE.exec(line);
      if (!sample) throw new Error(`not a sample line: ${line}`);
      const type = current?.family.type;
      const suffixes = type === 'histogram' ? ['_bucket', '_sum', '_count'] : type === 'summary' ? ['', '_sum', '_count'] : [''];
      if (!current || !suffixes.some((s) => sample[1] === `${current!.name}${s}`)) {
        throw new Error(`sample outside its family (${current?.name ?? 'none declared'}): ${line}`);
      }
      current.family.samples.push(line);
    }
  }
  return families;
}
