import type { Services, TestS3 } from './services.ts';

export default async function globalTeardown(): Promise<void> {
  const running = globalThis as { __services?: Services; __versity?: TestS3 };
  await Promise.all([running.__services?.stop(), running.__versity?.stop()]);
}
