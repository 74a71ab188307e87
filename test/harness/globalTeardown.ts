import type { Services } from './services.ts';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __services?: Services }).__services?.stop();
}
