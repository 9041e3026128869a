/** lib/text: small pure helpers for messages shown to people (typo suggestions, hostile input made safe to show). */
export { editDistance, suggest, typoDistance } from './suggest.js';
export { printable } from './printable.js';
