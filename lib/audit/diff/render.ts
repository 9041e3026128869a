import type { DiffItem, DiffReport } from './diff.js';
import type { Member } from './members.js';

const short = (v: string): string => (/^[0-9a-f]{64}$/.test(v) ? `${v.slice(0, 12)}…` : v);
const json = (v: unknown): string => {
  const s = JSON.stringify(v);
  return s === undefined ? 'undefined' : s.length > 120 ? `${s.slice(0, 117)}...` : s;
};

function describeMember(m: Member): string {
  const parts = [m.type, m.mode.toString(8).padStart(4, '0'), `${m.uid}:${m.gid}`];
  if (m.sha256 !== undefined) parts.push(`${m.size} bytes`, `sha256 ${short(m.sha256)}`);
  if (m.linkname !== undefined) parts.push(`→ ${m.linkname}`);
  if (m.device !== undefined) parts.push(`device ${m.device}`);
  return parts.join(', ');
}

function itemLines(item: DiffItem, indent: string): string[] {
  switch (item.kind) {
    case 'added':
    case 'removed':
      return [`${indent}${item.kind.padEnd(8)} ${item.name} (${describeMember(item.member)})`];
    case 'duplicate':
      return [`${indent}duplicate ${item.name} appears more than once in ${item.side.toUpperCase()}`];
    case 'changed': {
      const fields = item.fields.map((f) => `${f.field} ${short(f.a) || '(none)'} → ${short(f.b) || '(none)'}`);
      if (item.firstDifferingOffset !== undefined) fields.push(`first difference at byte ${item.firstDifferingOffset}`);
      const lines = [`${indent}changed  ${item.name}: ${fields.join(', ')}`];
      if (item.inner) lines.push(...reportLines(item.inner, `${indent}    `, false));
      return lines;
    }
  }
}

function reportLines(r: DiffReport, indent: string, header: boolean): string[] {
  const lines = header ? [`${indent}--- ${r.a}`, `${indent}+++ ${r.b}`] : [];
  if (r.identical) return [...lines, `${indent}identical`];
  if (r.kind === 'json' && r.json) {
    if (r.json.orderingOnly) return [...lines, `${indent}JSON: ordering or whitespace differences only`];
    return [...lines, ...r.json.changes.map((c) => `${indent}JSON ${c.path}: ${'a' in c ? json(c.a) : '(absent)'} → ${'b' in c ? json(c.b) : '(absent)'}`)];
  }
  if (r.kind === 'file') return [...lines, `${indent}bytes differ${r.firstDifferingOffset === undefined ? '' : ` from byte ${r.firstDifferingOffset}`}`];
  if (r.items.length === 0) return [...lines, `${indent}same members; the ${r.kind === 'tar' ? 'archive' : 'tree'} bytes differ (header fields, order or padding)`];
  const count = (k: DiffItem['kind']) => r.items.filter((i) => i.kind === k).length;
  const summary = `${indent}${r.kind === 'tar' ? 'archive' : 'tree'}: ${count('changed')} changed, ${count('added')} added, ${count('removed')} removed${count('duplicate') ? `, ${count('duplicate')} duplicated` : ''}`;
  return [...lines, summary, ...r.items.flatMap((i) => itemLines(i, `${indent}  `))];
}

/** The report as plain text lines, like a small diffoscope. */
export function renderDiff(r: DiffReport): string {
  return reportLines(r, '', true).join('\n');
}

/** The report as Markdown (a fenced block under a heading), for release tickets. */
export function renderDiffMarkdown(r: DiffReport, title = 'Differences'): string {
  return [`#### ${title}`, '', '```', ...reportLines(r, '', true), '```', ''].join('\n');
}
