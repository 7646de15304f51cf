/** Runbook parameters: each runbook's own, checked strictly, and the ones every runbook takes. No stack needed. */
import { checkParams } from '../../src/lib/runbook-params';

test('every runbook takes the customer\'s name for seed 001\'s messages, beside its own parameters', () => {
  expect(checkParams('cacheFailure', { customerName: ' Kari ', hitRateWindowSeconds: '60' })).toEqual({ customerName: 'Kari', hitRateWindowSeconds: 60 });
  expect(checkParams('apiKeyTrace', { email: 'Bob@Example.com', customerName: 'Bob' })).toEqual({ email: 'bob@example.com', windowMinutes: 15, customerName: 'Bob' });
  expect(checkParams('cacheFailure', undefined)).toEqual({});
});

test('an empty customer name and unknown parameters are refused, each named', () => {
  expect(() => checkParams('cacheFailure', { customerName: '', colour: 'red' })).toThrow(
    /^invalid parameters for cacheFailure: --param customerName: String must contain at least 1 character\(s\); params: Unrecognized key\(s\) in object: 'colour'$/,
  );
});
