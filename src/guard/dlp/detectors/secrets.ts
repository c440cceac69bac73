import { isRecord, parseJson } from '../../../json.js'
import { base64UrlDecode } from '../checks.js'
import {
  type Detector,
  detector,
  literalPrefixes,
  settledAfter,
  TOKEN_AFTER,
  TOKEN_BEFORE,
} from './define.js'

/** A pattern for a token that is not part of a longer token. */
const token = (body: string) => new RegExp(TOKEN_BEFORE + body + TOKEN_AFTER, 'g')

/** Where a token may begin: one of `leads` (each with what may follow it) at a token boundary. */
const tokenOpening = (...leads: string[]) => `${TOKEN_BEFORE}(?:${leads.join('|')})`

/**
 * A token followed by a character that is no token character (its lookahead) is whole: it grows only by
 * token characters, and by `extra` ones where its pattern has them (`.` in GitLab tokens).
 */
const tokenSettled = (extra = '', after = 1) => settledAfter(String.raw`A-Za-z0-9_\-${extra}`, after)

/**
 * AWS access key ids: a known four-letter prefix (`AKIA` long-term, `ASIA` temporary, ...) and 16 base32
 * characters.
 */
export const awsAccessKey = detector({
  id: 'aws_access_key',
  description: 'AWS access key ids (AKIA, ASIA, ABIA, ACCA, A3T prefixes, 20 characters).',
  reach: 24,
  opening: tokenOpening('A[A-Z0-9]{0,18}'),
  startReach: 20,
  settled: tokenSettled(),
  pattern: token('(?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}'),
})

/** Google Cloud API keys: `AIza` and 35 characters. */
export const gcpApiKey = detector({
  id: 'gcp_api_key',
  description: 'Google Cloud API keys (AIza and 35 URL-safe characters).',
  reach: 44,
  opening: tokenOpening(literalPrefixes('AIza', String.raw`[0-9A-Za-z_\-]{0,34}`)),
  startReach: 39,
  settled: tokenSettled(),
  pattern: token(String.raw`AIza[0-9A-Za-z_\-]{35}`),
})

/**
 * Azure Storage account keys: 88 characters of base64 (64 bytes) are too common alone, so only after the
 * names they are given in connection strings and settings (`AccountKey=`, `AZURE_STORAGE_KEY=`). The
 * finding is the key, without its name.
 */
/** The names the pattern takes an Azure key after, spelled out. */
const AZURE_NAMES = [
  'AccountKey',
  'accountKey',
  'Accountkey',
  'accountkey',
  'AZURE_STORAGE_KEY',
  'AZURE_STORAGE_ACCOUNT_KEY',
  'azure_storage_key',
  'azure_storage_account_key',
]

