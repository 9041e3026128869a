export { BuildSpecError, nearestKey } from './spec-errors.js';
export { DEFAULT_CREATED, checkBuildSpec, hostArchitecture, parseBuildSpecText } from './spec.js';
export type { BuildSpec, Compressor, CopyToRootEntry, FromImage, ImagePin, ParsedSpec, SandboxChoice } from './spec.js';
export { storePathsIn } from './store-refs.js';
export { materialiseRoots } from './materialise.js';
export type { MaterialiseSource } from './materialise.js';
export { extraCommandsEnv, runExtraCommands } from './extra-commands.js';
