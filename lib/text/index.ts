/** lib/text: making hostile input safe to show in messages. */
export { printable } from './printable.js';
