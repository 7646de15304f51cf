import { ApplicationFailure } from '@temporalio/common';

/** The ApplicationFailure a promise rejects with; the test fails if it resolves or rejects otherwise. */
export async function applicationFailure(p: Promise<unknown>): Promise<ApplicationFailure> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(ApplicationFailure);
    return err as ApplicationFailure;
  }
  throw new Error('expected a failure');
}
