import { afterAll, beforeAll } from '@jest/globals';
import { type ServerProcess, startServer } from './serverProcess.ts';
import { createTestStorage, type StorageKind, type TestStorage } from './stack.ts';

/** A server process on a storage of its own, ready inside the suite's tests. */
export type ServerOnStorage = { storage: TestStorage; server: ServerProcess };

/**
 * Registers beforeAll/afterAll hooks that start one server on a fresh storage of `kind` and
 * remove both afterwards. Read the fields inside tests and hooks, once they have started.
 */
export function serverOnStorage(kind: StorageKind, env: NodeJS.ProcessEnv = {}): ServerOnStorage {
  const stack = {} as ServerOnStorage;
  beforeAll(async () => {
    stack.storage = createTestStorage(kind);
    stack.server = await startServer({ ...stack.storage.env, ...env });
  });
  afterAll(async () => {
    await stack.server?.stop();
    await stack.storage?.cleanup();
  });
  return stack;
}
