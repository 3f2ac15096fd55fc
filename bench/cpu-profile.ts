interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
  readonly children?: readonly number[];
}

/** A V8 CPU profile, as `node --cpu-prof` writes it and the inspector's Profiler.stop returns it. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

export interface ProfileEntry {
  readonly name: string;
  readonly where: string;
  readonly selfMs: number;
  /** Share of the busy (non-idle) samples. */
  readonly share: number;
}

export interface ProfileSummary {
  /** The phase the profile covers, and where it was saved (open it in Chrome DevTools' Performance panel). */
  readonly phase: string;
  readonly file: string;
  readonly wallSeconds: number;
  readonly busySeconds: number;
  /** Top functions by self time. */
  readonly functions: readonly ProfileEntry[];
  /** Self time grouped by where the code lives: a package, the relay's own source, Node's internals, GC. */
  readonly areas: readonly ProfileEntry[];
}

const IDLE = new Set(['(idle)', '(program)']);

/** Where a frame's code lives: `kafkajs`, `relay src/ingress/...`, `node:internal`, or a pseudo-frame like (garbage collector). */
function areaOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1] as string;
  const own = /\/dist\/(.+?)\.js$/.exec(url);
  if (own) return `relay ${own[1]}`;
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/');
  return url;
}

const short = (url: string, line: number): string => {
  if (!url) return '';
  const trimmed = url
    .replace(/^file:\/\//, '')
    .replace(/^.*\/node_modules\//, '')
    .replace(/^.*\/dist\//, 'dist/');
  return `${trimmed}:${line + 1}`;
};

/** Self time per function and per area of a V8 CPU profile. */
export function summarizeProfile(profile: CpuProfile, phase: string, file: string, top = 20): ProfileSummary {
  const selfUs = new Map<number, number>();
  if (profile.samples && profile.timeDeltas) {
    profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas?.[i] ?? 0)));
  } else {
    const interval =
      (profile.endTime - profile.startTime) /
      Math.max(
        1,
        profile.nodes.reduce((n, node) => n + (node.hitCount ?? 0), 0),
      );
    for (const node of profile.nodes) selfUs.set(node.id, (node.hitCount ?? 0) * interval);
  }
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, ProfileNode>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node);
  // A native frame (no script, like node:crypto's SignJob.run) is charged to the nearest caller that has one.
  const caller = (node: ProfileNode): ProfileNode | undefined => {
    for (let at = parentOf.get(node.id); at; at = parentOf.get(at.id)) if (at.callFrame.url) return at;
    return undefined;
  };
  const functions = new Map<string, { name: string; where: string; us: number }>();
  const areas = new Map<string, number>();
  let busyUs = 0;
  for (const node of byId.values()) {
    const us = selfUs.get(node.id) ?? 0;
    const { functionName, url, lineNumber } = node.callFrame;
    if (us === 0 || IDLE.has(functionName)) continue;
    busyUs += us;
    const name = functionName || '(anonymous)';
    const native = !url && !functionName.startsWith('(') ? caller(node) : undefined;
    const where = native
      ? `native, from ${native.callFrame.functionName || '(anonymous)'} ${short(native.callFrame.url, native.callFrame.lineNumber)}`
      : short(url, lineNumber);
    const key = `${name} ${where}`;
    const entry = functions.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    functions.set(key, entry);
    const area = native ? areaOf(native.callFrame.url, '') : areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + us);
  }
  const share = (us: number) => (busyUs > 0 ? us / busyUs : 0);
  return {
    phase,
    file,
    wallSeconds: (profile.endTime - profile.startTime) / 1e6,
    busySeconds: busyUs / 1e6,
    functions: [...functions.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, selfMs: f.us / 1000, share: share(f.us) })),
    areas: [...areas.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, where: '', selfMs: us / 1000, share: share(us) })),
  };
}
