export { pullV1, DOCKER_HUB_V1_INDEX } from './pull.js';
export type { PullV1Options, PullV1Result, V1Progress } from './pull.js';
export { writeV1Tarball, v1ImageConfig } from './tarball.js';
export type { V1TarballOptions, V1TarballResult } from './tarball.js';
export { V1RegistryError } from './session.js';
export type { V1Credentials } from './session.js';
export { undiciHttp } from './http.js';
export { fetchHttp } from './fetch-http.js';
export type { V1Http, V1HttpRequest, V1HttpResponse } from './http.js';
export { checkV1ImageId, checkV1Name, checkV1Tag, isV1ImageId } from './names.js';
// The byte forms a v1 pull writes (they live in lib/image; re-exported so v1 users and tests have one face).
export { detjson, parsePyJson, dumpPyJson, makeDeterministic, pyFloatRepr, pyJsonString, compareCodePoints, PyInt, PyFloat } from '../../image/detjson.js';
export type { PyJson, PyObject } from '../../image/detjson.js';
export { repositoriesFile, janssonString } from '../../image/repositories-file.js';