export const azureStorageKey: Detector = {
  id: 'azure_storage_key',
  description: 'Azure Storage account keys (88 base64 characters) after AccountKey= or AZURE_STORAGE_KEY=.',
  reach: 136,
  // A name, quotes, spaces and `=` or `:`, then the key but its end.
  opening: AZURE_NAMES.map((name) =>
    literalPrefixes(name, String.raw`["']?\s{0,3}(?:[=:]\s{0,3}["']?[A-Za-z0-9+/]{0,86}=?)?`),
  ).join('|'),
  startReach: 122,
  // The key has a fixed length and is the last part: another path cannot end past it.
  settled: settledAfter('', 1),
  pattern:
    /(?:[Aa]ccount[Kk]ey|AZURE_STORAGE_(?:ACCOUNT_)?KEY|azure_storage_(?:account_)?key)["']?\s{0,3}[=:]\s{0,3}["']?[A-Za-z0-9+/]{86}==(?![A-Za-z0-9+/=])/g,
  validate: (match) => {
    const end = match.index + match[0].length
    return { start: end - 88, end }
  },
}

/**
 * OpenAI API keys: project, service-account and admin keys (`sk-proj-`, `sk-svcacct-`, `sk-admin-` and at
 * least 40 characters), and legacy user keys (`sk-` and 48 letters and digits, or the `T3BlbkFJ` marker).
 * Other `sk-` keys (`sk-ant-`, Stripe's `sk_live_`) do not match.
 */
export const openaiKey = detector({
  id: 'openai_key',
  description: 'OpenAI API keys (sk-proj-, sk-svcacct-, sk-admin-, and legacy sk- keys).',
  reach: 256,
  // `sk-svcacct-` and 230 characters: at most 241.
  opening: tokenOpening(literalPrefixes('sk-', String.raw`[A-Za-z0-9_\-]{0,237}`)),
  startReach: 241,
  settled: tokenSettled(),
  pattern: token(
    String.raw`sk-(?:(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40,230}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}|[A-Za-z0-9]{48})`,
  ),
})

/**
 * Anthropic API, admin and OAuth keys: `sk-ant-api03-` (or `admin01`, `oat01`, `ort01`), 93 characters,
 * then `AA`.
 */
export const anthropicKey = detector({
  id: 'anthropic_key',
  description: 'Anthropic keys (sk-ant-api03-, sk-ant-admin01-, ... with 93 characters and AA).',
  reach: 128,
  // `sk-ant-admin01-`, 93 characters and `AA`: 110.
  opening: tokenOpening(literalPrefixes('sk-', String.raw`[A-Za-z0-9_\-]{0,106}`)),
  startReach: 110,
  settled: tokenSettled(),
  pattern: token(String.raw`sk-ant-(?:api|admin|oat|ort)\d{2}-[A-Za-z0-9_\-]{93}AA`),
})

/**
 * GitHub tokens: classic personal, OAuth, user-to-server, server-to-server and refresh tokens
 * (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_` and 36 characters) and fine-grained personal tokens
 * (`github_pat_`). Their built-in CRC32 is not checked.
 */
export const githubToken = detector({
  id: 'github_token',
  description: 'GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_ with 36 characters, and github_pat_).',
  reach: 100,
  opening: tokenOpening(
    literalPrefixes('gh', '[pousr](?:_[A-Za-z0-9]{0,35})?'),
    literalPrefixes('github_pat_', '[A-Za-z0-9_]{0,81}'),
  ),
  startReach: 93,
  settled: tokenSettled(),
  pattern: token('(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})'),
})

/** GitLab tokens by their documented prefixes (`glpat-` personal, `gldt-` deploy, `glrt-` runner, ...). */
export const gitlabToken = detector({
  id: 'gitlab_token',
  description: 'GitLab tokens (glpat-, gldt-, glrt-, glptt-, glft-, glsoat-, glimt-, gloas-, glcbt-).',
  reach: 144,
  // `glsoat-`, 64 characters and two parts of 33: 137.
  opening: tokenOpening(
    ...['glpat-', 'gldt-', 'glrt-', 'glptt-', 'glft-', 'glsoat-', 'glimt-', 'gloas-', 'glcbt-'].map((lead) =>
      literalPrefixes(lead, String.raw`[A-Za-z0-9_.\-]{0,129}`),
    ),
  ),
  startReach: 137,
  settled: tokenSettled('.'),
  pattern: token(
    String.raw`(?:glpat|gldt|glrt|glptt|glft|glsoat|glimt|gloas|glcbt)-[A-Za-z0-9_\-]{20,64}(?:\.[A-Za-z0-9_\-]{1,32}){0,2}`,
  ),
})

/**
 * Slack bot, user, app-level and legacy tokens (`xoxb-`, `xoxp-`, `xapp-`, ...) and incoming webhook
 * URLs.
 */
export const slackToken = detector({
  id: 'slack_token',
  description: 'Slack tokens (xoxb-, xoxp-, xoxa-, xoxo-, xoxs-, xoxr-, xapp-) and incoming webhook URLs.',
  reach: 128,
  // `xapp-` tokens are the longest, 99 characters.
  opening: tokenOpening(
    literalPrefixes('xox', String.raw`[abposr](?:-[A-Za-z0-9\-]{0,92})?`),
    literalPrefixes('xapp-', String.raw`[A-Za-z0-9\-]{0,93}`),
    literalPrefixes('https://hooks.slack.com/services/', '[A-Za-z0-9/]{0,51}'),
  ),
  startReach: 99,
  settled: tokenSettled(),
  pattern: token(
    String.raw`(?:xox[abposr]-\d{8,14}-(?:\d{8,14}-){0,2}[A-Za-z0-9]{20,48}|xapp-\d-[A-Z0-9]{8,12}-\d{10,14}-[a-f0-9]{64}|https://hooks\.slack\.com/services/T[A-Z0-9]{8,12}/B[A-Z0-9]{8,12}/[A-Za-z0-9]{24})`,
  ),
})

/**
 * The longest private key block reported whole: an RSA 8192-bit PEM key or a typical armoured PGP secret
 * key fits. A block without its END line within this many characters is reported up to the end of its
 * body characters, at most this long, so what follows such a long block may stay unmasked.
 */
export const PRIVATE_KEY_MAX_CHARS = 8192

const KEY_BODY_CHAR = /[A-Za-z0-9+/=\s\\:,.-]/
const FOOTER = /-----END (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----/y
/** The longest END line `FOOTER` matches; every attempt at it reads no further. */
const FOOTER_MAX_CHARS = 70

/**
 * Private key blocks in PEM and armoured form (`-----BEGIN [RSA |EC |OPENSSH |ENCRYPTED |PGP ]PRIVATE
 * KEY[ BLOCK]-----`), reported from the BEGIN line through the END line so that redaction masks the key
 * material, not only its header. Headers with no key material after them (templates, `...`) are refused.
 * The body may use escaped newlines, as keys do inside JSON.
 */
export const privateKeyBlock: Detector = {
  id: 'private_key_block',
  description: 'PEM and armoured private key blocks (RSA, EC, DSA, OpenSSH, PKCS#8, PGP), BEGIN to END.',
  reach: PRIVATE_KEY_MAX_CHARS,
  // The BEGIN line, at most 72 characters; once it is whole, the pattern matches.
  opening: literalPrefixes('-----BEGIN ', '[A-Z0-9 ]{0,56}-{0,4}'),
  startReach: 72,
  settled: (match, text) => {
    const start = match.index
    const headerEnd = start + match[0].length
    if (start + PRIVATE_KEY_MAX_CHARS <= text.length) return true
    // The first five dashes end the body (see validate): the block is decided once they are there and the
    // END line after them is whole, or cannot be one whatever follows.
    const dashes = text.indexOf('-----', headerEnd)
    if (dashes === -1) return false
    FOOTER.lastIndex = dashes
    return FOOTER.test(text) || dashes + FOOTER_MAX_CHARS <= text.length
  },
  pattern: /-----BEGIN (?:[A-Z0-9]{1,12} ){0,3}PRIVATE KEY(?: BLOCK)?-----/g,
  validate: (match, text) => {
    const start = match.index
    const headerEnd = start + match[0].length
    const rest = text.slice(headerEnd, start + PRIVATE_KEY_MAX_CHARS)
    // A body never holds five dashes, so the first ones end it: the END line, or the next block. Reading no
    // further keeps the work per header to its own body, even when headers follow each other closely.
    const dashes = rest.indexOf('-----')
    FOOTER.lastIndex = dashes
    const footer = dashes === -1 ? null : FOOTER.exec(rest)
    let body: string
    let end: number
    if (footer !== null) {
      body = rest.slice(0, dashes)
      end = headerEnd + dashes + footer[0].length
    } else {
      const limit = dashes === -1 ? rest.length : dashes
      let length = 0
      while (length < limit && KEY_BODY_CHAR.test(rest[length]!)) length++
      body = rest.slice(0, length).trimEnd()
      end = headerEnd + body.length
    }
    // Key material, not a template: a run of base64 once escaped newlines are set aside.
    const material = body.replace(/\\n/g, '\n').match(/[A-Za-z0-9+/=]{32,}/)
    return material === null ? undefined : { start, end }
  },
}

/**
 * JSON Web Tokens: three base64url parts whose header decodes to a JSON object with an `alg` string and
 * whose payload decodes to a JSON object; the signature may be empty only for `alg: none`. Tokens longer
 * than about 4,200 characters (header 512, payload 3,000, signature 700) are not reported.
 */
export const jwt: Detector = {
  id: 'jwt',
  description: 'JSON Web Tokens whose header (with alg) and payload decode to JSON objects.',
  reach: 4224,
  // A token is open until its second dot, up to 3,513 characters; from there on the pattern matches.
  opening: tokenOpening(
    literalPrefixes('eyJ', String.raw`[A-Za-z0-9_\-]{0,509}(?:\.[A-Za-z0-9_\-]{0,3000})?`),
  ),
  startReach: 3514,
  // The dots are fixed (the parts cannot hold one); its lookahead reads a dot and one more character.
  settled: tokenSettled('', 2),
  pattern: new RegExp(
    `${TOKEN_BEFORE}eyJ[A-Za-z0-9_\\-]{5,509}\\.[A-Za-z0-9_\\-]{2,3000}\\.[A-Za-z0-9_\\-]{0,700}(?![A-Za-z0-9_\\-]|\\.[A-Za-z0-9_\\-])`,
    'g',
  ),
  validate: (match) => {
    const [header = '', payload = '', signature = ''] = match[0].split('.')
    const decodedHeader = parseJson(base64UrlDecode(header) ?? '')
    if (!isRecord(decodedHeader) || typeof decodedHeader.alg !== 'string') return undefined
    if (!isRecord(parseJson(base64UrlDecode(payload) ?? ''))) return undefined
    if (signature === '' && decodedHeader.alg.toLowerCase() !== 'none') return undefined
    return { start: match.index, end: match.index + match[0].length }
  },
}
