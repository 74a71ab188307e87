import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from '@jest/globals';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Top-level folders that hold no source of the project even when something in them is tracked. */
const NOT_SOURCE = new Set(['node_modules', 'dist']);

/** One folder the README's Layout block lists, with the sub-entries indented under it. */
type LayoutEntry = { folder: string; children: string[] };

/** The folders of the README's `## Layout` code block: `name/` at the start of a line (or indented). */
function layoutEntries(readme: string): LayoutEntry[] {
  const section = readme.split(/^## Layout$/m)[1];
  if (section === undefined) throw new Error('README.md has no "## Layout" section');
  const block = /^```[^\n]*\n([\s\S]*?)^```$/m.exec(section)?.[1];
  if (block === undefined) throw new Error('the Layout section has no code block');
  const entries: LayoutEntry[] = [];
  for (const line of block.split('\n')) {
    // An entry names its folder within the first columns; continuation lines are indented deeper.
    const match = /^( {0,4})([\w.-]+)\/(?: {2,}|$)/.exec(line);
    if (!match) continue;
    const [, indent = '', name = ''] = match;
    if (indent === '') entries.push({ folder: name, children: [] });
    else {
      const parent = entries.at(-1);
      if (!parent) throw new Error(`"${line.trim()}" is indented under no folder`);
      parent.children.push(name);
    }
  }
  return entries;
}

/**
 * The paths `git ls-files` lists, read from the index itself (.git/index, versions 2 to 4) so
 * that the unit layer starts no child process.
 */
function trackedPaths(root: string): string[] {
  const index = readFileSync(path.join(root, '.git', 'index'));
  if (index.toString('latin1', 0, 4) !== 'DIRC') throw new Error('.git/index is not a git index');
  const version = index.readUInt32BE(4);
  if (version < 2 || version > 4) throw new Error(`git index version ${version} is not read here`);
  const count = index.readUInt32BE(8);
  const paths: string[] = [];
  let offset = 12;
  let previous = '';
  for (let i = 0; i < count; i++) {
    const start = offset;
    // ctime, mtime, dev, ino, mode, uid, gid, size (4 bytes each but the times' 8), sha-1, flags.
    const flags = index.readUInt16BE(start + 60);
    offset = start + 62;
    if (version >= 3 && flags & 0x4000) offset += 2;
    let name: string;
    if (version === 4) {
      // The path is the previous one with N bytes stripped from its end, then this suffix.
      let strip = 0;
      let byte: number;
      let first = true;
      do {
        byte = index.readUInt8(offset++);
        strip = first ? byte & 0x7f : ((strip + 1) << 7) | (byte & 0x7f);
        first = false;
      } while (byte & 0x80);
      const end = index.indexOf(0, offset);
      name = previous.slice(0, previous.length - strip) + index.toString('utf8', offset, end);
      offset = end + 1;
    } else {
      const end = index.indexOf(0, offset);
      name = index.toString('utf8', offset, end);
      // Entries are NUL-padded to a multiple of 8 bytes (at least one NUL).
      offset = start + Math.ceil((end - start + 1) / 8) * 8;
    }
    paths.push(name);
    previous = name;
  }
  return paths;
}

/** Top-level folders holding tracked files, dotfolders and build output left out. */
function trackedFolders(root: string): string[] {
  const folders = new Set(
    trackedPaths(root)
      .filter((file) => file.includes('/'))
      .map((file) => file.split('/')[0] ?? '')
      .filter((folder) => folder && !folder.startsWith('.') && !NOT_SOURCE.has(folder)),
  );
  return [...folders].sort();
}

function isFolder(relative: string): boolean {
  const full = path.join(ROOT, relative);
  return existsSync(full) && statSync(full).isDirectory();
}

describe("the README's Layout", () => {
  const entries = layoutEntries(readFileSync(path.join(ROOT, 'README.md'), 'utf8'));
  const listed = entries.map((entry) => entry.folder);

  test('is parsed from its code block', () => {
    expect(listed).toContain('server');
    expect(entries.find((entry) => entry.folder === 'storage')?.children).toEqual(
      expect.arrayContaining(['file', 's3']),
    );
  });

  test('lists every top-level folder that holds tracked files', () => {
    const folders = trackedFolders(ROOT);
    expect(folders.length).toBeGreaterThan(5);
    expect(folders.filter((folder) => !listed.includes(folder))).toEqual([]);
  });

  test('lists only folders that exist, sub-entries included', () => {
    const named = entries.flatMap(({ folder, children }) => [
      folder,
      ...children.map((child) => `${folder}/${child}`),
    ]);
    expect(named.filter((folder) => !isFolder(folder))).toEqual([]);
  });

  test('lists each folder once', () => {
    expect(listed.filter((folder, i) => listed.indexOf(folder) !== i)).toEqual([]);
  });
});
