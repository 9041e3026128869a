/**
 * The text `${shadowSetup}` expands to in runAsRoot and extraCommands: nixpkgs'
 * dockerTools.shadowSetup, which gives an image the files shadow's groupadd/useradd need
 * (passwd, shadow, group, gshadow, a PAM `other` policy, login.defs) when it lacks them.
 *
 * - `current` (the default): nixpkgs since ~2019, bash tests, root's shell the runtime shell,
 *   yescrypt password hashing in the PAM policy.
 * - `2016`: the seed's form, POSIX `[ ]` tests, `/bin/sh` as root's shell, sha512.
 *
 * nixpkgs always prefixes PATH with the shadow package's bin; here `shadowBinDir` is where the
 * image's own tools are (e.g. `/usr/sbin`), or a store path's `bin` named by the spec; null
 * when there are none, and then PATH is left alone.
 */
export type ShadowSetupVersion = 'current' | '2016';

export function shadowSetup(version: ShadowSetupVersion, shadowBinDir: string | null, runtimeShell: string): string {
  const old = version === '2016';
  const test = (file: string): string => (old ? `[ ! -f ${file} ]` : `[[ ! -f ${file} ]]`);
  const rootShell = old ? '/bin/sh' : runtimeShell;
  const hash = old ? 'sha512' : 'yescrypt';
  const lines = [
    ...(shadowBinDir === null ? [] : [`export PATH=${shadowBinDir}:$PATH`]),
    'mkdir -p /etc/pam.d',
    `if ${test('/etc/passwd')}; then`,
    `  echo "root:x:0:0::/root:${rootShell}" > /etc/passwd`,
    '  echo "root:!x:::::::" > /etc/shadow',
    'fi',
    `if ${test('/etc/group')}; then`,
    '  echo "root:x:0:" > /etc/group',
    '  echo "root:x::" > /etc/gshadow',
    'fi',
    `if ${test('/etc/pam.d/other')}; then`,
    '  cat > /etc/pam.d/other <<EOF',
    'account sufficient pam_unix.so',
    'auth sufficient pam_rootok.so',
    `password requisite pam_unix.so nullok ${hash}`,
    'session required pam_unix.so',
    'EOF',
    'fi',
    `if ${test('/etc/login.defs')}; then`,
    '  touch /etc/login.defs',
    'fi',
  ];
  return `${lines.join('\n')}\n`;
}
