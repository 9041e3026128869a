import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { shadowSetup } from '../lib/build/shadow-setup.js';
import { tempDir } from './helpers/tmp.js';

// ${shadowSetup}: the text of SPEC.md §9 (nixpkgs' dockerTools.shadowSetup), and the 2016 form.

const SHADOW = '/nix/store/0000000000000000000000000000000a-shadow-4.14/bin';
const BASH = '/nix/store/0000000000000000000000000000000b-bash-5.2/bin/bash';

// SPEC.md §9, verbatim, with <shadow>/bin and <runtimeShell> filled in.
const CURRENT = `export PATH=${SHADOW}:$PATH
mkdir -p /etc/pam.d
if [[ ! -f /etc/passwd ]]; then
  echo "root:x:0:0::/root:${BASH}" > /etc/passwd
  echo "root:!x:::::::" > /etc/shadow
fi
if [[ ! -f /etc/group ]]; then
  echo "root:x:0:" > /etc/group
  echo "root:x::" > /etc/gshadow
fi
if [[ ! -f /etc/pam.d/other ]]; then
  cat > /etc/pam.d/other <<EOF
account sufficient pam_unix.so
auth sufficient pam_rootok.so
password requisite pam_unix.so nullok yescrypt
session required pam_unix.so
EOF
fi
if [[ ! -f /etc/login.defs ]]; then
  touch /etc/login.defs
fi
`;

test('current form: SPEC.md §9 text', () => {
  assert.fixture(shadowSetup('current', SHADOW, BASH), CURRENT);
});

test("2016 form: /bin/sh as root's shell, [ ! -f ] tests and sha512; nothing else differs", () => {
  const expected = CURRENT
    .replace(BASH, '/bin/sh')
    .replace(/\[\[ ! -f (\S+) \]\]/g, '[ ! -f $1 ]')
    .replace('nullok yescrypt', 'nullok sha512');
  assert.not.match(expected, /\[\[|yescrypt/);
  assert.fixture(shadowSetup('2016', SHADOW, '/ignored/bash'), expected);
});

test('no shadow tools: PATH is left alone, the rest is the same', () => {
  assert.fixture(shadowSetup('current', null, BASH), CURRENT.replace(`export PATH=${SHADOW}:$PATH\n`, ''));
});

test('the text runs under bash: files made only when missing', () => {
  const tmp = tempDir('fi-shadow-');
  const dir = tmp.path;
  try {
    writeFileSync(join(dir, 'group'), 'root:x:0:\nstaff:x:50:\n');
    const text = shadowSetup('current', null, '/bin/bash').replaceAll('/etc/', `${dir}/`);
    execFileSync('bash', ['-e', '-c', text]);
    assert.is(readFileSync(join(dir, 'passwd'), 'utf8'), 'root:x:0:0::/root:/bin/bash\n');
    assert.is(readFileSync(join(dir, 'group'), 'utf8'), 'root:x:0:\nstaff:x:50:\n');
    assert.match(readFileSync(join(dir, 'pam.d/other'), 'utf8'), /^account sufficient pam_unix\.so\n/);
    assert.is(readFileSync(join(dir, 'login.defs'), 'utf8'), '');
  } finally {
    tmp.remove();
  }
});

test.run();
