import { formatDuration, ProgressBar, renderProgress } from '../../../src/replay/progress.js';

describe('renderProgress', () => {
  it('shows a bar, the percentage, counts, the rate and an ETA', () => {
    const line = renderProgress({ label: 'replay', done: 2500, total: 10_000, rate: 500 }, 100);
    expect(line).toMatch(/^replay \[#+-+\] {2}25% {2}2,500\/10,000 {2}500 ev\/s {2}ETA 0:15$/);
    expect(line.length).toBeLessThanOrEqual(100);
  });

  it('fits narrow terminals', () => {
    expect(
      renderProgress({ label: 'rebuild', done: 1, total: 3, rate: 1, note: 'a long note that does not fit' }, 40)
        .length,
    ).toBeLessThanOrEqual(40);
  });

  it('has no bar or ETA without a total (follow mode)', () => {
    expect(renderProgress({ label: 'replay', done: 1234, total: null, rate: 10, note: '3 matched' })).toBe(
      'replay  1,234 events  10 ev/s  3 matched',
    );
  });

  it('shows an unknown ETA before anything was read, and 0:00 at the end', () => {
    expect(renderProgress({ label: 'r', done: 0, total: 10, rate: 0 })).toContain('ETA --:--');
    expect(renderProgress({ label: 'r', done: 10, total: 10, rate: 0 })).toContain('100%');
    expect(renderProgress({ label: 'r', done: 10, total: 10, rate: 0 })).toContain('ETA 0:00');
  });

  it('formats durations', () => {
    expect(formatDuration(5)).toBe('0:05');
    expect(formatDuration(125)).toBe('2:05');
    expect(formatDuration(3725)).toBe('1:02:05');
  });
});

describe('ProgressBar', () => {
  it('redraws in place at most once per interval and ends the line when finished', () => {
    let now = 0;
    const out: string[] = [];
    const bar = new ProgressBar(
      { write: (text: string) => out.push(text), columns: 80 },
      'replay',
      1000,
      200,
      () => now,
    );
    bar.update(100);
    now = 100;
    bar.update(200); // too soon: not drawn
    now = 1000;
    bar.update(500);
    bar.finish();
    expect(out.filter((t) => t.startsWith('\r'))).toHaveLength(3);
    expect(out[out.length - 1]).toBe('\n');
    expect(out[out.length - 2]).toContain(' 50%  500/1,000');
    expect(out.join('')).toContain('500 ev/s');
  });
});
