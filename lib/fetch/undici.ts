// undici is the heaviest module we load. Its index pulls in fetch, WebSocket, EventSource, the
// cache stores and the mocks (~730 KB of code, ~30 ms of start-up here) though we use only its
// HTTP/1.1 dispatchers and request(). So this loads just those parts, on first use, once:
// commands that find their answer in the store never touch the network at all.
import type * as Undici from 'undici';
import type { Dispatcher } from 'undici';

/** The part of undici this project uses. */
export interface UndiciCore {
  Agent: typeof Undici.Agent;
  ProxyAgent: typeof Undici.ProxyAgent;
  /** undici's top-level request(): the URL split into origin and path for `opts.dispatcher` (or the global one). */
  request: typeof Undici.request;
}

let loading: Promise<UndiciCore> | undefined;

export function loadUndici(): Promise<UndiciCore> {
  loading ??= loadCore();
  return loading;
}

type RequestOptions = Omit<Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher?: Dispatcher };

async function loadCore(): Promise<UndiciCore> {
  // undici is CommonJS: each module's exports are its default export, in Node and in a bundle alike.
  const [agent, proxyAgent, dispatcher, api, global] = await Promise.all([
    import('undici/lib/dispatcher/agent.js'), import('undici/lib/dispatcher/proxy-agent.js'),
    import('undici/lib/dispatcher/dispatcher.js'), import('undici/lib/api/index.js'), import('undici/lib/global.js'),
  ]);
  // What undici's index does: the request/connect/… API lives on Dispatcher.prototype (ProxyAgent
  // needs connect() for its tunnels). Assigning it again is harmless if the index was loaded too.
  Object.assign(dispatcher.default.prototype, api.default);
  const request = (url: string | URL, opts: RequestOptions) => {
    const u = typeof url === 'string' ? new URL(url) : url;
    const { dispatcher: d = global.default.getGlobalDispatcher(), ...rest } = opts;
    return d.request({ ...rest, origin: u.origin, path: u.search ? `${u.pathname}${u.search}` : u.pathname, method: rest.method ?? (rest.body ? 'PUT' : 'GET') });
  };
  return { Agent: agent.default, ProxyAgent: proxyAgent.default, request: request as typeof Undici.request };
}
