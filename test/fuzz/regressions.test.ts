// What the fuzzers found, one test each, named after what it guards. Each input is also a sample
// of its target's corpus (test/fuzz/corpus/<target>/finding-*), so every run replays it.
import { describe, expect, it } from 'vitest';
import { oid, parseDer, readOid } from '../../common/der.js';
import { repoFile } from '../../bench/fuzz/corpus.js';

describe('DER writer', () => {
  it('encodes an OID whose first two arcs make 128 or more in base 128, as the reader reads it', () => {
    const found = repoFile('test', 'fuzz', 'corpus', 'der', 'finding-oid-first-arc-128.der');
    expect(readOid(parseDer(found))).toBe('2.48');
    expect(oid('2.48')).toEqual(found);
    expect(oid('2.999').toString('hex')).toBe('06028837');
    expect(readOid(parseDer(oid('2.999.1')))).toBe('2.999.1');
  });
});
