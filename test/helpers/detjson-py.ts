// nixpkgs' detjson.py (with its `k not in j` guard), in Python 3: the reference the v1 pull's
// deterministic JSON is compared with.
const MAKEDET = `
import base64, io, json, sys
SAFEDELS = {"Size": 0, "config": {"ExposedPorts": None, "MacAddress": "", "NetworkDisabled": False, "PortSpecs": None, "VolumeDriver": ""}}
SAFEDELS["container_config"] = SAFEDELS["config"]
def makedet(j, safedels):
    for k, v in safedels.items():
        if k not in j:
            continue
        if type(v) == dict:
            makedet(j[k], v)
        elif j[k] == v:
            del j[k]
`;

/** As pull.sh ran it: one JSON document from stdin to stdout. */
export const PY_DETJSON = `${MAKEDET}
j = json.load(sys.stdin)
makedet(j, SAFEDELS)
json.dump(j, sys.stdout, sort_keys=True)
`;

/** Over a batch: stdin is a JSON array of base64 inputs; stdout the array of outputs (null where Python failed). */
export const PY_DETJSON_BATCH = `${MAKEDET}
out = []
for b in json.load(sys.stdin):
    try:
        j = json.loads(base64.b64decode(b))
        makedet(j, SAFEDELS)
        f = io.StringIO()
        json.dump(j, f, sort_keys=True)
        out.append(f.getvalue())
    except Exception:
        out.append(None)
json.dump(out, sys.stdout)
`;
