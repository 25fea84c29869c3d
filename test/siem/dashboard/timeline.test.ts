// The entity page's grouped timeline: one group per action, outcome and cause, with counts,
// first and last times, the most frequent sources and reporters, and its events' indexes.
import { describe, expect, it } from 'vitest';
import type { EdgeEvent } from '../../../common/events.js';
import { groupTimeline, MAX_GROUPS } from '../../../siem/dashboard/timeline.js';

const N1 = 'spiffe://factory.example/node/n1';
const N2 = 'spiffe://factory.example/node/n2';

function ev(t: number, action: string, extra: Record<string, unknown> = {}): EdgeEvent {
  return { '@timestamp': t, 'event.action': action, ...extra };
}

describe('groupTimeline', () => {
  it('groups by action, outcome and cause, newest group first, with counts and times', () => {
    const events = [
      ev(900, 'handshake.failure', {
        'event.outcome': 'failure',
        'event.reason': 'bad cert',
        'source.ip': '198.51.100.7',
        'observer.identity': N1,
      }),
      ev(800, 'connection.accepted', {
        'event.outcome': 'success',
        'source.ip': '10.0.0.1',
        'observer.identity': N2,
      }),
      ev(700, 'handshake.failure', {
        'event.outcome': 'failure',
        'event.reason': 'bad cert',
        'source.ip': '198.51.100.8',
        'observer.identity': N1,
      }),
      ev(600, 'handshake.failure', {
        'event.outcome': 'failure',
        'error.code': 'ERR_X',
        'source.ip': '198.51.100.7',
        'observer.identity': N1,
      }),
      ev(500, 'handshake.failure', {
        'event.outcome': 'failure',
        'event.reason': 'bad cert',
        'source.ip': '198.51.100.7',
        'observer.identity': N2,
      }),
    ];
    const g = groupTimeline(events);
    expect(g.otherEvents).toBe(0);
    expect(g.groups.map((x) => [x.action, x.outcome, x.cause, x.count, x.first, x.last])).toEqual([
      ['handshake.failure', 'failure', 'bad cert', 3, 500, 900],
      ['connection.accepted', 'success', null, 1, 800, 800],
      ['handshake.failure', 'failure', 'ERR_X', 1, 600, 600],
    ]);
    const first = g.groups[0];
    expect(first?.events).toEqual([0, 2, 4]);
    expect(first?.sources).toEqual(['198.51.100.7', '198.51.100.8']);
    expect(first?.sourcesTotal).toBe(2);
    expect(first?.reporters).toEqual([N1, N2]);
  });

  it('names at most five sources and counts the rest', () => {
    const events = Array.from({ length: 8 }, (_, i) =>
      ev(1000 - i, 'connection.denied', { 'source.ip': `10.0.0.${i}`, 'event.outcome': 'failure' }),
    );
    const [g] = groupTimeline(events).groups;
    expect(g?.sources).toHaveLength(5);
    expect(g?.sourcesTotal).toBe(8);
    expect(g?.count).toBe(8);
  });

  it('bounds hostile input: at most MAX_GROUPS groups, long causes cut, the rest counted', () => {
    const events = Array.from({ length: MAX_GROUPS + 20 }, (_, i) =>
      ev(10_000 - i, 'handshake.failure', { 'event.reason': `${i}${'x'.repeat(1000)}` }),
    );
    const g = groupTimeline(events);
    expect(g.groups).toHaveLength(MAX_GROUPS);
    expect(g.otherEvents).toBe(20);
    expect(g.groups[0]?.cause).toHaveLength(300);
  });
});
