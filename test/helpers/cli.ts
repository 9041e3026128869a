import { join } from 'node:path';

/** The shipped CLI (the bundle `npm run build` writes), as users run it. */
export const CLI_PATH = join(process.cwd(), 'dist/bin/fetch-image.js');
