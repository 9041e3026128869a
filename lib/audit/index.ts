export { readNixPins, readPrefetchDockerJson, NixSyntaxError, PULL_IMAGE_ATTRS } from './nix-pins.js';
export type { NixPin, PrefetchDockerJson, PullImageAttr } from './nix-pins.js';
export {
  DEFAULT_LOCK_FILE, LOCK_VERSION, LockFileError, emptyLock, parseLock, serializeLock, withPin, imageIdentity, urlIdentity, buildIdentity,
} from './lock-file.js';
export type { BuildPin, ImagePin, LockFile, UrlPin } from './lock-file.js';
export { diffPaths, contentKind, MEMBER_FIELDS } from './diff/diff.js';
export type { ContentKind, DiffItem, DiffOptions, DiffReport, MemberField } from './diff/diff.js';
export { diffJson } from './diff/json-diff.js';
export type { JsonChange, JsonDiff } from './diff/json-diff.js';
export { renderDiff, renderDiffMarkdown } from './diff/render.js';
export type { Member } from './diff/members.js';
export { entriesFromLock, entriesFromNixPins, imageLabel } from './entries.js';
export type { AuditEntry } from './entries.js';
export { CHECKS, auditExitCode, runAudit } from './checks.js';
export type { AuditOptions, CheckName, CheckResult, Verdict } from './checks.js';
export { lockBuild, rebuildSpec } from './rebuild.js';
export type { Rebuilt } from './rebuild.js';
export { auditSummary, renderAuditMarkdown, renderAuditTable } from './report.js';
export { lockImage, lockUrl } from './lock-pins.js';
export type { ImageLockOptions } from './lock-pins.js';
