import * as assert from 'uvu/assert';

/** Asserts that `fn` rejects with an error whose message matches `message`; returns the error. */
export async function rejects(fn: () => Promise<unknown>, message: RegExp): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    const err = e as Error;
    assert.match(err.message, message);
    return err;
  }
  assert.unreachable(`expected a rejection matching ${message}`);
  throw new Error('unreachable');
}
