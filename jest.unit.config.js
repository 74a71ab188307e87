/** The unit layer (`npm run test:unit`): pure logic only, no MinIO, Redis or child process. */
import base from './jest.config.js';

export default {
  ...base,
  roots: ['<rootDir>/test/unit'],
  globalSetup: undefined,
  globalTeardown: undefined,
  testTimeout: 10_000,
  maxWorkers: 2,
};
