// The dashboard's colours, read from its stylesheet, against WCAG 2.1 AA (4.5:1 for text) on the
// backgrounds they are used on: text, secondary text and links on the page and on panels, and
// the dark text of badges on each severity and status colour.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const CSS = readFileSync(
  join(import.meta.dirname, '..', '..', '..', 'siem', 'dashboard', 'static', 'app.css'),
  'utf8',
);
const root = /:root\s*\{([^}]*)\}/.exec(CSS)?.[1] ?? '';
const vars = new Map([...root.matchAll(/--([a-z-]+):\s*(#[0-9a-f]{6})/gi)].map((m) => [m[1], m[2]]));

function color(name: string): string {
  const v = vars.get(name);
  if (v === undefined) throw new Error(`--${name} is not a colour of app.css :root`);
  return v;
}

function luminance(hex: string): number {
  const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  const [r, g, b] = c.map((x) => (x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4)) as [
    number,
    number,
    number,
  ];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

describe('dashboard palette', () => {
  it('gives text, secondary text and links at least 4.5:1 on the page and on panels', () => {
    for (const bg of ['bg', 'panel'])
      for (const fg of ['text', 'muted', 'link', 'link-visited', 'bad', 'ok', 'warn'])
        expect(contrast(color(fg), color(bg)), `--${fg} on --${bg}`).toBeGreaterThanOrEqual(4.5);
  });

  it('gives the dark text of badges at least 4.5:1 on every severity and status colour', () => {
    for (const badge of ['critical', 'high', 'medium', 'low', 'info', 'ok', 'bad', 'warn', 'purple'])
      expect(contrast(color('bg'), color(badge)), `badge on --${badge}`).toBeGreaterThanOrEqual(4.5);
  });
});
