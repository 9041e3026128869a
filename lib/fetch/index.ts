/** lib/fetch: HTTP downloads over undici with curl's proxy, flag and retry behaviour. */
export { CURL_FLAGS_TABLE, mergeCurlSettings, parseCurlFlags, parseCurlWords, splitShellWords } from './curl-flags.js';
export type { CurlFlag, CurlSettings } from './curl-flags.js';
export { closeDispatchers } from './dispatchers.js';
export { downloadToFile, openDownload, parseContentRange, writeFullyAt } from './download.js';
export type { DownloadResult, DownloadStream, OpenDownloadOptions } from './download.js';
export { FetchError, redactText, redactUrl } from './errors.js';
export { formatRetryNotice } from './http.js';
export type { FetchErrorKind } from './errors.js';
export { downloadFromHashedMirrors, downloadWithMirrors, hashedMirrorUrls, mirrorsFromEnv } from './mirrors.js';
export type { MirrorDownloadResult, MirrorOptions } from './mirrors.js';
export { DEFAULTS, resolveOptions } from './options.js';
export type { FetchOptions, RetryNotice } from './options.js';
export { matchesNoProxy, noProxyFromEnv, parseProxyUrl, selectProxy } from './proxy-env.js';
export type { ProxyChoice, ProxyKind, ProxyOverride } from './proxy-env.js';
export { request } from './request.js';
export type { HttpResponse, RequestInit } from './request.js';
export { isRetryableStatus, parseRetryAfter, retryDelayMs } from './retry.js';
export { loadUndici } from './undici.js';
