/**
 * One request: what was asked and answered (a stream shown as the text it carried), every upstream
 * attempt in order, tokens, cost, metadata, what guardrails and DLP found, and the feedback and score,
 * which can be changed here.
 */
import { Fragment } from 'preact'
import { useState } from 'preact/hooks'
import type { LogAttempt, LogGuard, LogRecord } from '../../../src/logs/types.js'
import { describeAnswer, prettyJson } from '../answer.js'
import { api } from '../api.js'
import { Badge, Code, ErrorNote, Note, Stat } from '../components.js'
import { formatBytes, formatCost, formatMs, formatNumber, formatPercent, formatTime } from '../format.js'
import { useLoad } from '../hooks.js'
import { href } from '../router.js'
import { outcomeBadge } from './logs.js'

export function LogDetailPage({ id }: { id: string }) {
  const record = useLoad(() => api<LogRecord>(`logs/${encodeURIComponent(id)}`), [id])
  const log = record.data
  return (
    <section>
      <p>
        <a href={href('logs')}>← Logs</a>
      </p>
      <ErrorNote error={record.error} />
      {log === undefined ? (
        <p aria-busy={record.loading}>{record.loading ? 'Loading…' : null}</p>
      ) : (
        <LogView log={log} onPatched={() => void record.reload()} />
      )}
    </section>
  )
}

function LogView({ log, onPatched }: { log: LogRecord; onPatched: () => void }) {
  const answer = describeAnswer(log.responseBody)
  return (
    <>
      <div class="page-header">
        <h1>
          {log.provider ?? 'No provider'} <span class="muted">/</span> {log.model ?? 'no model'}
        </h1>
        <span class="badges">
          <Badge kind={log.success ? 'ok' : 'error'}>{log.statusCode}</Badge>
          {outcomeBadge(log)}
          {log.cached ? <Badge kind="muted">cached</Badge> : null}
        </span>
      </div>
      <div class="stats">
        <Stat
          name="duration"
          label="Duration"
          value={formatMs(log.durationMs)}
          hint={`first byte ${formatMs(log.ttfbMs)}`}
        />
        <Stat
          name="tokens"
          label="Tokens in / out"
          value={`${formatNumber(log.tokensIn)} / ${formatNumber(log.tokensOut)}`}
        />
        <Stat
          name="cost"
          label="Cost"
          value={formatCost(log.cost)}
          {...(log.customCost ? { hint: 'custom price' } : {})}
        />
        <Stat name="attempts" label="Attempts" value={String(log.attempts)} />
      </div>
      <div class="grid detail">
        <article>
          <header>Request</header>
          <dl class="facts">
            <dt>Time</dt>
            <dd>{formatTime(log.createdAt)}</dd>
            <dt>Path</dt>
            <dd>
              <code>{log.path}</code>
            </dd>
            <dt>Principal</dt>
            <dd>{log.principal ?? '—'}</dd>
            <dt>Event id</dt>
            <dd>{log.eventId ?? '—'}</dd>
            {log.errorCode === null ? null : (
              <>
                <dt>Error code</dt>
                <dd>{log.errorCode}</dd>
              </>
            )}
            {log.route === undefined ? null : (
              <>
                <dt>Route</dt>
                <dd>
                  {log.route.name} v{log.route.version}: {log.route.path.join(' → ')}
                  {Object.entries(log.route.variants).map(([element, branch]) => (
                    <Badge key={element} kind="muted">
                      {element}={branch}
                    </Badge>
                  ))}
                </dd>
              </>
            )}
            <dt>Sizes</dt>
            <dd>
              {formatBytes(log.requestSize)} in, {formatBytes(log.responseSize)} out
            </dd>
            <dt>Log id</dt>
            <dd>
              <code>{log.id}</code>
            </dd>
          </dl>
        </article>
        <article>
          <header>Metadata</header>
          <Metadata metadata={log.metadata} />
        </article>
        <Feedback log={log} onPatched={onPatched} />
      </div>
      <article>
        <header>Attempts</header>
        <Attempts log={log} />
      </article>
      {log.guard === undefined ? null : <Guard guard={log.guard} />}
      <article class="answer" data-answer-kind={answer.kind}>
        <header>
          Answer
          {answer.kind === 'stream' || answer.kind === 'sse' ? (
            <small class="muted">
              {' '}
              · streamed, {formatNumber(answer.events)} events
              {answer.finishReason === null ? '' : `, finish: ${answer.finishReason}`}
            </small>
          ) : null}
        </header>
        {answer.text === null ? null : <Code label="Answer text" text={answer.text} />}
        {answer.kind === 'stream' || (answer.kind === 'json' && answer.text !== null) ? (
          <details>
            <summary>As stored</summary>
            <Code label="Answer as stored" text={answer.raw} />
          </details>
        ) : answer.text === null || answer.kind === 'sse' ? (
          <Code label="Answer as stored" text={answer.raw} />
        ) : null}
      </article>
      <article>
        <header>Request body</header>
        <Code label="Request body" text={prettyJson(log.requestBody)} />
      </article>
    </>
  )
}

function Metadata({ metadata }: { metadata: LogRecord['metadata'] }) {
  const entries = Object.entries(metadata)
  if (entries.length === 0) return <p class="muted">None.</p>
  return (
    <dl class="facts" data-metadata>
      {entries.map(([key, value]) => (
        <Fragment key={key}>
          <dt>{key}</dt>
          <dd>{String(value)}</dd>
        </Fragment>
      ))}
    </dl>
  )
}

const ACTIONS: Record<LogAttempt['action'], string> = {
  answered: 'answered',
  retry: 'retried',
  fallback: 'fell back',
  final: 'gave up',
  skip: 'skipped (breaker open)',
  resume: 'resumed on the next',
}

