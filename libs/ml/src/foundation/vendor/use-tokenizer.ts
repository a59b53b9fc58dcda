/**
 * @license
 * Copyright 2019 Google LLC. All Rights Reserved.
 * Licensed under the Apache License, Version 2.0 (the "License");
 * you may not use this file except in compliance with the License.
 * You may obtain a copy of the License at
 *
 * http://www.apache.org/licenses/LICENSE-2.0
 *
 * Unless required by applicable law or agreed to in writing, software
 * distributed under the License is distributed on an "AS IS" BASIS,
 * WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 * See the License for the specific language governing permissions and
 * limitations under the License.
 * =============================================================================
 *
 * Vendored from @tensorflow-models/universal-sentence-encoder@1.3.3 (dist/tokenizer/index.js, dist/tokenizer/trie.js,
 * dist/util.js stringToChars), ported to TypeScript. Changes: no tfjs-core import (the vocabulary is passed in), and
 * the prefix search takes a start offset instead of a sliced copy of the symbols (the original is quadratic in the
 * input length). Symbols are UTF-16 code units, as in the published build.
 */

/** [piece, score] pairs, as in the package's vocab.json. */
export type Vocabulary = Array<[string, number]>;

type Word = [string[], number, number];

class TrieNode {
  parent: TrieNode | null = null;
  children: Record<string, TrieNode> = {};
  end = false;
  word: Word = [[], 0, 0];
}

class Trie {
  private readonly root = new TrieNode();

  insert(word: string, score: number, index: number): void {
    let node = this.root;
    const symbols = stringToChars(word);
    for (let i = 0; i < symbols.length; i++) {
      if (!node.children[symbols[i]]) {
        node.children[symbols[i]] = new TrieNode();
        node.children[symbols[i]].parent = node;
        node.children[symbols[i]].word[0] = node.word[0].concat(symbols[i]);
      }
      node = node.children[symbols[i]];
      if (i === symbols.length - 1) {
        node.end = true;
        node.word[1] = score;
        node.word[2] = index;
      }
    }
  }

  /** Every token that starts the symbols at `start`. */
  commonPrefixSearch(ss: string[], start: number): Word[] {
    const output: Word[] = [];
    let node: TrieNode | undefined = this.root.children[ss[start]];
    for (let i = start; i < ss.length && node; i++) {
      if (node.end) output.push(node.word);
      node = node.children[ss[i + 1]];
    }
    if (!output.length) output.push([[ss[start]], 0, 0]);
    return output;
  }
}

function stringToChars(input: string): string[] {
  const symbols: string[] = [];
  for (let i = 0; i < input.length; i++) symbols.push(input[i]);
  return symbols;
}

const separator = '\u2581';

function processInput(str: string): string {
  const normalized = str.normalize('NFKC');
  return normalized.length > 0 ? separator + normalized.replace(/ /g, separator) : normalized;
}

// The first tokens are reserved for unk, control symbols, and user-defined symbols.
const RESERVED_SYMBOLS_COUNT = 6;

/** Tokenizer.encode() is a port of `EncodeAsIds` from SentencePiece (Viterbi over the vocabulary's pieces). */
export class Tokenizer {
  private readonly trie = new Trie();

  constructor(
    private readonly vocabulary: Vocabulary,
    private readonly reservedSymbolsCount = RESERVED_SYMBOLS_COUNT,
  ) {
    for (let i = this.reservedSymbolsCount; i < this.vocabulary.length; i++) {
      this.trie.insert(this.vocabulary[i][0], this.vocabulary[i][1], i);
    }
  }

  encode(input: string): number[] {
    const nodes: Array<Record<number, Array<{ key: string[]; score: number; index: number }>>> = [];
    const words: number[] = [];
    const best: number[] = [];
    const symbols = stringToChars(processInput(input));
    for (let i = 0; i <= symbols.length; i++) {
      nodes.push({});
      words.push(0);
      best.push(0);
    }
    // Construct the lattice.
    for (let i = 0; i < symbols.length; i++) {
      for (const piece of this.trie.commonPrefixSearch(symbols, i)) {
        const endPos = piece[0].length;
        (nodes[i + endPos][i] ??= []).push({ key: piece[0], score: piece[1], index: piece[2] });
      }
    }
    for (let endPos = 0; endPos <= symbols.length; endPos++) {
      for (const startPos in nodes[endPos]) {
        for (const word of nodes[endPos][startPos]) {
          const score = word.score + best[endPos - word.key.length];
          if (best[endPos] === 0 || score >= best[endPos]) {
            best[endPos] = score;
            words[endPos] = word.index;
          }
        }
      }
    }
    const results: number[] = [];
    // Backward pass.
    let iter = words.length - 1;
    while (iter > 0) {
      results.push(words[iter]);
      iter -= this.vocabulary[words[iter]][0].length;
    }
    // Merge consecutive unks.
    const merged: number[] = [];
    let isPreviousUnk = false;
    for (const id of results) {
      if (!(isPreviousUnk && id === 0)) merged.push(id);
      isPreviousUnk = id === 0;
    }
    return merged.reverse();
  }
}
