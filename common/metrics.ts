// A minimal Prometheus text-format registry: counters and gauges with labels, and histograms
// with fixed buckets. Enough for /metrics on every service without a dependency. Label values
// often come from outside (a method name in a request, a reporter's identity): each label keeps
// at most a bounded number of distinct values per metric, and later ones count under `other`.
type Labels = Readonly<Record<string, string>>;

/** The value that stands for every label value beyond a metric's cap. */
export const OTHER_LABEL = 'other';
/** Distinct values one label may take in one metric, unless the metric says otherwise. */
export const DEFAULT_MAX_LABEL_VALUES = 64;

export interface MetricOptions {
  /** Distinct values per label name (default 64); beyond, the value is `other`. */
  readonly maxLabelValues?: number;
}

function labelKey(labels: Labels | undefined): string {
  if (!labels) return '';
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
  return `{${keys.map((k) => `${k}="${esc(labels[k] ?? '')}"`).join(',')}}`;
}

interface Metric {
  render(): string;
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  /** The distinct values seen per label name (bounded by maxLabelValues). */
  private readonly seen = new Map<string, Set<string>>();
  private readonly maxLabelValues: number;
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly type: 'counter' | 'gauge' = 'counter',
    o: MetricOptions = {},
  ) {
    this.maxLabelValues = o.maxLabelValues ?? DEFAULT_MAX_LABEL_VALUES;
  }
  /** The series key of `labels`, with every value past its label's cap turned into `other`. */
  private key(labels: Labels | undefined): string {
    if (!labels) return '';
    let capped: Record<string, string> | undefined;
    for (const [name, value] of Object.entries(labels)) {
      let set = this.seen.get(name);
      if (set === undefined) {
        set = new Set();
        this.seen.set(name, set);
      }
      if (set.has(value) || value === OTHER_LABEL) continue;
      if (set.size < this.maxLabelValues) set.add(value);
      else (capped ??= { ...labels })[name] = OTHER_LABEL;
    }
    return labelKey(capped ?? labels);
  }
  inc(labels?: Labels, by = 1): void {
    const k = this.key(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  set(labels: Labels | undefined, value: number): void {
    this.values.set(this.key(labels), value);
  }
  get(labels?: Labels): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  /** How many series the metric holds. */
  get size(): number {
    return this.values.size;
  }
  reset(): void {
    this.values.clear();
    this.seen.clear();
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const [k, v] of this.values) lines.push(`${this.name}${k} ${v}`);
    return lines.join('\n');
  }
}

export class Histogram implements Metric {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[] = [
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
    ],
  ) {
    this.counts = buckets.map(() => 0);
  }
  observe(seconds: number): void {
    this.sum += seconds;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++)
      if (seconds <= (this.buckets[i] ?? 0)) this.counts[i] = (this.counts[i] ?? 0) + 1;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) => lines.push(`${this.name}_bucket{le="${b}"} ${this.counts[i] ?? 0}`));
    lines.push(
      `${this.name}_bucket{le="+Inf"} ${this.count}`,
      `${this.name}_sum ${this.sum}`,
      `${this.name}_count ${this.count}`,
    );
    return lines.join('\n');
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];
  counter(name: string, help: string, o?: MetricOptions): Counter {
    const c = new Counter(name, help, 'counter', o);
    this.metrics.push(c);
    return c;
  }
  gauge(name: string, help: string, o?: MetricOptions): Counter {
    const g = new Counter(name, help, 'gauge', o);
    this.metrics.push(g);
    return g;
  }
  histogram(name: string, help: string, buckets?: readonly number[]): Histogram {
    const h = new Histogram(name, help, buckets);
    this.metrics.push(h);
    return h;
  }
  render(): string {
    return this.metrics.map((m) => m.render()).join('\n') + '\n';
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
