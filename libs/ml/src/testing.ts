import { expect } from '@jest/globals';
import { MlError } from './errors.js';

/** For the specs: runs `fn`, expects it to throw an MlError, and returns it. */
export function thrown(fn: () => unknown): MlError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(MlError);
    return err as MlError;
  }
  throw new Error('expected an MlError');
}

export { sequenceTextArchitecture } from './sequence-architecture.js';