function Attempts({ log }: { log: LogRecord }) {
  const attempts = log.attemptLog
  if (attempts === undefined || attempts.length === 0) {
    return (
      <p class="muted">
        {log.attempts === 0
          ? 'No upstream call was made.'
          : `${log.attempts} attempt, ${log.success ? 'answered' : 'failed'}.`}
      </p>
    )
  }
  const longest = Math.max(1, ...attempts.map((attempt) => attempt.durationMs))
  return (
    <ol class="timeline">
      {attempts.map((attempt, index) => (
        <li key={`${index}-${attempt.provider}`} data-action={attempt.action}>
          <span class="who">
            {attempt.provider} / {attempt.model ?? '—'}
          </span>
          <span class="bar">
            <span
              class={`fill ${attempt.action === 'answered' ? 'ok' : 'error'}`}
              style={{ width: `${Math.max(2, (attempt.durationMs / longest) * 100)}%` }}
            />
          </span>
          <span class="what">
            {attempt.status ?? 'no answer'}
            {attempt.failureClass ? ` ${attempt.failureClass}` : ''}
            {attempt.errorCode ? ` (${attempt.errorCode})` : ''} · {formatMs(attempt.durationMs)} ·{' '}
            {ACTIONS[attempt.action]}
          </span>
        </li>
      ))}
    </ol>
  )
}

function Guard({ guard }: { guard: LogGuard }) {
  return (
    <article data-guard>
      <header>Guardrails and DLP</header>
      {guard.dlp === undefined ? null : (
        <>
          <p>
            DLP: <Badge kind={guard.dlp.action === 'FLAG' ? 'warn' : 'error'}>{guard.dlp.action}</Badge>
            {guard.dlp.truncated ? <small class="muted"> (more findings than kept)</small> : null}
          </p>
          <div class="overflow-auto">
            <table class="striped">
              <thead>
                <tr>
                  <th scope="col">Where</th>
                  <th scope="col">Profile</th>
                  <th scope="col">Entry</th>
                  <th scope="col">Policies</th>
                  <th scope="col">At</th>
                </tr>
              </thead>
              <tbody>
                {guard.dlp.findings.map((finding, index) => (
                  <tr key={`${index}-${finding.entryId}`}>
                    <td>{finding.check === 'REQUEST' ? 'request' : 'answer'}</td>
                    <td>{finding.profileId}</td>
                    <td>{finding.entryId}</td>
                    <td>{finding.policyIds.join(', ')}</td>
                    <td>
                      <code>{finding.path || '(text)'}</code> {finding.start}–{finding.end}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      {guard.guardrails === undefined ? null : (
        <>
          <p>
            Guardrails:{' '}
            <Badge kind={guard.guardrails.action === 'BLOCK' ? 'error' : 'warn'}>
              {guard.guardrails.action}
            </Badge>
            {guard.guardrails.unavailable?.length ? (
              <small class="muted">
                {' '}
                classifier unavailable for {guard.guardrails.unavailable.join(' and ')}
              </small>
            ) : null}
          </p>
          {(['prompt', 'answer'] as const).map((phase) =>
            guard.guardrails?.[phase]?.length ? (
              <table class="striped" key={phase}>
                <caption>In the {phase}</caption>
                <thead>
                  <tr>
                    <th scope="col">Category</th>
                    <th scope="col">Score</th>
                    <th scope="col">Classifier</th>
                  </tr>
                </thead>
                <tbody>
                  {guard.guardrails[phase]!.map((hit) => (
                    <tr key={`${hit.classifier}-${hit.category}`}>
                      <td>{hit.category}</td>
                      <td>{formatPercent(hit.score)}</td>
                      <td>{hit.classifier}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : null,
          )}
        </>
      )}
    </article>
  )
}

function Feedback({ log, onPatched }: { log: LogRecord; onPatched: () => void }) {
  const [score, setScore] = useState(log.score === null ? '' : String(log.score))
  const [error, setError] = useState<Error | undefined>()
  const [saved, setSaved] = useState(false)
  const patch = async (body: Record<string, unknown>) => {
    setError(undefined)
    setSaved(false)
    try {
      await api(`logs/${encodeURIComponent(log.id)}`, { method: 'PATCH', body })
      setSaved(true)
      onPatched()
    } catch (failure) {
      setError(failure as Error)
    }
  }
  // Words, not emoji: a server's browser may have no emoji font, and the words say it anyway.
  const thumb = (value: 1 | -1, label: string) => (
    <button
      type="button"
      class={log.feedback === value ? (value === 1 ? 'good' : 'bad') : 'secondary outline'}
      aria-pressed={log.feedback === value}
      onClick={() => void patch({ feedback: log.feedback === value ? null : value })}
    >
      {label}
    </button>
  )
  return (
    <article class="feedback">
      <header>Feedback</header>
      <div class="thumbs">
        {thumb(1, 'Good answer')}
        {thumb(-1, 'Bad answer')}
      </div>
      <form
        onSubmit={(event) => {
          event.preventDefault()
          void patch({ score: score.trim() === '' ? null : Number(score) })
        }}
      >
        <label>
          Score (0–100)
          <span class="pair">
            <input
              name="score"
              type="number"
              min="0"
              max="100"
              step="1"
              value={score}
              onInput={(event) => setScore(event.currentTarget.value)}
            />
            <button type="submit" class="secondary">
              Save
            </button>
          </span>
        </label>
      </form>
      <ErrorNote error={error} />
      {saved ? <Note kind="ok">Saved.</Note> : null}
    </article>
  )
}
