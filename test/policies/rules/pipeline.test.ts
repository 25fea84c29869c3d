// Field-mapping pipelines: the shipped ECS and Windows event log pipelines parse, map a rule's
// fields by its logsource and add the log source's conditions; bad pipelines are refused with
// ERR_POLICY_PIPELINE_INVALID naming file and key; `edgeward policy check` reports a pipeline.
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EdgewardError } from '../../../common/errors.js';
import { validateEvent } from '../../../common/events.js';
import { checkRuleFile, loadRules, parsePipeline, type Pipeline } from '../../../policies/rules/index.js';
import { tempDir } from '../../helpers/tmp.js';
import { edgeward } from '../../helpers/cli.js';

const DIR = join(import.meta.dirname, '..', '..', '..', 'policies', 'default', 'pipelines');
const load = (f: string): Pipeline => parsePipeline(readFileSync(join(DIR, f), 'utf8'), f);
const pipelines = [load('ecs.yaml'), load('windows-eventlog.yaml')];
const T = Date.UTC(2026, 0, 1);

const LINUX = `title: base64 decode
logsource: { product: linux, category: process_creation }
detection:
  selection:
    Image|endswith: /base64
    CommandLine|contains: ' -d'
  condition: selection
`;

describe('field-mapping pipelines', () => {
  it('map a Linux process rule onto ECS and require a process start event', () => {
    const rule = checkRuleFile(LINUX, 'r.yml', { pipelines }).detections[0]!;
    const ev = (extra: Record<string, unknown>) =>
      validateEvent({
        '@timestamp': T,
        'event.action': 'exec',
        process: { executable: '/usr/bin/base64', command_line: 'base64 -d x' },
        ...extra,
      });
    expect(rule.match(ev({ event: { category: 'process', type: 'start' } }))).toBe(true);
    expect(rule.match(ev({ event: { category: 'process', type: 'end' } }))).toBe(false);
    expect(rule.match(ev({}))).toBe(false);
    // Without the pipeline the rule reads Sigma's own field names.
    const raw = checkRuleFile(LINUX, 'r.yml').detections[0]!;
    expect(raw.match(ev({ event: { category: 'process', type: 'start' } }))).toBe(false);
  });

  it('map a Windows rule onto Event.System / Event.EventData', () => {
    const rule = checkRuleFile(
      'title: whoami\nlogsource: { product: windows, category: process_creation }\ndetection:\n  sel:\n    EventID: 1\n    Image|endswith: \\whoami.exe\n  condition: sel\n',
      'w.yml',
      { pipelines },
    ).detections[0]!;
    const ev = validateEvent({
      '@timestamp': T,
      'event.action': 'process-created',
      Event: { System: { EventID: 1 }, EventData: { Image: 'C:\\Windows\\System32\\WHOAMI.EXE' } },
    });
    expect(rule.match(ev)).toBe(true);
  });

  it.each([
    ['kind: other\nid: x\nmappings: []\n', 'p.yaml#0.kind'],
    ['kind: field-mapping\nid: x\nmappings: []\n', 'p.yaml#0.mappings'],
    [
      'kind: field-mapping\nid: x\nmappings:\n  - logsource: { vendor: x }\n',
      'p.yaml#0.mappings.0.logsource.vendor',
    ],
    [
      'kind: field-mapping\nid: x\nmappings:\n  - fields: { Image: "a|b" }\n',
      'p.yaml#0.mappings.0.fields.Image',
    ],
    ['kind: field-mapping\nid: x\nmappings:\n  - bogus: 1\n', 'p.yaml#0.mappings.0.bogus'],
  ])('refuses %j at %s', (text, where) => {
    try {
      parsePipeline(text, 'p.yaml');
      expect.unreachable();
    } catch (err) {
      expect((err as EdgewardError).code).toBe('ERR_POLICY_PIPELINE_INVALID');
      expect((err as EdgewardError).message.startsWith(`${where}:`)).toBe(true);
    }
  });

  it('edgeward policy check reports the shipped pipelines', () => {
    const ecs = join(DIR, 'ecs.yaml');
    const win = join(DIR, 'windows-eventlog.yaml');
    const r = edgeward(['policy', 'check', ecs, win]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`${ecs}: field-mapping pipeline OK (ecs, 7 mappings)`);
    expect(r.stdout).toContain(`${win}: field-mapping pipeline OK (windows-eventlog, 1 mappings)`);
  });

  it('a rule folder may hold pipelines and placeholder values, applied by loadRules', async () => {
    const dir = tempDir('rules-pipeline');
    copyFileSync(join(DIR, 'ecs.yaml'), join(dir, 'ecs.yaml'));
    writeFileSync(join(dir, 'placeholders.yaml'), 'kind: placeholders\nvalues:\n  Admins: [root, "adm*"]\n');
    writeFileSync(
      join(dir, 'admin-shell.yml'),
      'title: admin shell\nlogsource: { product: linux, category: process_creation }\ndetection:\n  sel:\n    User|expand: "%Admins%"\n    Image|endswith: /bash\n  condition: sel\n',
    );
    const rules = await loadRules(dir);
    expect(rules.detections).toHaveLength(1);
    const ev = (user: string) =>
      validateEvent({
        '@timestamp': T,
        'event.action': 'exec',
        event: { category: 'process', type: 'start' },
        process: { executable: '/bin/bash' },
        user: { name: user },
      });
    const r = rules.detections[0]!;
    expect([ev('root'), ev('ADMIN2'), ev('alice')].map((e) => r.match(e))).toEqual([true, true, false]);
    const out = edgeward(['policy', 'check', join(dir, 'placeholders.yaml')]);
    expect(out.stdout).toContain('placeholders OK (1 names)');
  });
});
