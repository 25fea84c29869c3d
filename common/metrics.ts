// A minimal Prometheus text-format registry: counters and gauges with labels, histograms with
// fixed buckets, values computed at scrape time, and the process and Node.js runtime metrics every
// service exports. Enough for /metrics on every service without a dependency. Label values
// often come from outside (a method name in a request, a reporter's identity): each label keeps
// at most a bounded number of distinct values per metric, and later ones count under `other`.
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { edgewardVersion } from './version.js';

export type Labels = Readonly<Record<string, string>>;

/** The value that stands for every label value beyond a metric's cap. */
export const OTHER_LABEL = 'other';
/** Distinct values one label may take in one metric, unless the metric says otherwise. */
export const DEFAULT_MAX_LABEL_VALUES = 64;

export interface MetricOptions {
  /** Distinct values per label name (default 64); beyond, the value is `other`. */
  readonly maxLabelValues?: number;
  /**
   * Distinct values one source (the reporter or client a value came from, passed to `inc`) may
   * add to each label; beyond, that source's new values count under `other`, so one source cannot
   * use up a label's values for every other. Default: no cap of its own (maxLabelValues).
   */
  readonly maxValuesPerSource?: number;
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
  /** Values each source added, per label (`source \0 label`); only sources that added one. */
  private readonly added = new Map<string, number>();
  private readonly maxLabelValues: number;
  private readonly maxValuesPerSource: number;
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly type: 'counter' | 'gauge' = 'counter',
    o: MetricOptions = {},
  ) {
    this.maxLabelValues = o.maxLabelValues ?? DEFAULT_MAX_LABEL_VALUES;
    this.maxValuesPerSource = o.maxValuesPerSource ?? this.maxLabelValues;
  }
  /**
   * The series key of `labels`, with every value past its label's cap (or past what `source` may
   * add to it) turned into `other`.
   */
  private key(labels: Labels | undefined, source?: string): string {
    if (!labels) return '';
    let capped: Record<string, string> | undefined;
    for (const [name, value] of Object.entries(labels)) {
      let set = this.seen.get(name);
      if (set === undefined) {
        set = new Set();
        this.seen.set(name, set);
      }
      if (set.has(value) || value === OTHER_LABEL) continue;
      let room = set.size < this.maxLabelValues;
      if (room && source !== undefined) {
        const k = `${source}\0${name}`;
        const n = this.added.get(k) ?? 0;
        room = n < this.maxValuesPerSource;
        if (room) this.added.set(k, n + 1);
      }
      if (room) set.add(value);
      else (capped ??= { ...labels })[name] = OTHER_LABEL;
    }
    return labelKey(capped ?? labels);
  }
  /** Adds `by`; `source` names who the label values came from (see maxValuesPerSource). */
  inc(labels?: Labels, by = 1, source?: string): void {
    const k = this.key(labels, source);
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
    this.added.clear();
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

/** A metric whose series are computed when it is scraped (from a store, a live table). */
class Collected implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly type: 'counter' | 'gauge',
    private readonly collect: () => Iterable<readonly [Labels, number]>,
  ) {}
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    let rows: Iterable<readonly [Labels, number]>;
    try {
      rows = this.collect();
    } catch {
      rows = []; // a closed store at shutdown: no sample rather than a failed scrape
    }
    for (const [l, v] of rows) lines.push(`${this.name}${labelKey(l)} ${Number.isFinite(v) ? v : 0}`);
    return lines.join('\n');
  }
}

/**
 * The process_* and nodejs_* metrics Prometheus client libraries export, and
 * edgeward_build_info. Event loop delay is sampled continuously and reported over the time since
 * the previous scrape.
 */
export class RuntimeMetrics implements Metric {
  private readonly loop: IntervalHistogram;

  constructor() {
    this.loop = monitorEventLoopDelay({ resolution: 10 });
    this.loop.enable();
  }

  /** Stops the event loop sampler (a stopped service). */
  close(): void {
    this.loop.disable();
  }

  render(): string {
    const out: string[] = [];
    const put = (name: string, type: 'counter' | 'gauge', help: string, v: number, labels = ''): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name}${labels} ${v}`);
    };
    const cpu = process.cpuUsage();
    put('process_cpu_user_seconds_total', 'counter', 'User CPU time spent, in seconds', cpu.user / 1e6);
    put('process_cpu_system_seconds_total', 'counter', 'System CPU time spent, in seconds', cpu.system / 1e6);
    put(
      'process_cpu_seconds_total',
      'counter',
      'User and system CPU time spent, in seconds',
      (cpu.user + cpu.system) / 1e6,
    );
    put(
      'process_resident_memory_bytes',
      'gauge',
      'Resident memory size, in bytes',
      process.memoryUsage.rss(),
    );
    put(
      'process_start_time_seconds',
      'gauge',
      'Start time of the process since the Unix epoch, in seconds',
      Math.round(Date.now() / 1000 - process.uptime()),
    );
    const fds = openFds();
    if (fds !== null) put('process_open_fds', 'gauge', 'Open file descriptors', fds);
    const mem = process.memoryUsage();
    put('nodejs_heap_size_total_bytes', 'gauge', 'V8 heap size, in bytes', mem.heapTotal);
    put('nodejs_heap_size_used_bytes', 'gauge', 'V8 heap used, in bytes', mem.heapUsed);
    put(
      'nodejs_external_memory_bytes',
      'gauge',
      'Memory of C++ objects bound to JavaScript, in bytes',
      mem.external,
    );
    const h = this.loop;
    const has = h.count > 0;
    put(
      'nodejs_eventloop_lag_mean_seconds',
      'gauge',
      'Mean event loop delay since the previous scrape, in seconds',
      has ? h.mean / 1e9 : 0,
    );
    put(
      'nodejs_eventloop_lag_p99_seconds',
      'gauge',
      '99th percentile of the event loop delay since the previous scrape, in seconds',
      has ? h.percentile(99) / 1e9 : 0,
    );
    put(
      'nodejs_eventloop_lag_max_seconds',
      'gauge',
      'Largest event loop delay since the previous scrape, in seconds',
      has ? h.max / 1e9 : 0,
    );
    h.reset();
    put(
      'edgeward_build_info',
      'gauge',
      'Always 1; the edgeward version and the Node.js version it runs on as labels',
      1,
      labelKey({ version: edgewardVersion(), nodejs: process.versions.node }),
    );
    return out.join('\n');
  }
}

/** Open file descriptors (Linux: /proc/self/fd), or null where that cannot be read. */
function openFds(): number | null {
  try {
    // The listing itself holds one descriptor while it runs.
    return readdirSync('/proc/self/fd').length - 1;
  } catch {
    return null;
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];
  private runtimeMetrics: RuntimeMetrics | null = null;
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
  /** A counter or gauge whose series `collect` computes at each scrape. */
  collected(
    name: string,
    help: string,
    type: 'counter' | 'gauge',
    collect: () => Iterable<readonly [Labels, number]>,
  ): void {
    this.metrics.push(new Collected(name, help, type, collect));
  }
  /** Adds the process, Node.js and build metrics (once); returns this registry. */
  withRuntime(): this {
    if (!this.runtimeMetrics) {
      this.runtimeMetrics = new RuntimeMetrics();
      this.metrics.push(this.runtimeMetrics);
    }
    return this;
  }
  /** Stops what the runtime metrics sample in the background. */
  close(): void {
    this.runtimeMetrics?.close();
  }
  render(): string {
    return this.metrics.map((m) => m.render()).join('\n') + '\n';
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
