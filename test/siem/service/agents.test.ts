// The agents ledger: acknowledged revisions, revisions behind and time lag, bounded memory.
import { describe, expect, it } from 'vitest';
import { AgentLedger } from '../../../siem/service/agents.js';
import { resumeRevision, sseFrame } from '../../../siem/service/sse.js';

const A = 'spiffe://factory.example/node/a';
const B = 'spiffe://factory.example/node/b';

describe('AgentLedger', () => {
  it('reports revisions behind and ms since the first unacknowledged revision was published', async () => {
    const l = new AgentLedger(0, 1000);
    l.connect(A, 1000);
    l.connect(B, 1000);
    l.published(1, 2000);
    l.published(2, 3000);
    await l.ack(A, 2, 3100);
    await l.ack(B, 1, 3100);
    expect(l.view(A, 5000)).toMatchObject({ acked: 2, behind: 0, lagMs: 0, connected: 1 });
    expect(l.view(B, 5000)).toMatchObject({ acked: 1, behind: 1, lagMs: 2000 });
    expect(l.maxLag(5000)).toEqual({ behind: 1, lagMs: 2000 });
    l.disconnect(B, 5000);
    expect(l.maxLag(5000)).toEqual({ behind: 0, lagMs: 0 });
    expect(l.list(5000).map((a) => a.identity)).toEqual([A, B]);
    expect(l.connectedStreams()).toBe(1);
  });

  it('an agent that never acknowledged is behind by the whole revision', () => {
    const l = new AgentLedger(3, 0);
    l.connect(A, 0);
    l.published(4, 100);
    expect(l.view(A, 600)).toMatchObject({ acked: null, behind: 4 });
  });
});

describe('SSE framing', () => {
  it('frames one-line data and refuses newlines', () => {
    expect(sseFrame('delta', 'a.b.c', 7)).toBe('id: 7\nevent: delta\ndata: a.b.c\n\n');
    expect(() => sseFrame('delta', 'a\nb')).toThrow(TypeError);
  });

  it('takes the resume point from ?from, else Last-Event-ID, and flags garbage', () => {
    expect(resumeRevision('5', '9')).toBe(5);
    expect(resumeRevision(undefined, '9')).toBe(9);
    expect(resumeRevision(undefined, undefined)).toBeNull();
    expect(resumeRevision(undefined, '-1')).toBeNaN();
    expect(resumeRevision(undefined, '1e3')).toBeNaN();
  });
});
