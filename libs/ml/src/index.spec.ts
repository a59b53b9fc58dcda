import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ml from './index.js';

const here = dirname(fileURLToPath(import.meta.url));

/** Modules a file loads when it is imported: its static, non-type imports and re-exports. */
function staticImports(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const specifiers: string[] = [];
  const statement = /^\s*(import|export)\s+(type\s+)?([^;]*?)\s+from\s+'([^']+)'/gms;
  for (const match of source.matchAll(statement)) {
    if (!match[2]) specifiers.push(match[4]);
  }
  for (const match of source.matchAll(/^\s*import\s+'([^']+)'/gm)) specifiers.push(match[1]);
  return specifiers;
}

function loadedPackages(entry: string): Set<string> {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const specifier of staticImports(file)) {
      if (specifier.startsWith('.')) visit(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
      else packages.add(specifier);
    }
  };
  visit(entry);
  return packages;
}

describe('the @app/ml entry point', () => {
  it('loads no TF.js when imported (the API imports it)', () => {
    const packages = [...loadedPackages(join(here, 'index.ts'))];
    expect(packages.filter((p) => p.startsWith('@tensorflow'))).toEqual([]);
    // the pure-JS image decoders: checkInputs reads image headers, and the API decodes uploads with the same code
    expect(packages.sort()).toEqual(['jpeg-js', 'node:crypto', 'node:fs', 'node:fs/promises', 'node:module', 'node:path', 'pngjs']);
  });

  it('gives the API the checks it needs without TF.js', () => {
    expect(ml.resolveHyperparameters('regression', { epochs: 3, seed: 1 })).toMatchObject({ epochs: 3, seed: 1 });
    expect(() =>
      ml.checkTopology({ class_name: 'Sequential', config: { layers: [{ class_name: 'Lambda', config: {} }] } }, { task: 'regression' }),
    ).toThrow(ml.MlError);
    expect(ml.tokenize('Hi!')).toEqual(['hi', '!']);
    const metadata: ml.ArtifactMetadata = {
      version: 1,
      task: 'regression',
      preprocessing: { kind: 'tabular', features: ['a'], mean: [0], std: [1], target: { mean: 0, std: 1 } },
      input_schema: { task: 'regression', label: 'y', features: [{ name: 'a', type: 'number' }] },
      labels: null,
    };
    expect(() => ml.checkInputs(metadata, [{ a: 1 }, { a: null }])).not.toThrow();
    expect(() => ml.checkInputs(metadata, [{ b: 1 }])).toThrow("Invalid inputs: inputs[0] is missing feature 'a'");
    expect(typeof ml.train).toBe('function');
  });
});
