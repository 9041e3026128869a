// undici is the heaviest module we load (~100 ms of start-up). Commands that find their answer
// in the store never touch the network, so it is loaded on first use, once.
type Undici = typeof import('undici');
let loading: Promise<Undici> | undefined;

export function loadUndici(): Promise<Undici> {
  // undici is CommonJS: its module.exports is the default export, in Node and in a bundle alike.
  loading ??= import('undici').then((m) => m.default);
  return loading;
}
