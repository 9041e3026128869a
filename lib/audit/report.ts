import type { CheckResult } from './checks.js';
import { renderDiff } from './diff/render.js';

const FAILING = new Set(['drifted', 'mismatch', 'not-deterministic', 'damaged', 'error', 'unsupported']);

/** One-line summary: how many checks ran and how many of each failing verdict. */
export function auditSummary(results: readonly CheckResult[]): string {
  const counts = new Map<string, number>();
  for (const r of results) counts.set(r.verdict, (counts.get(r.verdict) ?? 0) + 1);
  const bad = [...counts].filter(([v]) => FAILING.has(v)).map(([v, n]) => `${n} ${v}`);
  const entries = new Set(results.map((r) => r.origin)).size;
  const head = `${results.length} check${results.length === 1 ? '' : 's'} of ${entries} entr${entries === 1 ? 'y' : 'ies'}`;
  return bad.length ? `${head}: ${bad.join(', ')}` : `${head}: everything reproduced`;
}

function kept(r: CheckResult): string[] {
  if (!r.kept) return [];
  return [...(r.kept.first ? [`first:  ${r.kept.first}`] : []), `second: ${r.kept.second}`];
}

/** A human table (entry, check, verdict, detail) followed by the file-level reports. */
export function renderAuditTable(results: readonly CheckResult[]): string {
  const rows = results.map((r) => [r.entry, r.check, r.verdict, r.detail]);
  const widths = [0, 1, 2].map((i) => Math.min(48, Math.max(['ENTRY', 'CHECK', 'VERDICT'][i]!.length, ...rows.map((row) => row[i]!.length))));
  const line = (cells: string[]): string => cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]!) : c)).join('  ').trimEnd();
  const out = [line(['ENTRY', 'CHECK', 'VERDICT', 'DETAIL']), ...rows.map(line)];
  for (const r of results) {
    if (!r.report && !r.kept) continue;
    out.push('', `${r.entry} (${r.check}, ${r.origin}):`);
    if (r.report) out.push(...renderDiff(r.report).split('\n').map((l) => `  ${l}`));
    out.push(...kept(r).map((l) => `  ${l}`));
  }
  out.push('', auditSummary(results));
  return out.join('\n');
}

const md = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** A Markdown report to attach to a release ticket. */
export function renderAuditMarkdown(results: readonly CheckResult[], title = 'fetch-image audit'): string {
  const out = [`## ${title}`, '', `**${auditSummary(results)}**`, '', '| entry | check | verdict | detail |', '|---|---|---|---|'];
  for (const r of results) out.push(`| ${md(r.entry)} | ${r.check} | ${FAILING.has(r.verdict) ? `**${r.verdict}**` : r.verdict} | ${md(r.detail)} |`);
  for (const r of results) {
    if (!r.report && !r.kept) continue;
    out.push('', `### ${md(r.entry)} — ${r.check}`, '', `From ${md(r.origin)}.`, '', '```', ...(r.report ? renderDiff(r.report).split('\n') : []), ...kept(r), '```');
  }
  return `${out.join('\n')}\n`;
}
