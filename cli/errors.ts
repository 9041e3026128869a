// Exit codes (documented in the README):
export const EXIT = {
  ok: 0,
  failure: 1, // network, I/O, invalid input, anything else
  usage: 2, // bad command-line arguments
  verifyFailed: 3, // `store verify` found bad paths
  hashMismatch: 102, // a fixed output did not match its declared hash (as Nix's builders exit 102)
} as const;

/** An error whose message is already a complete one-line explanation for the user. */
export class UserError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.failure) {
    super(message);
  }
}
