// A small Prometheus text-format registry (counters and gauges with labels) for /metrics, with
// the process, Node.js and build metrics every service exports (common/metrics.ts).
import { RuntimeMetrics } from '../common/metrics.js';

export type Labels = Readonly<Record<string, string>>;

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function key(labels: Labels): string {
  const names = Object.keys(labels).sort();
  return names.map((n) => `${n}="${escapeLabel(labels[n] ?? '')}"`).join(',');
}

interface Family {
  readonly help: string;
  readonly type: 'counter' | 'gauge';
  readonly values: Map<string, number>;
  collect?: () => Iterable<[Labels, number]>;
}

const MAX_SERIES = 10_000;

export class Metrics {
  private readonly families = new Map<string, Family>();
  private readonly runtime = new RuntimeMetrics();

  counter(name: string, help: string): (labels?: Labels, by?: number) => void {
    const f = this.family(name, help, 'counter');
    return (labels = {}, by = 1) => {
      const k = key(labels);
      if (!f.values.has(k) && f.values.size >= MAX_SERIES) return;
      f.values.set(k, (f.values.get(k) ?? 0) + by);
    };
  }

  gauge(name: string, help: string): (value: number, labels?: Labels) => void {
    const f = this.family(name, help, 'gauge');
    return (value, labels = {}) => {
      const k = key(labels);
      if (!f.values.has(k) && f.values.size >= MAX_SERIES) return;
      f.values.set(k, value);
    };
  }

  /** A gauge (or a counter the agent keeps elsewhere) computed at scrape time. */
  collected(
    name: string,
    help: string,
    collect: () => Iterable<[Labels, number]>,
    type: 'counter' | 'gauge' = 'gauge',
  ): void {
    const f = this.family(name, help, type);
    f.collect = collect;
  }

  /** Stops the runtime metrics' event loop sampler. */
  close(): void {
    this.runtime.close();
  }

  get(name: string, labels: Labels = {}): number | undefined {
    const f = this.families.get(name);
    if (!f) return undefined;
    if (f.collect) {
      const want = key(labels);
      for (const [l, v] of f.collect()) if (key(l) === want) return v;
      return undefined;
    }
    return f.values.get(key(labels));
  }

  render(): string {
    const out: string[] = [];
    for (const [name, f] of this.families) {
      out.push(`# HELP ${name} ${f.help}`, `# TYPE ${name} ${f.type}`);
      const rows: Iterable<[string, number]> = f.collect
        ? Array.from(f.collect(), ([l, v]): [string, number] => [key(l), v])
        : f.values;
      for (const [k, v] of rows) out.push(`${name}${k === '' ? '' : `{${k}}`} ${Number.isFinite(v) ? v : 0}`);
    }
    out.push(this.runtime.render());
    return out.join('\n') + '\n';
  }

  private family(name: string, help: string, type: 'counter' | 'gauge'): Family {
    let f = this.families.get(name);
    if (!f) this.families.set(name, (f = { help, type, values: new Map() }));
    return f;
  }
}
