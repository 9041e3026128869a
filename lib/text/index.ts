/** lib/text: small pure helpers for messages shown to people. */
export { editDistance, suggest, typoDistance } from './suggest.js';
