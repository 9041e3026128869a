import { ByteReader } from './byte-reader.js';
import type { ArchiveEntry, EntryMeta, EntrySink } from './entry.js';
import { CorruptArchiveError, RefusedEntryError, UnsupportedArchiveError } from './errors.js';
import { checkMap, oldGnuMap, pax1Map, type SparseMap } from './tar-sparse.js';
import { BLOCK, checksumOk, isZeroBlock, parseHeader, parsePax, type PaxRecords } from './tar-header.js';

/** Cap on GNU long names and pax headers, which are held in memory. */
const META_MAX = 1 << 20;

const padding = (n: number): number => (BLOCK - (n % BLOCK)) % BLOCK;
const endsWithSlash = (b: Buffer): boolean => b.length > 0 && b[b.length - 1] === 0x2f;

/**
 * Reads a tar stream member by member and hands each to `sink`, as GNU tar would extract it:
 * pax ('x') and GNU long-name ('L', 'K') headers apply to the next member, global pax headers
 * ('g') to every member after them (path, linkpath and size, as GNU tar 1.34 does; a member's own
 * 'x' header wins, an empty value drops the key), volume labels are ignored, unknown types are regular files, sparse members (old GNU
 * and pax 0.0/0.1/1.0) are filled in with holes, and reading stops at the first zero block.
 */
export async function readTar(source: AsyncIterable<Buffer>, sink: EntrySink, signal?: AbortSignal): Promise<void> {
  const r = new ByteReader(source);
  let pax: PaxRecords = {};
  let globalPax: PaxRecords = {};
  let longName: Buffer | undefined;
  let longLink: Buffer | undefined;
  let first = true;
  for (;;) {
    signal?.throwIfAborted();
    const at = r.position;
    const block = await r.read(BLOCK);
    if (block === null) {
      if (first) throw new CorruptArchiveError('the tar archive is empty');
      break; // GNU tar accepts an archive that ends without its zero blocks
    }
    if (isZeroBlock(block)) break;
    if (!checksumOk(block)) {
      throw first
        ? new UnsupportedArchiveError('not a tar archive (the first header is not a valid tar header)')
        : new CorruptArchiveError(`corrupt tar header at byte ${at} (bad checksum)`);
    }
    first = false;
    const h = parseHeader(block);
    const meta = async (): Promise<Buffer> => {
      if (h.size > META_MAX) throw new CorruptArchiveError(`tar extended header at byte ${at} is too large (${h.size} bytes)`);
      const data = (await r.read(h.size)) ?? Buffer.alloc(0);
      if (data.length < h.size) throw new CorruptArchiveError('the archive is truncated');
      await r.skip(padding(h.size));
      return data;
    };
    switch (h.type) {
      case 'x':
      case 'X': // Solaris' name for the same
        pax = parsePax(await meta(), pax);
        continue;
      case 'g':
        // Only names, link targets and sizes: sparse maps describe one member's data.
        globalPax = parsePax(await meta(), globalPax);
        delete globalPax.sparse;
        continue;
      case 'V':
        await r.skip(h.size + padding(h.size));
        continue;
      case 'L':
        longName = cut(await meta());
        continue;
      case 'K':
        longLink = cut(await meta());
        continue;
    }
    const paxSparse = h.type === '0' || h.type === '7' ? pax.sparse : undefined;
    const name = paxSparse?.name ?? pax.path ?? globalPax.path ?? longName ?? h.name;
    const linkname = pax.linkpath ?? globalPax.linkpath ?? longLink ?? h.linkname;
    const size = pax.size ?? globalPax.size ?? h.size;
    const entryMeta: EntryMeta | undefined = h.owner && {
      mode: h.mode & 0o7777,
      uid: pax.uid ?? h.owner.uid,
      gid: pax.gid ?? h.owner.gid,
      mtime: pax.mtime ?? h.owner.mtime,
    };
    const devNumbers = { major: h.owner?.devmajor ?? 0, minor: h.owner?.devminor ?? 0 };
    pax = {};
    longName = undefined;
    longLink = undefined;
    // A sparse member's data is its stored segments (after the map, in format 1.0).
    let sparse: SparseMap | undefined;
    let mapBytes = 0;
    if (h.type === 'S') {
      sparse = await oldGnuMap(block, r);
    } else if (paxSparse) {
      if (paxSparse.realSize === undefined) throw new CorruptArchiveError(`sparse tar member at byte ${at} has no real size`);
      if (paxSparse.major === 1) {
        const { map, used } = await pax1Map(r, paxSparse.realSize);
        sparse = map;
        mapBytes = used;
        if (used > size) throw new CorruptArchiveError(`sparse tar member at byte ${at}: its map is larger than its data`);
      } else if (paxSparse.map) {
        sparse = { realSize: paxSparse.realSize, segments: paxSparse.map };
      } else {
        throw new CorruptArchiveError(`sparse tar member at byte ${at} has no map`);
      }
    }
    if (sparse) checkMap(sparse, size - mapBytes);
    if (h.type === 'M' || h.type === 'N') throw new RefusedEntryError(name, `tar member type '${h.type}' (multi-volume or old GNU names) is not supported`);

    // Only regular files (and GNU dumpdirs) carry data; other types' size is ignored.
    let entry: ArchiveEntry;
    let dataSize = 0;
    switch (h.type) {
      case '1':
        entry = { kind: 'hardlink', name, target: linkname };
        break;
      case '2':
        entry = { kind: 'symlink', name, target: linkname };
        break;
      case '3':
      case '4':
        entry = { kind: 'special', name, what: 'device nodes', device: { type: h.type === '3' ? 'char' : 'block', ...devNumbers } };
        break;
      case '6':
        entry = { kind: 'special', name, what: 'FIFOs', device: { type: 'fifo', ...devNumbers } };
        break;
      case '5':
        entry = { kind: 'directory', name };
        break;
      case 'D':
        entry = { kind: 'directory', name };
        dataSize = size;
        break;
      default:
        dataSize = size - mapBytes;
        // Old tars marked directories as regular files whose name ends in '/'.
        entry = (h.type === '0' || h.type === '7') && endsWithSlash(name) && size === 0
          ? { kind: 'directory', name }
          : { kind: 'file', name, executable: (h.mode & 0o100) !== 0, body: r.stream(dataSize), ...(sparse ? { sparse } : {}) };
    }
    if (entryMeta) entry.meta = entryMeta;
    const start = r.position;
    await sink.add(entry);
    // Whatever of the data the sink did not read (none, for non-files) is skipped.
    await r.skip(dataSize - (r.position - start));
    await r.skip(padding(dataSize + mapBytes));
  }
  // Read what follows (zero blocks, record padding) so the decompressor checks its trailer too.
  await r.drain();
}

function cut(data: Buffer): Buffer {
  const nul = data.indexOf(0);
  return nul < 0 ? data : data.subarray(0, nul);
}
